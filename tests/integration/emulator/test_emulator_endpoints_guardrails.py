"""UpdateEndpoint with a DeploymentConfig on the emulator: the phases of blue/green (canary, linear,
all at once) and rolling deployments on the emulator clock, DescribeEndpoint's fields while they
run, automatic rollback on a CloudWatch alarm, and the requests SageMaker refuses."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.helpers import error_alarm
from tests.integration.emulator.test_emulator_endpoints_invoke import ROWS, deploy, invoke

STAGE = 10.0


@pytest.fixture
def emu(autopilot_emulator: Any, make_job: Any) -> Any:
    """A finished job's best candidate serving ``guard-ep``; a second config ``guard-new`` to deploy
    (its variant is ``Green`` so the answers show which fleet served); an alarm ``errors``; stages of
    10 s from now on."""
    autopilot_emulator.configure(stage_seconds=0.01)
    make_job("invoke-job")
    autopilot_emulator.advance(60)
    deploy(autopilot_emulator, "guard-ep")
    new_config(autopilot_emulator, "guard-new", count=1)
    error_alarm(autopilot_emulator, "errors")
    autopilot_emulator.configure(stage_seconds=STAGE)
    return autopilot_emulator


def new_config(emu: Any, name: str, count: int = 1) -> None:
    emu.client("sagemaker").create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "Green",
                "ModelName": "guard-ep-model",
                "InitialVariantWeight": 1.0,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": count,
            }
        ],
    )


def canary(size: int = 10, wait: int = 600, **policy: Any) -> dict[str, Any]:
    return {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": wait,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": size},
            },
            **policy,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "errors"}]},
    }


def update(emu: Any, config: dict[str, Any] | None, name: str = "guard-new", **kwargs: Any) -> None:
    extra = {"DeploymentConfig": config} if config is not None else {}
    emu.client("sagemaker").update_endpoint(
        EndpointName="guard-ep", EndpointConfigName=name, **extra, **kwargs
    )


def describe(emu: Any) -> dict[str, Any]:
    return emu.client("sagemaker").describe_endpoint(EndpointName="guard-ep")


def pending(described: dict[str, Any]) -> tuple[str, float, float, int]:
    """(variant status, current weight, desired weight, current instances) of the pending variant."""
    variant = described["PendingDeploymentSummary"]["ProductionVariants"][0]
    return (
        variant["VariantStatus"][0]["Status"],
        variant["CurrentWeight"],
        variant["DesiredWeight"],
        variant["CurrentInstanceCount"],
    )


def served(emu: Any, times: int) -> list[str]:
    return [
        invoke(emu, "guard-ep", ROWS[0], ContentType="text/csv")[1]["InvokedProductionVariant"]
        for _ in range(times)
    ]


def test_a_canary_with_a_quiet_alarm_walks_every_phase_then_serves_the_new_config(emu: Any) -> None:
    old = describe(emu)["EndpointConfigName"]
    config = canary(TerminationWaitInSeconds=300)
    update(emu, config)
    seen = describe(emu)
    assert (seen["EndpointStatus"], seen["EndpointConfigName"]) == ("Updating", old)
    assert seen["PendingDeploymentSummary"]["EndpointConfigName"] == "guard-new"
    assert "StartTime" in seen["PendingDeploymentSummary"] and seen["LastDeploymentConfig"] == config
    assert pending(seen) == ("Creating", 0.0, 1.0, 0)
    assert served(emu, 3) == ["AllTraffic"] * 3
    emu.advance(STAGE)
    assert pending(describe(emu)) == ("ActivatingTraffic", 0.1, 1.0, 1)
    emu.advance(STAGE)
    baking = describe(emu)
    assert pending(baking) == ("Baking", 0.1, 1.0, 1)
    message = baking["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"][0]["StatusMessage"]
    assert "Canary baking period" in message and "errors" in message
    # 10 % of the traffic on the new fleet, exactly and in the same order every run.
    assert served(emu, 20) == (["AllTraffic"] * 5 + ["Green"] + ["AllTraffic"] * 4) * 2
    emu.advance(600)
    assert pending(describe(emu)) == ("ActivatingTraffic", 1.0, 1.0, 1)
    emu.advance(STAGE)
    assert pending(describe(emu)) == ("Baking", 1.0, 1.0, 1)
    assert served(emu, 3) == ["Green"] * 3
    emu.advance(600)
    assert (
        describe(emu)["PendingDeploymentSummary"]["ProductionVariants"][0]["VariantStatus"][0]["Status"]
        == "Deleting"
    )
    emu.advance(300)
    done = describe(emu)
    assert (done["EndpointStatus"], done["EndpointConfigName"]) == ("InService", "guard-new")
    assert "PendingDeploymentSummary" not in done and "FailureReason" not in done
    assert done["ProductionVariants"][0]["VariantName"] == "Green" and done["LastDeploymentConfig"] == config


def test_an_alarm_fired_during_the_canary_bake_rolls_back_to_the_old_config(emu: Any) -> None:
    old = describe(emu)["EndpointConfigName"]
    emu.fire_alarm("errors", "canary", endpoint_name="guard-ep")
    update(emu, canary())
    emu.advance(2 * STAGE)  # the canary bakes with its alarm in ALARM
    rolling_back = describe(emu)
    assert (rolling_back["EndpointStatus"], rolling_back["EndpointConfigName"]) == ("RollingBack", old)
    assert served(emu, 12) == ["AllTraffic"] * 12  # all the traffic is back on the old fleet
    state = emu.client("cloudwatch").describe_alarms(AlarmNames=["errors"])["MetricAlarms"][0]
    assert state["StateValue"] == "ALARM" and "canary phase" in state["StateReason"]
    emu.advance(STAGE)
    back = describe(emu)
    assert (back["EndpointStatus"], back["EndpointConfigName"]) == ("InService", old)
    assert back["ProductionVariants"][0]["VariantName"] == "AllTraffic"
    assert (
        "errors" in back["FailureReason"] and "canary baking period (canary phase)" in back["FailureReason"]
    )
    assert (
        "PendingDeploymentSummary" not in back
        and emu.client("sagemaker").describe_endpoint(EndpointName="guard-ep")["LastDeploymentConfig"]
        == canary()
    )


def test_an_alarm_set_through_cloudwatch_in_the_final_bake_rolls_back_even_after_a_long_jump(
    emu: Any,
) -> None:
    update(emu, canary(wait=120))
    emu.advance(2 * STAGE + 120 + STAGE + 5)  # into the final bake
    assert pending(describe(emu))[:2] == ("Baking", 1.0)
    emu.client("cloudwatch").set_alarm_state(AlarmName="errors", StateValue="ALARM", StateReason="5XX errors")
    emu.advance(10_000)  # past the whole update: the bake still saw the alarm
    back = describe(emu)
    assert (back["EndpointStatus"], back["EndpointConfigName"]) == ("InService", "guard-ep-config")
    assert "final baking period (baking phase)" in back["FailureReason"]


def test_linear_steps_and_an_all_at_once_update(emu: Any) -> None:
    config = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "LINEAR",
                "WaitIntervalInSeconds": 60,
                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25},
            }
        }
    }
    update(emu, config)
    weights = []
    for _ in range(4):
        emu.advance(STAGE + 1)
        weights.append(pending(describe(emu))[1])
        emu.advance(60 - 1)
    assert weights == [0.25, 0.5, 0.75, 1.0]
    emu.advance(STAGE)
    assert describe(emu)["EndpointStatus"] == "InService"
    new_config(emu, "guard-third")
    update(
        emu,
        {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 30}
            }
        },
        name="guard-third",
    )
    emu.advance(STAGE)
    assert pending(describe(emu))[:2] == ("ActivatingTraffic", 1.0)
    emu.advance(STAGE + 30)
    assert describe(emu)["EndpointConfigName"] == "guard-third"


def test_a_rolling_update_goes_batch_by_batch_and_rolls_back_on_an_alarm(emu: Any) -> None:
    new_config(emu, "guard-four", count=4)
    rolling = {
        "RollingUpdatePolicy": {
            "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2},
            "WaitIntervalInSeconds": 60,
            "RollbackMaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "errors"}]},
    }
    update(emu, rolling, name="guard-four")
    assert pending(describe(emu)) == ("Creating", 0.0, 1.0, 0)
    emu.advance(2 * STAGE)
    assert pending(describe(emu)) == ("Baking", 0.5, 1.0, 2)
    emu.advance(60)
    assert pending(describe(emu)) == ("Creating", 0.5, 1.0, 2)
    emu.client("cloudwatch").set_alarm_state(AlarmName="errors", StateValue="ALARM", StateReason="latency")
    emu.advance(2 * STAGE)
    assert describe(emu)["EndpointStatus"] == "RollingBack"
    emu.advance(3 * STAGE)
    assert describe(emu)["EndpointStatus"] == "RollingBack"  # one instance at a time: 4 stages
    emu.advance(STAGE)
    back = describe(emu)
    assert (back["EndpointStatus"], back["EndpointConfigName"]) == ("InService", "guard-ep-config")
    assert "rolling batch 2 of 2 (rolling phase)" in back["FailureReason"]


def test_an_update_that_outlives_its_maximum_execution_time_rolls_back(emu: Any) -> None:
    update(emu, canary(wait=600, MaximumExecutionTimeoutInSeconds=600))
    emu.advance(600 + STAGE)
    back = describe(emu)
    assert back["EndpointStatus"] == "InService" and back["EndpointConfigName"] == "guard-ep-config"
    assert "MaximumExecutionTimeoutInSeconds (600 s)" in back["FailureReason"]


def test_retain_deployment_config_reuses_the_last_one(emu: Any) -> None:
    update(emu, canary(wait=0))
    emu.advance(10 * STAGE)
    new_config(emu, "guard-again")
    emu.fire_alarm("errors", "canary")
    update(emu, None, name="guard-again", RetainDeploymentConfig=True)
    emu.advance(10 * STAGE)
    assert "canary phase" in describe(emu)["FailureReason"]


REFUSED = [
    (
        {
            **canary(),
            "RollingUpdatePolicy": {
                "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                "WaitIntervalInSeconds": 0,
            },
        },
        "1 validation error detected: deploymentConfig: give either BlueGreenUpdatePolicy (blue/green) or RollingUpdatePolicy (rolling), not both.",
    ),
    (
        {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "BIG_BANG", "WaitIntervalInSeconds": 0}
            }
        },
        "Value 'BIG_BANG' at 'deploymentConfig.blueGreenUpdatePolicy.trafficRoutingConfiguration.type'",
    ),
    (canary(size=60), "canarySize.value: 60% must be 1 to 50 percent of the new fleet's capacity"),
    (
        {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 0}
            }
        },
        "trafficRoutingConfiguration.canarySize: required when Type is CANARY.",
    ),
    (
        {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "LINEAR",
                    "WaitIntervalInSeconds": 0,
                    "LinearStepSize": {"Type": "INSTANCE_COUNT", "Value": 1},
                }
            }
        },
        "linearStepSize.value: 1 of 1 instances (100%) must be 10 to 50 percent of the new fleet's capacity",
    ),
    (
        {
            **canary(),
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "errors"}, {"AlarmName": "nope"}]},
        },
        "deploymentConfig.autoRollbackConfiguration.alarms: the CloudWatch alarm(s) ['nope'] do not exist",
    ),
]


def test_a_refused_deployment_config_changes_nothing(emu: Any) -> None:
    before = describe(emu)
    for config, part in REFUSED:
        with pytest.raises(ClientError) as raised:
            update(emu, config)
        assert raised.value.response["Error"]["Code"] == "ValidationException"
        assert part in raised.value.response["Error"]["Message"]
        after = describe(emu)
        assert after == {**before, "ResponseMetadata": after["ResponseMetadata"]}
        assert "LastDeploymentConfig" not in after


def test_over_http_an_alarm_trigger_rolls_a_canary_back(server: Any, make_job: Any) -> None:
    from tests.integration.emulator.test_emulator_endpoints_invoke import control

    make_job("invoke-job")
    server.advance(60)
    deploy(server, "guard-ep")
    new_config(server, "guard-new")
    error_alarm(server, "errors")
    status, _ = control(
        server, "alarm-triggers", {"alarm_name": "errors", "phase": "canary", "endpoint_name": "guard-ep"}
    )
    assert status == 200
    update(server, canary(wait=30))
    server.advance(1 + 30)  # the 0.1 s stages, then the canary's bake
    server.advance(1)
    back = describe(server)
    assert (back["EndpointStatus"], back["EndpointConfigName"]) == ("InService", "guard-ep-config")
    assert "errors in ALARM during the canary baking period" in back["FailureReason"]
    assert served(server, 2) == ["AllTraffic"] * 2
    assert control(server, "alarm-triggers", method="GET")[1] == {"alarm_triggers": []}

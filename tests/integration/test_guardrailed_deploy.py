"""
Guardrailed deployments with real boto3 against the emulator (moto's CloudWatch for the alarms):
bad rollout input is refused before any AWS change, a quiet rollout promotes and records both
configs in XCom, and a rolled-back update fails the task, never reported as success.
"""

from __future__ import annotations

import pytest

from airflow_autopilot.core.promotion import PromotionInputError
from airflow_autopilot.core.rollout import AutopilotRolledBack
from airflow_autopilot.emulator import controls
from airflow_autopilot.exceptions import AutopilotJobFailed
from airflow_autopilot.operators.promotion import ROLLOUT_XCOM_KEY
from tests.airflow_versions import execute_in_thread
from tests.helpers import RecordingTI, candidate, error_alarm
from tests.integration.test_promotion_reruns import ROLLBACK, deployer

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")


@pytest.fixture
def emu(autopilot_emulator):
    autopilot_emulator.configure(stage_seconds=0.01)
    return autopilot_emulator


def nothing_created(emu) -> None:
    sm = emu.client("sagemaker")
    assert sm.list_models()["Models"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_endpoints()["Endpoints"] == []


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        (
            {"rollout": "blue-green:10%:600s"},
            "rollout: 'blue-green:10%:600s': unknown rollout type 'blue-green'",
        ),
        (
            {"rollout": "canary:80%:600s"},
            "CanarySize.Value: 80% must be 1 to 50 percent of the new fleet's capacity "
            "(operator parameter: deployment_config / rollout)",
        ),
        (
            {"rollout": "canary:1:600s"},  # one instance: a canary of 1 is all of it
            "CanarySize.Value: 1 of 1 instances (100%) must be 1 to 50 percent",
        ),
        (
            {"serverless_memory_mb": 1500, "serverless_max_concurrency": 2},
            "MemorySizeInMB: 1500 MB is not offered; SageMaker offers 1024, 2048, 3072, 4096, 5120, 6144 MB "
            "(operator parameter: serverless_memory_mb)",
        ),
        (
            {
                "deployment_config": {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
                    },
                    "RollingUpdatePolicy": {
                        "MaximumBatchSize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                        "WaitIntervalInSeconds": 0,
                    },
                }
            },
            "DeploymentConfig: give either BlueGreenUpdatePolicy (blue/green) or RollingUpdatePolicy (rolling), not both",
        ),
        (
            {"rollout": "canary:10%:600s", "auto_rollback_alarms": ["no-such-alarm"]},
            "auto_rollback_alarms: ['no-such-alarm'] do(es) not exist in CloudWatch",
        ),
    ],
)
def test_bad_rollout_input_is_refused_before_anything_is_created(emu, kwargs, says):
    with pytest.raises(PromotionInputError) as raised:
        deployer(candidate(), **kwargs).execute({})
    assert says in str(raised.value)
    nothing_created(emu)


def test_a_quiet_canary_walks_every_phase_and_promotes(emu, emulated_clock):
    first, op = guarded(emu, candidate())
    ti = RecordingTI()
    result = op.execute({"ti": ti})
    record = ti.pushed[ROLLOUT_XCOM_KEY]
    assert record["outcome"] == "promoted"
    assert record["previous_config"] == first["EndpointConfigName"]
    assert record["new_config"] == record["serving_config"] == result["EndpointConfigName"]
    # Each traffic shift, as the operator logged it: the canary's 10 %, its bake, then all of it.
    shifts = [p.split(": ", 1)[1] for p in record["phases"][:-1]]
    assert [s.split(" instances")[0] for s in shifts] == [
        "AllTraffic Creating weight 0->1",
        "AllTraffic ActivatingTraffic weight 0.1->1",
        "AllTraffic Baking weight 0.1->1",
        "AllTraffic ActivatingTraffic weight 1->1",
        "AllTraffic Baking weight 1->1",
    ]
    assert record["phases"][-1] == "InService"
    endpoint = emu.client("sagemaker").describe_endpoint(EndpointName="churn-endpoint")
    assert endpoint["EndpointConfigName"] == result["EndpointConfigName"]


def test_a_rolled_back_rollout_fails_the_task_and_records_both_configs(emu, emulated_clock):
    best = candidate()
    first = deployer(best).execute({})
    error_alarm(emu, "churn-5xx")
    ti = RecordingTI()
    op = deployer(
        best,
        inference_response_keys=["probability"],
        tags=ROLLBACK,
        rollout="linear:20%:60s",
        auto_rollback_alarms=["churn-5xx"],
        poll_interval=30,
        max_wait_seconds=7200,
    )
    with pytest.raises(AutopilotRolledBack) as raised:
        op.execute({"ti": ti})
    assert isinstance(raised.value, AutopilotJobFailed)  # never a success, no retry burned
    message = str(raised.value)
    assert controls.ROLLBACK_FAILURE_REASON in message and "Alarm(s): churn-5xx" in message
    assert "Rolled back during: " in message
    record = ti.pushed[ROLLOUT_XCOM_KEY]
    assert record == raised.value.record
    assert record["outcome"] == "rolled_back" and record["alarms"] == ["churn-5xx"]
    assert record["previous_config"] == record["serving_config"] == first["EndpointConfigName"]
    assert record["new_config"] != first["EndpointConfigName"]


def test_a_serverless_deployment_with_data_capture_sends_no_instances(emu):
    result = deployer(
        candidate(),
        serverless_memory_mb=2048,
        serverless_max_concurrency=5,
        data_capture_percentage=25,
        data_capture_s3_uri="s3://autopilot-example/capture",
    ).execute({})
    config = emu.client("sagemaker").describe_endpoint_config(EndpointConfigName=result["EndpointConfigName"])
    [variant] = config["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 25
    assert config["DataCaptureConfig"]["DestinationS3Uri"] == "s3://autopilot-example/capture"


# --- every phase, on the emulator clock: the emulator walks DeploymentConfig ----------------------
STAGE = 30.0


def guarded(handle, best, **kwargs):
    """An endpoint serving ``best`` on ``handle`` (the in-process emulator or the server), stages of
    30 s from then on, and the deploy operator that updates it with a canary watching an alarm."""
    connection = {"aws_conn_id": kwargs.pop("aws_conn_id", None)}
    # Maybe in a worker thread (the deferred case): Airflow 2 needs its safeguard set up there.
    first = execute_in_thread(deployer(best, **connection), {})
    error_alarm(handle, "churn-5xx")
    handle.configure(stage_seconds=STAGE)
    kwargs = {
        "inference_response_keys": ["probability"],
        "rollout": "canary:10%:600s",
        "auto_rollback_alarms": ["churn-5xx"],
        "poll_interval": 15,
        "max_wait_seconds": 7200,
        **connection,
        **kwargs,
    }
    return first, deployer(best, **kwargs)


def test_an_alarm_in_the_canary_rolls_back_naming_the_alarm_and_the_phase(emu, emulated_clock):
    first, op = guarded(emu, candidate())
    emu.fire_alarm("churn-5xx", "canary", endpoint_name="churn-endpoint")
    ti = RecordingTI()
    with pytest.raises(AutopilotRolledBack) as raised:
        op.execute({"ti": ti})
    message = str(raised.value)
    assert "was rolled back" in message and "Alarm(s): churn-5xx" in message
    # The alarm fired as the canary started: the canary's traffic shift is the phase it interrupted.
    assert "Rolled back during: Updating (to churn-endpoint-" in message and "weight 0.1->1" in message
    record = ti.pushed[ROLLOUT_XCOM_KEY]
    assert record["outcome"] == "rolled_back" and record["alarms"] == ["churn-5xx"]
    assert record["previous_config"] == record["serving_config"] == first["EndpointConfigName"]
    assert any(p.startswith("RollingBack") for p in record["phases"])
    endpoint = emu.client("sagemaker").describe_endpoint(EndpointName="churn-endpoint")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
        "InService",
        first["EndpointConfigName"],
    )


@pytest.mark.slow
@pytest.mark.emulated_time
async def test_a_deferred_quiet_canary_walks_every_phase_and_promotes(server):
    import asyncio

    from airflow.providers.common.compat.sdk import TaskDeferred

    first, op = await asyncio.to_thread(
        guarded, server, candidate(), deferrable=True, aws_conn_id="aws_default"
    )
    with pytest.raises(TaskDeferred) as deferred:
        await asyncio.to_thread(execute_in_thread, op, {})
    trigger = deferred.value.trigger
    assert trigger.previous_config == first["EndpointConfigName"] and trigger.alarms == ["churn-5xx"]
    [event] = [e.payload async for e in trigger.run()]
    ti = RecordingTI()
    result = op.execute_complete({"ti": ti}, event, **deferred.value.kwargs)
    record = ti.pushed[ROLLOUT_XCOM_KEY]
    assert record["outcome"] == "promoted" and record["serving_config"] == result["EndpointConfigName"]
    statuses = " ".join(record["phases"])
    assert all(
        s in statuses
        for s in ("Creating", "ActivatingTraffic weight 0.1", "Baking weight 0.1", "Baking weight 1")
    )
    assert record["phases"][-1] == "InService"


@pytest.mark.emulated_time
async def test_a_deferred_rollback_is_never_a_success(server):
    import asyncio

    from airflow.providers.common.compat.sdk import TaskDeferred

    first, op = await asyncio.to_thread(
        guarded, server, candidate(), deferrable=True, rollout="linear:50%:120s", aws_conn_id="aws_default"
    )
    server.fire_alarm("churn-5xx", "linear", endpoint_name="churn-endpoint")
    with pytest.raises(TaskDeferred) as deferred:
        await asyncio.to_thread(execute_in_thread, op, {})
    [event] = [e.payload async for e in deferred.value.trigger.run()]
    assert event["status"] == "failure" and event["rollout"]["outcome"] == "rolled_back"
    ti = RecordingTI()
    with pytest.raises(AutopilotRolledBack, match="Alarm\\(s\\): churn-5xx"):
        op.execute_complete({"ti": ti}, event, **deferred.value.kwargs)
    assert ti.pushed[ROLLOUT_XCOM_KEY]["previous_config"] == first["EndpointConfigName"]

"""Guardrailed rollouts in the core: the ``rollout`` grammar, the DeploymentConfig, serverless and
data capture rules of the tables, the three outcomes and the wait that logs each phase."""

from __future__ import annotations

import logging

import pytest

from airflow_autopilot.core.fields.endpoint import ENDPOINT_CONFIG, UPDATE_ENDPOINT, serverless_params
from airflow_autopilot.core.rollout import (
    alarm_names,
    instance_count_errors,
    parse_rollout,
    phase_of,
    rollout_outcome,
)
from airflow_autopilot.core.waits.endpoint import EndpointWait


def canary(size, wait=600, **more):
    routing = {"Type": "CANARY", "WaitIntervalInSeconds": wait, "CanarySize": size}
    return {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing, **more}}


PCT = "CAPACITY_PERCENT"
COUNT = "INSTANCE_COUNT"


# --- the grammar ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "config"),
    [
        (
            "all-at-once",
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}
                }
            },
        ),
        (
            "ALL-AT-ONCE:10m",
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 600}
                }
            },
        ),
        ("canary:10%:600s", canary({"Type": PCT, "Value": 10})),
        (
            " canary : 1 : 5m : termination-wait=2m : max-time=1h ",
            canary(
                {"Type": COUNT, "Value": 1},
                300,
                TerminationWaitInSeconds=120,
                MaximumExecutionTimeoutInSeconds=3600,
            ),
        ),
        (
            "linear:20%:300",
            {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {
                        "Type": "LINEAR",
                        "WaitIntervalInSeconds": 300,
                        "LinearStepSize": {"Type": PCT, "Value": 20},
                    }
                }
            },
        ),
        (
            "rolling:2:1h:rollback-batch=50%:max-time=2h",
            {
                "RollingUpdatePolicy": {
                    "MaximumBatchSize": {"Type": COUNT, "Value": 2},
                    "WaitIntervalInSeconds": 3600,
                    "RollbackMaximumBatchSize": {"Type": PCT, "Value": 50},
                    "MaximumExecutionTimeoutInSeconds": 7200,
                }
            },
        ),
    ],
)
def test_rollout_shorthand_gives_sagemakers_deployment_config(text, config):
    assert parse_rollout(text) == (config, [])


@pytest.mark.parametrize("empty", [None, "", "  "])
def test_no_rollout_is_no_deployment_config(empty):
    assert parse_rollout(empty) == (None, [])


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "blue-green:10%:600s",
            "unknown rollout type 'blue-green'; expected one of all-at-once, canary, linear, rolling",
        ),
        ("canary:600s", "canary takes canary:SIZE:BAKE"),
        ("canary:10%:600s:900s", "canary takes canary:SIZE:BAKE"),
        ("all-at-once:1m:2m", "all-at-once takes all-at-once[:BAKE]"),
        ("canary:ten%:600s", "size 'ten%' must be N% or a whole N instances"),
        ("linear:10%:soon", "bake 'soon' must be a duration such as 600s, 10m or 1h"),
        ("canary:10%:600s:rollback-batch=1", "option 'rollback-batch' is not one of"),
        ("rolling:1:60s:termination-wait=1m", "option 'termination-wait' is not one of"),
        ("canary:10%:600s:max-time=later", "max-time 'later' must be a duration"),
        (42, "42 must be a string"),
    ],
)
def test_a_bad_rollout_names_the_parameter_and_the_rule(text, says):
    config, errors = parse_rollout(text)
    assert config is None and len(errors) == 1
    assert errors[0].startswith("rollout: ") and says in errors[0]


def test_alarm_names_accept_a_list_one_name_or_a_rendered_list():
    assert alarm_names(["a", "b", "a"]) == (["a", "b"], [])
    assert alarm_names("p99-latency") == (["p99-latency"], [])
    assert alarm_names("a, b") == (["a", "b"], [])
    assert alarm_names("['a', 'b']") == (["a", "b"], [])
    assert alarm_names(None) == ([], [])
    _, errors = alarm_names([f"a{i}" for i in range(11)])
    assert errors == ["auto_rollback_alarms: 11 alarms given; SageMaker watches at most 10"]
    _, errors = alarm_names(["ok", ""])
    assert errors and errors[0].startswith("auto_rollback_alarms: ")


# --- the UpdateEndpoint table: verbatim configs and the shorthand get the same rules ----------------
def update_problems(**params):
    request, errors = UPDATE_ENDPOINT.build({"endpoint_name": "ep", **params})
    request["EndpointConfigName"] = "cfg-b"
    return request, errors + UPDATE_ENDPOINT.operator_messages(UPDATE_ENDPOINT.problems(request))


NAMED = "(operator parameter: deployment_config / rollout)"
ROUTING = "DeploymentConfig.BlueGreenUpdatePolicy.TrafficRoutingConfiguration"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"rollout": "canary:60%:600s"},
            f"{ROUTING}.CanarySize.Value: 60% must be 1 to 50 percent of the new fleet's capacity {NAMED}",
        ),
        (
            {"rollout": "linear:5%:60s"},
            f"{ROUTING}.LinearStepSize.Value: 5% must be 10 to 50 percent of the new fleet's capacity {NAMED}",
        ),
        (
            {"rollout": "rolling:75%:60s"},
            "DeploymentConfig.RollingUpdatePolicy.MaximumBatchSize.Value: 75% must be 5 to 50 percent "
            f"of the new fleet's capacity {NAMED}",
        ),
        (
            {"rollout": "canary:10%:2h"},
            f"{ROUTING}.WaitIntervalInSeconds: 7200 must be an integer from 0 to 3600 {NAMED}",
        ),
        (
            {"rollout": "canary:10%:600s:max-time=5m"},
            "DeploymentConfig.BlueGreenUpdatePolicy.MaximumExecutionTimeoutInSeconds: 300 must be an "
            f"integer from 600 to 28800 {NAMED}",
        ),
        (
            {
                "deployment_config": canary(None)
                | {
                    "RollingUpdatePolicy": {
                        "MaximumBatchSize": {"Type": PCT, "Value": 10},
                        "WaitIntervalInSeconds": 0,
                    }
                }
            },
            "DeploymentConfig: give either BlueGreenUpdatePolicy (blue/green) or RollingUpdatePolicy "
            f"(rolling), not both {NAMED}",
        ),
        (
            {"deployment_config": canary(None)},
            f"{ROUTING}.CanarySize: required when Type is CANARY {NAMED}",
        ),
        (
            {
                "deployment_config": {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {"Type": "LINEAR", "WaitIntervalInSeconds": 60}
                    }
                }
            },
            f"{ROUTING}.LinearStepSize: required when Type is LINEAR {NAMED}",
        ),
        (
            {
                "deployment_config": {
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {"Type": "SHADOW", "WaitIntervalInSeconds": 60}
                    }
                }
            },
            f"{ROUTING}.Type: 'SHADOW' must be one of ['ALL_AT_ONCE', 'CANARY', 'LINEAR'] {NAMED}",
        ),
        (
            {"deployment_config": {"BlueGreenPolicy": {}}},
            "DeploymentConfig: unknown member(s) ['BlueGreenPolicy']; known: ['AutoRollbackConfiguration', "
            f"'BlueGreenUpdatePolicy', 'RollingUpdatePolicy'] {NAMED}",
        ),
        (
            {"rollout": "canary:10%:60s", "deployment_config": canary({"Type": PCT, "Value": 10})},
            "rollout: give either rollout or deployment_config, not both",
        ),
        (
            {"auto_rollback_alarms": ["errors"]},
            "auto_rollback_alarms: needs a rollout or deployment_config",
        ),
        (
            {
                "deployment_config": {**canary({"Type": PCT, "Value": 10}), "AutoRollbackConfiguration": {}},
                "auto_rollback_alarms": ["errors"],
            },
            "auto_rollback_alarms: deployment_config has an AutoRollbackConfiguration already",
        ),
        (
            {
                "deployment_config": {
                    **canary({"Type": PCT, "Value": 10}),
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": f"a{i}"} for i in range(11)]},
                }
            },
            "DeploymentConfig.AutoRollbackConfiguration.Alarms: 11 alarms given; at most 10 allowed "
            "(operator parameter: auto_rollback_alarms)",
        ),
    ],
)
def test_deployment_config_rules_name_the_parameter_and_the_rule(params, message):
    _, errors = update_problems(**params)
    assert any(e.startswith(message) for e in errors), errors


def test_a_valid_rollout_with_alarms_builds_the_update_request():
    request, errors = update_problems(rollout="canary:10%:600s", auto_rollback_alarms=["5xx", "p99"])
    assert errors == []
    assert request["DeploymentConfig"] == {
        **canary({"Type": PCT, "Value": 10}),
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "5xx"}, {"AlarmName": "p99"}]},
    }


def test_instance_count_sizes_are_checked_against_the_variants_instances():
    config = canary({"Type": COUNT, "Value": 2})
    assert instance_count_errors(config, 4) == []
    [error] = instance_count_errors(config, 2)
    assert error == (
        f"{ROUTING}.CanarySize.Value: 2 of 2 instances (100%) must be 1 to 50 percent of the new "
        "fleet's capacity (operator parameter: deployment_config / rollout, initial_instance_count)"
    )
    assert instance_count_errors(config, None) == []  # serverless: no instances to count


# --- the CreateEndpointConfig table: serverless, data capture, weights ------------------------------
def config_problems(**params):
    params = serverless_params(
        {"model_name": "m", "instance_type": "ml.m5.large", "initial_instance_count": 1, **params}
    )
    request, errors = ENDPOINT_CONFIG.build(params)
    request["EndpointConfigName"] = "cfg"
    return request, errors + ENDPOINT_CONFIG.operator_messages(ENDPOINT_CONFIG.problems(request))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (
            {"serverless_memory_mb": 3000, "serverless_max_concurrency": 5},
            "ProductionVariants[0].ServerlessConfig.MemorySizeInMB: 3000 MB is not offered; SageMaker "
            "offers 1024, 2048, 3072, 4096, 5120, 6144 MB (operator parameter: serverless_memory_mb)",
        ),
        (
            {"serverless_config": {"MemorySizeInMB": 8192, "MaxConcurrency": 5}},
            "ProductionVariants[0].ServerlessConfig.MemorySizeInMB: 8192 must be an integer from 1024 to 6144",
        ),
        (
            {"serverless_memory_mb": 2048, "serverless_max_concurrency": 500},
            "ProductionVariants[0].ServerlessConfig.MaxConcurrency: 500 must be an integer from 1 to 200",
        ),
        (
            {"serverless_memory_mb": 2048},
            "ProductionVariants[0].ServerlessConfig.MaxConcurrency: required, 1 to 200",
        ),
        (
            {
                "serverless_config": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
                "instance_type": "ml.c5.xlarge",
            },
            "ProductionVariants[0].ServerlessConfig: a serverless variant takes no InstanceType: give "
            "either ServerlessConfig or instances (operator parameter: serverless_config, instance_type)",
        ),
        (
            {"serverless_config": {"MemorySizeInMB": 2048, "MaxConcurrency": 5, "ProvisionedConcurrency": 9}},
            "ProductionVariants[0].ServerlessConfig.ProvisionedConcurrency: 9 must be at most MaxConcurrency (5)",
        ),
        (
            {"data_capture_percentage": 150, "data_capture_s3_uri": "s3://bucket/capture"},
            "DataCaptureConfig.InitialSamplingPercentage: 150 must be an integer from 0 to 100 "
            "(operator parameter: data_capture_percentage)",
        ),
        (
            {"data_capture_percentage": 10},
            "DataCaptureConfig.DestinationS3Uri: required",
        ),
        (
            {
                "data_capture_config": {
                    "InitialSamplingPercentage": 5,
                    "DestinationS3Uri": "s3://b/c",
                    "CaptureOptions": [{"CaptureMode": "Both"}],
                }
            },
            "DataCaptureConfig.CaptureOptions[0].CaptureMode: 'Both' must be one of",
        ),
        (
            {"initial_variant_weight": -1},
            "ProductionVariants[0].InitialVariantWeight: -1 must be a number of at least 0",
        ),
    ],
)
def test_endpoint_option_rules_name_the_parameter_and_the_rule(params, message):
    _, errors = config_problems(**params)
    assert any(e.startswith(message) for e in errors), errors


def test_a_serverless_variant_leaves_the_instance_defaults_out():
    request, errors = config_problems(serverless_memory_mb="2048", serverless_max_concurrency=5)
    assert errors == []
    [variant] = request["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant


def test_data_capture_defaults_to_requests_and_answers():
    request, errors = config_problems(data_capture_percentage=20, data_capture_s3_uri="s3://bucket/capture")
    assert errors == []
    assert request["DataCaptureConfig"] == {
        "InitialSamplingPercentage": 20,
        "DestinationS3Uri": "s3://bucket/capture",
        "EnableCapture": True,
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
    }


# --- the outcome ----------------------------------------------------------------------------------
def described(status, config="cfg-a", **extra):
    return {"EndpointName": "ep", "EndpointStatus": status, "EndpointConfigName": config, **extra}


@pytest.mark.parametrize(
    ("endpoint", "seen", "outcome"),
    [
        (described("InService", "cfg-b"), False, "promoted"),
        (described("InService", "cfg-a", FailureReason="alarm errors in ALARM"), False, "rolled_back"),
        (described("InService", "cfg-a"), True, "rolled_back"),  # it went through RollingBack
        (described("InService", "cfg-a"), False, None),  # the update has not started
        (described("Updating", "cfg-a"), False, None),
        (described("RollingBack", "cfg-a"), True, None),
        (described("UpdateRollbackFailed", "cfg-a"), True, "failed"),
        (described("Failed", "cfg-b"), False, "failed"),
    ],
)
def test_a_deployment_ends_in_one_of_three_outcomes(endpoint, seen, outcome):
    assert rollout_outcome(endpoint, "cfg-b", rolled_back_seen=seen) == outcome


def pending(status, current, desired, config="cfg-b"):
    return {
        "EndpointConfigName": config,
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "CurrentWeight": current,
                "DesiredWeight": desired,
                "VariantStatus": [{"Status": status}],
            }
        ],
    }


CANARY_RUN = [
    described("Updating", PendingDeploymentSummary=pending("Creating", 0, 0.1)),
    described("Updating", PendingDeploymentSummary=pending("Baking", 0.1, 0.1)),
    described("Updating", PendingDeploymentSummary=pending("Baking", 0.1, 0.1)),
]


def run_wait(describes, **kwargs):
    wait = EndpointWait(
        "ep",
        "cfg-b",
        previous_config="cfg-a",
        poll_interval=1,
        log=logging.getLogger("rollout-test"),
        **kwargs,
    )
    steps = [wait.on_result(d) for d in describes]
    return wait, steps[-1]


def test_the_wait_logs_each_traffic_shift_and_promotes(caplog):
    caplog.set_level(logging.INFO, "rollout-test")
    run = [
        *CANARY_RUN,
        described("Updating", PendingDeploymentSummary=pending("ActivatingTraffic", 0.1, 1)),
        described("InService", "cfg-b"),
    ]
    wait, step = run_wait(run)
    assert step.status == "success"
    assert wait.phases == [
        "Updating (to cfg-b: AllTraffic Creating weight 0->0.1)",
        "Updating (to cfg-b: AllTraffic Baking weight 0.1->0.1)",
        "Updating (to cfg-b: AllTraffic ActivatingTraffic weight 0.1->1)",
        "InService",
    ]
    assert [r.getMessage() for r in caplog.records] == [f"Endpoint ep is {p}" for p in wait.phases]
    record = wait.record(step.subject)
    assert record == {
        "endpoint_name": "ep",
        "outcome": "promoted",
        "previous_config": "cfg-a",
        "new_config": "cfg-b",
        "serving_config": "cfg-b",
        "phases": wait.phases,
        "alarms": [],
        "rolled_back_during": None,
        "failure_reason": None,
    }


def test_an_alarm_during_the_canary_bake_ends_rolled_back_never_promoted():
    reason = "Deployment rolled back: CloudWatch alarm 'churn-5xx' in ALARM"
    run = [
        *CANARY_RUN,
        described("RollingBack", PendingDeploymentSummary=pending("Deleting", 0.1, 0)),
        described("InService", "cfg-a"),  # no FailureReason: having seen RollingBack is enough
    ]
    wait, step = run_wait(run, alarms=["churn-5xx", "churn-latency"])
    assert step.status == "failure"
    assert "the update to 'cfg-b' was rolled back" in step.message
    record = wait.record(step.subject)
    assert record["outcome"] == "rolled_back"
    assert (record["previous_config"], record["new_config"], record["serving_config"]) == (
        "cfg-a",
        "cfg-b",
        "cfg-a",
    )
    assert record["rolled_back_during"] == "Updating (to cfg-b: AllTraffic Baking weight 0.1->0.1)"
    assert record["alarms"] == ["churn-5xx", "churn-latency"]  # the reason names none: all watched
    wait, step = run_wait(
        [*run[:-1], described("InService", "cfg-a", FailureReason=reason)],
        alarms=["churn-5xx", "churn-latency"],
    )
    assert step.message.endswith(f"{reason}. Alarm(s): churn-5xx")
    assert wait.record(step.subject)["alarms"] == ["churn-5xx"]


def test_a_deferred_wait_resumes_with_the_phases_the_task_saw():
    wait, step = run_wait([described("InService", "cfg-a")], phases=["RollingBack"])
    assert step.status == "failure" and wait.record(step.subject)["outcome"] == "rolled_back"


def test_phase_of_an_endpoint_without_a_pending_deployment_is_its_status():
    assert phase_of(described("Creating")) == "Creating"
    assert phase_of(described("Updating", PendingDeploymentSummary={"EndpointConfigName": "x"})) == (
        "Updating (to x: no variant yet)"
    )


def test_the_endpoint_trigger_carries_the_rollout_state_and_round_trips():
    from airflow_autopilot.triggers import AutopilotEndpointTrigger

    trigger = AutopilotEndpointTrigger(
        "ep",
        config_name="cfg-b",
        previous_config="cfg-a",
        alarms=["a"],
        phases=["Updating"],
        aws_conn_id=None,
    )
    path, kwargs = trigger.serialize()
    assert (
        kwargs["previous_config"] == "cfg-a"
        and kwargs["alarms"] == ["a"]
        and kwargs["phases"] == ["Updating"]
    )
    assert AutopilotEndpointTrigger(**kwargs).serialize() == (path, kwargs)

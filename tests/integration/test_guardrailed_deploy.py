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
from tests.helpers import RecordingTI, candidate
from tests.integration.test_promotion_reruns import ROLLBACK, deployer


@pytest.fixture
def emu(autopilot_emulator):
    autopilot_emulator.configure(stage_seconds=0.01)
    return autopilot_emulator


def alarm(emu, name: str) -> None:
    """A CloudWatch alarm in moto's CloudWatch (quiet: INSUFFICIENT_DATA)."""
    emu.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


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
            "CanarySize.Value: 80% must be 1 to 50 percent of the variant's instances "
            "(operator parameter: deployment_config / rollout)",
        ),
        (
            {"rollout": "canary:1:600s"},  # one instance: a canary of 1 is all of it
            "CanarySize.Value: 1 of 1 instances is 100%",
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


def test_a_quiet_canary_promotes_and_records_both_configs(emu):
    best = candidate()
    first = deployer(best).execute({})
    alarm(emu, "churn-5xx")
    ti = RecordingTI()
    op = deployer(
        best,
        inference_response_keys=["probability"],
        rollout="canary:10%:600s",
        auto_rollback_alarms="churn-5xx",
    )
    result = op.execute({"ti": ti})
    record = ti.pushed[ROLLOUT_XCOM_KEY]
    assert record["outcome"] == "promoted"
    assert record["previous_config"] == first["EndpointConfigName"]
    assert record["new_config"] == record["serving_config"] == result["EndpointConfigName"]
    assert record["phases"] and record["phases"][-1] == "InService"
    endpoint = emu.client("sagemaker").describe_endpoint(EndpointName="churn-endpoint")
    assert endpoint["EndpointConfigName"] == result["EndpointConfigName"]


def test_a_rolled_back_rollout_fails_the_task_and_records_both_configs(emu):
    best = candidate()
    first = deployer(best).execute({})
    alarm(emu, "churn-5xx")
    ti = RecordingTI()
    op = deployer(
        best,
        inference_response_keys=["probability"],
        tags=ROLLBACK,
        rollout="linear:20%:60s",
        auto_rollback_alarms=["churn-5xx"],
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

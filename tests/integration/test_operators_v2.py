"""V2 jobs of every problem type through the operators on the in-process emulator: create (validated,
re-attaching, stoppable) -> wait -> best candidate -> register, and the sensor and result operators."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from airflow_autopilot.core.naming import OWNER_TAG_KEY
from airflow_autopilot.core.promotion import PromotionInputError
from airflow_autopilot.emulator.sample_data import sample_objects
from airflow_autopilot.exceptions import AutopilotJobFailed, AutopilotValidationError
from airflow_autopilot.operators import (
    AutopilotBestCandidateOperator,
    AutopilotCandidatesOperator,
    AutopilotCreateJobV2Operator,
    AutopilotDeployCandidateOperator,
    AutopilotRegisterCandidateOperator,
)
from tests.conftest import ROLE_ARN
from tests.helpers import make_context, sensor

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")

BUCKET = "v2-data"
#: Stages of 30 s on the emulator clock: the job is still running when the test stops it.
SLOW = {"autopilot-emulator:stage-seconds": "30"}
TS = {
    "TimeSeriesForecastingJobConfig": {
        "ForecastFrequency": "W",
        "ForecastHorizon": 4,
        "ForecastQuantiles": ["p10", "p50", "p90"],
        "TimeSeriesConfig": {
            "TargetAttributeName": "demand",
            "TimestampAttributeName": "week",
            "ItemIdentifierAttributeName": "item_id",
        },
    }
}
CASES: dict[str, tuple[dict[str, Any], str, dict[str, Any]]] = {
    "tabular": (
        {"TabularJobConfig": {"TargetAttributeName": "demand", "ProblemType": "Regression"}},
        "demand/",
        {"objective_metric": "RMSE"},
    ),
    "forecast": (TS, "demand/", {}),
    "text": (
        {"TextClassificationJobConfig": {"ContentColumn": "review", "TargetLabelColumn": "sentiment"}},
        "reviews/",
        {},
    ),
    "image": ({"ImageClassificationJobConfig": {}}, "images/", {"content_type": "image/png"}),
    "llm": ({"TextGenerationJobConfig": {"BaseModelName": "Falcon7BInstruct"}}, "fine-tuning/", {}),
}


@pytest.fixture
def emu(autopilot_emulator, emulated_clock):
    autopilot_emulator.configure(stage_seconds=0.05)
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    for key, body in sample_objects().items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return autopilot_emulator


def conn(**kwargs: Any) -> dict[str, Any]:
    return dict(aws_conn_id=None, region_name="us-east-1", **kwargs)


def create_op(case: str, task_id: str = "create", **overrides: Any) -> AutopilotCreateJobV2Operator:
    config, prefix, extra = CASES[case]
    kwargs = conn(
        problem_type_config=config,
        s3_input_uri=f"s3://{BUCKET}/{prefix}",
        s3_output_path=f"s3://{BUCKET}/output",
        role_arn=ROLE_ARN,
        max_candidates=2,
        poll_interval=0.05,
        deferrable=False,
        **extra,
    )
    kwargs.update(overrides)
    return AutopilotCreateJobV2Operator(task_id=task_id, **kwargs)


@pytest.mark.parametrize("case", sorted(CASES))
def test_every_problem_type_runs_create_wait_best_candidate_register(emu, case):
    op = create_op(case, job_name=f"e2e-{case}")
    result = op.execute(make_context(op))
    sm = boto3.client("sagemaker", region_name="us-east-1")
    described = sm.describe_auto_ml_job_v2(AutoMLJobName=f"e2e-{case}")
    assert result == {"AutoMLJobName": f"e2e-{case}", "AutoMLJobArn": described["AutoMLJobArn"]}
    assert described["AutoMLJobStatus"] == "Completed"
    tags = sm.list_tags(ResourceArn=described["AutoMLJobArn"])["Tags"]
    assert [t["Key"] for t in tags].count(OWNER_TAG_KEY) == 1
    poked = sensor(f"e2e-{case}").poke({})
    assert poked.is_done and poked.xcom_value["AutoMLJobStatus"] == "Completed"
    assert poked.xcom_value["AutoMLProblemTypeConfigName"] == described["AutoMLProblemTypeConfigName"]
    best = AutopilotBestCandidateOperator(task_id="best", job_name=f"e2e-{case}", **conn()).execute({})
    assert json.loads(json.dumps(best)) == best  # JSON-safe, V2 fields included
    leaderboard = AutopilotCandidatesOperator(task_id="cands", job_name=f"e2e-{case}", **conn()).execute({})
    assert best["CandidateName"] in {c["CandidateName"] for c in leaderboard}
    registered = AutopilotRegisterCandidateOperator(
        task_id="register",
        best_candidate=best,
        job_name=f"e2e-{case}",
        model_package_group_name=f"g-{case}",
        **conn(),
    ).execute({})
    package = sm.describe_model_package(ModelPackageName=registered["ModelPackageArn"])
    images = [c["Image"] for c in package["InferenceSpecification"]["Containers"]]
    if case in ("text", "image"):
        assert images == [c["Image"] for c in best["InferenceContainerDefinitions"]["CPU"]]
    else:
        assert images == [c["Image"] for c in best["InferenceContainers"]]
    if case == "forecast":
        assert "autogluon" in images[-1]
        assert best["FinalAutoMLJobObjectiveMetric"]["MetricName"] == "AverageWeightedQuantileLoss"


def test_register_and_deploy_pick_the_gpu_definitions_when_asked(emu):
    op = create_op("image", job_name="gpu-pick")
    op.execute(make_context(op))
    best = AutopilotBestCandidateOperator(task_id="best", job_name="gpu-pick", **conn()).execute({})
    registered = AutopilotRegisterCandidateOperator(
        task_id="register",
        best_candidate=best,
        job_name="gpu-pick",
        model_package_group_name="g",
        processing_unit="GPU",
        **conn(),
    ).execute({})
    sm = boto3.client("sagemaker", region_name="us-east-1")
    containers = sm.describe_model_package(ModelPackageName=registered["ModelPackageArn"])[
        "InferenceSpecification"
    ]["Containers"]
    assert "gpu" in containers[0]["Image"]
    deploy = AutopilotDeployCandidateOperator(
        task_id="deploy",
        best_candidate=best,
        endpoint_name="img-ep",
        role_arn=ROLE_ARN,
        instance_type="ml.g5.xlarge",
        **conn(),
    )
    assert "gpu" in deploy.plan().containers[0]["Image"]
    deploy.instance_type = "ml.m5.large"
    assert "cpu" in deploy.plan().containers[0]["Image"]
    forecast_like = {
        **best,
        "InferenceContainerDefinitions": {"CPU": best["InferenceContainerDefinitions"]["CPU"]},
    }
    deploy.best_candidate, deploy.processing_unit = forecast_like, "GPU"
    with pytest.raises(PromotionInputError, match="no GPU containers"):
        deploy.plan()


def test_v2_request_is_validated_before_any_call_naming_field_and_parameter(emu):
    emu.reset_request_counts()
    op = create_op(
        "forecast",
        problem_type_config={
            "TimeSeriesForecastingJobConfig": {
                **TS["TimeSeriesForecastingJobConfig"],
                "ForecastFrequency": "fortnightly",
                "ForecastQuantiles": ["p50", "p50"],
            }
        },
        objective_metric="F1",
        validation_fraction=1.5,
    )
    with pytest.raises(AutopilotValidationError) as raised:
        op.execute(make_context(op))
    text = str(raised.value)
    assert "ForecastFrequency: 'fortnightly'" in text and "(operator parameter: problem_type_config)" in text
    assert "ForecastQuantiles" in text and "twice" in text
    assert (
        "'F1' is not valid for TimeSeriesForecasting" in text
        and "(operator parameter: objective_metric)" in text
    )
    assert "ValidationFraction" in text and "(operator parameter: validation_fraction)" in text
    assert emu.request_counts() == {}


@pytest.mark.parametrize(
    "name",
    [
        "target_attribute_name",
        "problem_type",
        "mode",
        "algorithms",
        "feature_specification_s3_uri",
        "generate_candidate_definitions_only",
    ],
)
def test_v1_parameters_are_not_v2_parameters_so_a_dag_using_one_fails_to_parse(name):
    """V1's tabular parameters go inside problem_type_config: Airflow refuses them when the DAG is parsed."""
    from airflow.exceptions import AirflowException

    assert name not in AutopilotCreateJobV2Operator.template_fields
    with pytest.raises((TypeError, AirflowException), match=f"(?s)Invalid arguments.*{name}"):
        AutopilotCreateJobV2Operator(task_id="t", **{name: "x"})


def test_templated_fields_are_kept_verbatim_until_execute():
    op = AutopilotCreateJobV2Operator(
        task_id="t", problem_type_config="{{ params.cfg }}", max_candidates="{{ params.n }}"
    )
    assert op.problem_type_config == "{{ params.cfg }}" and op.max_candidates == "{{ params.n }}"
    assert {"problem_type_config", "compute_config", "s3_input_uri"} <= set(op.template_fields)


def test_retry_reattaches_and_on_kill_stops_the_v2_job(emu):
    op = create_op("text", wait_for_completion=False, tags=SLOW)
    first = op.execute(make_context(op))
    again = create_op("text", wait_for_completion=False, tags=SLOW)
    assert again.execute(make_context(again, try_number=2)) == first
    sm = boto3.client("sagemaker", region_name="us-east-1")
    assert len(sm.list_auto_ml_jobs()["AutoMLJobSummaries"]) == 1
    again.on_kill()
    assert sm.describe_auto_ml_job_v2(AutoMLJobName=first["AutoMLJobName"])["AutoMLJobStatus"] in (
        "Stopping",
        "Stopped",
    )
    third = create_op("text", wait_for_completion=False, tags=SLOW)
    assert third.execute(make_context(third, try_number=3))["AutoMLJobName"] != first["AutoMLJobName"]


def test_failed_v2_job_fails_the_wait_with_its_reason(emu):
    op = create_op(
        "forecast",
        job_name="bad-freq",
        problem_type_config={
            "TimeSeriesForecastingJobConfig": {
                **TS["TimeSeriesForecastingJobConfig"],
                "ForecastFrequency": "D",
            }
        },
    )
    with pytest.raises(AutopilotJobFailed, match="does not match the data"):
        op.execute(make_context(op))


@pytest.mark.emulated_time
@pytest.mark.parametrize("coalesce", [True, False], ids=["shared-poller", "own-describes"])
async def test_trigger_waits_for_a_v2_forecasting_job(server, coalesce):
    from airflow_autopilot.triggers import AutopilotJobTrigger
    from tests.helpers import fast_trigger

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="demand/weekly.csv", Body=sample_objects()["demand/weekly_demand.csv"])
    boto3.client("sagemaker", region_name="us-east-1").create_auto_ml_job_v2(
        AutoMLJobName="trig-v2",
        AutoMLJobInputDataConfig=[
            {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/demand/"}}}
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out"},
        AutoMLProblemTypeConfig=TS,
        RoleArn=ROLE_ARN,
        Tags=[{"Key": "autopilot-emulator:stage-seconds", "Value": "0.2"}],
    )
    events = [e async for e in fast_trigger(AutopilotJobTrigger, "trig-v2", coalesce=coalesce).run()]
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success"
    summary = payload["summary"]
    assert summary["AutoMLProblemTypeConfigName"] == "TimeSeriesForecasting"
    assert summary["BestCandidateObjectiveMetric"]["MetricName"] == "AverageWeightedQuantileLoss"


def test_deploy_result_operator_reads_a_v2_job_deployment(emu):
    from airflow_autopilot.operators import AutopilotModelDeployResultOperator

    op = create_op("image", job_name="img-deploy", model_deploy_config={"AutoGenerateEndpointName": True})
    op.execute(make_context(op))
    result = AutopilotModelDeployResultOperator(
        task_id="deploy_result", job_name="img-deploy", **conn(deferrable=False, poll_interval=0.05)
    ).execute({})
    endpoint = boto3.client("sagemaker", region_name="us-east-1").describe_endpoint(
        EndpointName=result["EndpointName"]
    )
    assert endpoint["EndpointStatus"] == "InService"

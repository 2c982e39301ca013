from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from airflow_autopilot.exceptions import AutopilotJobNotFound, AutopilotValidationError
from airflow_autopilot.hooks import DEFAULT_RETRIES, AutopilotHook
from tests.conftest import job_request

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")


@pytest.fixture
def hook(autopilot_emulator):
    return AutopilotHook(aws_conn_id=None, region_name="us-east-1")


def test_describe_returns_boto3_response(hook, make_job, autopilot_emulator):
    make_job("hook-describe")
    raw = hook.describe_auto_ml_job("hook-describe")
    assert raw["AutoMLJobName"] == "hook-describe"
    assert raw["AutoMLJobStatus"] == "InProgress"
    assert "ResponseMetadata" in raw  # exactly what boto3 returned


def test_get_job_follows_the_lifecycle_to_best_candidate(hook, make_job, autopilot_emulator):
    make_job("hook-lifecycle")
    autopilot_emulator.advance(3600)
    job = hook.get_job("hook-lifecycle")
    assert job.api_version == "v1"
    assert (job.status, job.secondary_status) == ("Completed", "Completed")
    assert job.is_terminal and job.end_time is not None
    assert job.best_candidate["CandidateName"]
    assert job.problem_type == "BinaryClassification"  # inferred by the emulator from the data
    assert job.objective_metric == "F1" and job.objective_direction == "Maximize"


def test_get_job_falls_back_to_v2_for_v2_jobs(hook, autopilot_emulator):
    client = autopilot_emulator.client()
    client.create_auto_ml_job_v2(
        AutoMLJobName="hook-v2",
        AutoMLJobInputDataConfig=[
            {
                "ChannelType": "training",
                "ContentType": "text/csv;header=present",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://b/out"},
        AutoMLProblemTypeConfig={
            "TabularJobConfig": {
                "TargetAttributeName": "y",
                "ProblemType": "Regression",
                "CompletionCriteria": {"MaxCandidates": 2},
            }
        },
        AutoMLJobObjective={"MetricName": "MSE"},
        RoleArn="arn:aws:iam::123456789012:role/r",
    )
    job = hook.get_job("hook-v2")
    assert job.api_version == "v2"
    assert job.name == "hook-v2" and job.problem_type == "Regression" and job.max_candidates == 2
    with pytest.raises(ClientError):
        hook.get_job("hook-v2", api_version="v1")


def test_not_found_names_job_and_region(hook, autopilot_emulator):
    with pytest.raises(AutopilotJobNotFound, match="'missing-job'.*us-east-1"):
        hook.describe_auto_ml_job("missing-job")
    with pytest.raises(AutopilotJobNotFound):
        hook.list_candidates("missing-job", sort_by="CreationTime")


@pytest.mark.parametrize(
    ("metric", "problem", "best_is"), [("F1", "BinaryClassification", max), ("MSE", "Regression", min)]
)
def test_list_candidates_best_first_every_page(hook, make_job, autopilot_emulator, metric, problem, best_is):
    name = f"hook-cands-{metric.lower()}"
    target = "churn" if problem == "BinaryClassification" else "income"
    make_job(
        name,
        target=target,
        ProblemType=problem,
        AutoMLJobObjective={"MetricName": metric},
        AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 5}},
    )
    autopilot_emulator.advance(3600)
    autopilot_emulator.reset_request_counts()
    candidates = hook.list_candidates(name)
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in candidates]
    assert len(values) >= 2
    assert values[0] == best_is(values)
    assert values == sorted(values, reverse=best_is is max)
    assert hook.get_job(name).best_candidate["CandidateName"] == candidates[0]["CandidateName"]
    top = hook.list_candidates(name, limit=2)
    assert [c["CandidateName"] for c in top] == [c["CandidateName"] for c in candidates[:2]]


def test_create_validates_before_any_call(hook, autopilot_emulator):
    autopilot_emulator.reset_request_counts()
    with pytest.raises(AutopilotValidationError, match="AutoMLJobName"):
        hook.create_auto_ml_job(job_request("bad_name"))
    assert autopilot_emulator.request_counts().get("CreateAutoMLJob", 0) == 0
    assert hook.list_auto_ml_jobs() == []


def test_create_list_and_stop(hook, make_job, autopilot_emulator):
    import boto3

    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="autopilot-test-data")
    arn = hook.create_auto_ml_job(job_request("hook-create"))
    assert arn.endswith(":automl-job/hook-create")
    assert [j["AutoMLJobName"] for j in hook.list_auto_ml_jobs(NameContains="hook-create")] == ["hook-create"]
    assert hook.stop_auto_ml_job("hook-create") is True
    autopilot_emulator.advance(3600)
    assert hook.get_job("hook-create").status == "Stopped"
    # Already terminal: no error, no stop call.
    autopilot_emulator.reset_request_counts()
    assert hook.stop_auto_ml_job("hook-create") is False
    assert autopilot_emulator.request_counts().get("StopAutoMLJob", 0) == 0


def test_list_auto_ml_jobs_reads_every_page(hook, make_job, autopilot_emulator):
    for i in range(5):
        make_job(f"hook-page-{i}")
    jobs = hook.list_auto_ml_jobs(NameContains="hook-page", MaxResults=2)
    assert sorted(j["AutoMLJobName"] for j in jobs) == [f"hook-page-{i}" for i in range(5)]


def test_default_retries_and_user_config_wins(autopilot_emulator):
    assert AutopilotHook(aws_conn_id=None).config.retries == DEFAULT_RETRIES
    own = AutopilotHook(aws_conn_id=None, config={"retries": {"mode": "adaptive", "max_attempts": 3}})
    assert own.config.retries == {"mode": "adaptive", "max_attempts": 3}


def test_throttling_is_retried_by_botocore(hook, make_job, autopilot_emulator, instant_aws_retries):
    make_job("hook-throttle")
    autopilot_emulator.inject_faults("hook-throttle", throttle=2, server_errors=1)
    autopilot_emulator.reset_request_counts()
    assert hook.describe_auto_ml_job("hook-throttle")["AutoMLJobName"] == "hook-throttle"
    assert autopilot_emulator.request_counts()["DescribeAutoMLJob"] == 4  # 3 faults, then the answer


def test_stop_race_with_job_ending_is_not_an_error(hook):
    """A narrow path the emulator cannot produce: the job ends between describe and stop."""
    client = hook.client
    with Stubber(client) as stub:
        running = {"AutoMLJobName": "j", "AutoMLJobArn": "arn:aws:sagemaker:us-east-1:1:automl-job/j"}
        stub.add_response("describe_auto_ml_job", _describe(running, "InProgress"), {"AutoMLJobName": "j"})
        stub.add_client_error("stop_auto_ml_job", "ValidationException", "Job already completed", 400)
        stub.add_response("describe_auto_ml_job", _describe(running, "Completed"), {"AutoMLJobName": "j"})
        assert hook.stop_auto_ml_job("j") is False
        stub.assert_no_pending_responses()


def _describe(base, status):
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    return {
        **base,
        "InputDataConfig": [
            {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/p"}},
                "TargetAttributeName": "y",
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/o"},
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "CreationTime": now,
        "LastModifiedTime": now,
        "AutoMLJobStatus": status,
        "AutoMLJobSecondaryStatus": status,
    }

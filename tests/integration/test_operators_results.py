"""BestCandidate, ModelDeployResult and Candidates operators on every emulator outcome (in-process)."""

from __future__ import annotations

import json

import boto3
import pytest

from airflow_autopilot.exceptions import AutopilotError, AutopilotJobFailed, AutopilotValidationError
from airflow_autopilot.operators import (
    AutopilotBestCandidateOperator,
    AutopilotCandidatesOperator,
    AutopilotModelDeployResultOperator,
)
from tests.helpers import endpoint_backend

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")

DEPLOY = {"ModelDeployConfig": {"AutoGenerateEndpointName": True}}


@pytest.fixture
def emu(autopilot_emulator):
    autopilot_emulator.configure(stage_seconds=1.0)
    return autopilot_emulator


@pytest.fixture
def sm(emu):
    return boto3.client("sagemaker", region_name="us-east-1")


@pytest.fixture
def ended_job(emu, make_job):
    """``ended_job(name, outcome=None, **request)``: create a job and move the clock past its end."""

    def _make(name, outcome=None, **overrides):
        make_job(name, outcome=outcome, **overrides)
        emu.advance(3600)
        return name

    return _make


def conn(**kwargs):
    return dict(aws_conn_id=None, region_name="us-east-1", **kwargs)


# ------------------------------------------------------------------------------ BestCandidate


@pytest.mark.parametrize("outcome", [None, "runtime-limit", "deploy-error"])
def test_best_candidate_is_json_safe_with_sagemaker_keys(ended_job, sm, outcome):
    name = ended_job(f"best-{outcome or 'ok'}", outcome=outcome, **DEPLOY)
    value = AutopilotBestCandidateOperator(task_id="best", job_name=name, **conn()).execute({})
    described = sm.describe_auto_ml_job(AutoMLJobName=name)["BestCandidate"]
    assert set(value) == set(described)
    assert {"CandidateName", "FinalAutoMLJobObjectiveMetric", "InferenceContainers", "CandidateSteps"} <= set(
        value
    )
    assert value["CreationTime"] == described["CreationTime"].isoformat()
    assert json.loads(json.dumps(value)) == value  # plain JSON, nothing lost


@pytest.mark.parametrize(
    ("outcome", "overrides", "expected"),
    [
        ("failed", {}, r"Failed/Failed.*FailureReason"),
        ("runtime-limit-no-candidate", {}, r"Completed/MaxAutoMLJobRuntimeReached"),
        (
            None,
            {"GenerateCandidateDefinitionsOnly": True},
            r"CandidateDefinitionsGenerated.*definitions only",
        ),
    ],
)
def test_ended_job_without_best_candidate_fails_or_skips(ended_job, outcome, overrides, expected):
    from airflow.providers.common.compat.sdk import AirflowSkipException

    name = ended_job(f"nobest-{(outcome or 'defs')[:20]}", outcome=outcome, **overrides)
    with pytest.raises(AutopilotJobFailed, match=f"No BestCandidate.*{expected}"):
        AutopilotBestCandidateOperator(task_id="best", job_name=name, **conn()).execute({})
    with pytest.raises(AirflowSkipException, match=expected):
        AutopilotBestCandidateOperator(task_id="best", job_name=name, skip_if_missing=True, **conn()).execute(
            {}
        )


def test_stopped_job_with_a_finished_candidate_returns_it_with_a_warning(ended_job, sm, capsys):
    name = ended_job("best-stopped", outcome="stopped")
    value = AutopilotBestCandidateOperator(task_id="best", job_name=name, **conn()).execute({})
    assert (
        value["CandidateName"]
        == sm.describe_auto_ml_job(AutoMLJobName=name)["BestCandidate"]["CandidateName"]
    )
    assert "ended Stopped/Stopped" in capsys.readouterr().out


def test_running_job_points_at_the_sensor(emu, make_job):
    make_job("still-running")
    with pytest.raises(AutopilotError, match=r"InProgress/.*AutopilotJobSensor") as raised:
        AutopilotBestCandidateOperator(task_id="best", job_name="still-running", **conn()).execute({})
    assert not isinstance(raised.value, AutopilotJobFailed)  # a retry may find it ended


def test_bad_job_name_fails_before_any_call(emu):
    with pytest.raises(AutopilotValidationError, match="job_name"):
        AutopilotBestCandidateOperator(task_id="best", job_name="not_valid", **conn()).execute({})
    assert emu.request_counts() == {}


# ------------------------------------------------------------------------------ ModelDeployResult


def test_deploy_result_and_endpoint_in_service(ended_job, sm):
    name = ended_job("deploy-ok", **DEPLOY)
    op = AutopilotModelDeployResultOperator(
        task_id="deploy", job_name=name, wait_for_endpoint=True, deferrable=False, poll_interval=1, **conn()
    )
    value = op.execute({})
    assert value == sm.describe_auto_ml_job(AutoMLJobName=name)["ModelDeployResult"]
    assert sm.describe_endpoint(EndpointName=value["EndpointName"])["EndpointStatus"] == "InService"


def test_deploy_result_with_a_named_endpoint(ended_job):
    name = ended_job(
        "deploy-named", ModelDeployConfig={"AutoGenerateEndpointName": False, "EndpointName": "churn-ep"}
    )
    op = AutopilotModelDeployResultOperator(task_id="deploy", job_name=name, **conn())
    assert op.execute({}) == {"EndpointName": "churn-ep"}


@pytest.mark.parametrize(
    ("outcome", "overrides", "expected"),
    [
        (None, {}, "asked for no deployment"),
        ("deploy-error", DEPLOY, r"deployment .* failed.*ModelDeploymentError"),
        ("failed", DEPLOY, r"deployment .* failed.*Failed/Failed"),
    ],
)
def test_missing_deployment_fails_or_skips(ended_job, outcome, overrides, expected):
    from airflow.providers.common.compat.sdk import AirflowSkipException

    name = ended_job(f"nodeploy-{(outcome or 'none')[:20]}", outcome=outcome, **overrides)
    with pytest.raises(AutopilotJobFailed, match=expected):
        AutopilotModelDeployResultOperator(task_id="deploy", job_name=name, **conn()).execute({})
    with pytest.raises(AirflowSkipException, match=expected):
        AutopilotModelDeployResultOperator(
            task_id="deploy", job_name=name, skip_if_missing=True, **conn()
        ).execute({})


def test_deploy_result_of_a_running_job_points_at_the_sensor(emu, make_job):
    make_job("deploy-running", **DEPLOY)
    with pytest.raises(AutopilotError, match="AutopilotJobSensor"):
        AutopilotModelDeployResultOperator(task_id="deploy", job_name="deploy-running", **conn()).execute({})


def test_endpoint_not_in_service_defers_to_the_endpoint_trigger(ended_job, sm):
    """An endpoint still Updating: the task defers to AutopilotEndpointTrigger and resumes from its event."""
    from airflow.providers.common.compat.sdk import TaskDeferred

    name = ended_job("deploy-defer", **DEPLOY)
    endpoint = sm.describe_auto_ml_job(AutoMLJobName=name)["ModelDeployResult"]["EndpointName"]
    endpoint_backend(endpoint).endpoint_status = "Updating"  # moto never reports Updating itself
    op = AutopilotModelDeployResultOperator(
        task_id="deploy", job_name=name, wait_for_endpoint=True, deferrable=True, poll_interval=5, **conn()
    )
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    path, kwargs = deferred.value.trigger.serialize()
    assert path == "airflow_autopilot.triggers.AutopilotEndpointTrigger"
    assert kwargs["endpoint_name"] == endpoint and kwargs["config_name"] is None
    assert kwargs["poll_interval"] == 5 and kwargs["timeout_at"]
    result = deferred.value.kwargs["result"]
    assert op.execute_complete({}, {"status": "success", "endpoint_name": endpoint}, result=result) == result
    with pytest.raises(AutopilotJobFailed, match="capacity"):
        op.execute_complete({}, {"status": "failure", "message": "is Failed: capacity"}, result=result)
    with pytest.raises(AutopilotError, match="did not reach InService") as timeout:
        op.execute_complete({}, {"status": "timeout", "message": "Timed out"}, result=result)
    assert not isinstance(timeout.value, AutopilotJobFailed)  # a timeout may succeed on retry


def test_failed_endpoint_fails_with_its_reason(ended_job, sm):
    name = ended_job("deploy-broken", **DEPLOY)
    endpoint = sm.describe_auto_ml_job(AutoMLJobName=name)["ModelDeployResult"]["EndpointName"]
    backend = endpoint_backend(endpoint)
    backend.endpoint_status, backend.failure_reason = "Failed", "capacity"
    with pytest.raises(AutopilotJobFailed, match="is Failed: capacity"):
        AutopilotModelDeployResultOperator(
            task_id="deploy", job_name=name, wait_for_endpoint=True, **conn()
        ).execute({})


# ------------------------------------------------------------------------------ Candidates


@pytest.mark.parametrize(
    ("problem", "metric", "target"),
    [("BinaryClassification", "F1", "churn"), ("Regression", "MSE", "income")],
)
def test_top_k_best_first_with_leaderboard(ended_job, sm, capsys, problem, metric, target):
    name = ended_job(
        f"top-{metric.lower()}",
        target=target,
        ProblemType=problem,
        AutoMLJobObjective={"MetricName": metric},
        AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 6}},
    )
    value = AutopilotCandidatesOperator(task_id="top", job_name=name, top_k="3", **conn()).execute({})
    assert len(value) == 3
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in value]
    assert values == sorted(values, reverse=(metric == "F1"))
    best = sm.describe_auto_ml_job(AutoMLJobName=name)["BestCandidate"]["CandidateName"]
    assert value[0]["CandidateName"] == best
    assert json.loads(json.dumps(value)) == value
    log = capsys.readouterr().out
    assert "Top 3 candidate(s)" in log and best in log
    assert "CandidateName" in log and "Training time" in log and metric in log


def test_no_candidates_gives_an_empty_list(ended_job, capsys):
    name = ended_job("top-none", outcome="runtime-limit-no-candidate")
    assert AutopilotCandidatesOperator(task_id="top", job_name=name, **conn()).execute({}) == []
    assert "no candidates with status Completed" in capsys.readouterr().out


def test_top_k_must_be_positive(emu):
    with pytest.raises(AutopilotError, match="top_k"):
        AutopilotCandidatesOperator(task_id="top", job_name="any-job", top_k=0, **conn()).execute({})
    assert emu.request_counts() == {}

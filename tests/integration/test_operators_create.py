"""AutopilotCreateJobOperator against the in-process emulator: validation, idempotency, on_kill."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest

from airflow_autopilot.core.naming import OWNER_TAG_KEY, STOPPED_BY_TAG_KEY
from airflow_autopilot.exceptions import (
    AutopilotJobFailed,
    AutopilotJobNameConflict,
    AutopilotValidationError,
)
from airflow_autopilot.operators import AutopilotCreateJobOperator
from tests.conftest import DATA_BUCKET, ROLE_ARN, upload_training_data
from tests.helpers import RUN_STARTED, make_context, operator

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")


@pytest.fixture
def emu(autopilot_emulator, emulated_clock):
    autopilot_emulator.configure(stage_seconds=0.05)
    upload_training_data()
    autopilot_emulator.reset_request_counts()
    return autopilot_emulator


@pytest.fixture
def sm(emu):
    return boto3.client("sagemaker", region_name="us-east-1")


# ------------------------------------------------------------------------------ request building


def test_every_parameter_reaches_the_request(emu, sm):
    op = operator(
        job_name="full-request",
        wait_for_completion=False,
        validation_s3_input_uri=f"s3://{DATA_BUCKET}/train/",
        content_type="text/csv;header=present",
        compression_type="None",
        problem_type="BinaryClassification",
        objective_metric="AUC",
        max_candidates="4",  # as a Jinja template renders it
        max_runtime_per_training_job_in_seconds=600,
        max_auto_ml_job_runtime_in_seconds=3600,
        mode="ENSEMBLING",
        algorithms=["xgboost", "lightgbm"],
        security_config={"EnableInterContainerTrafficEncryption": True},
        feature_specification_s3_uri=f"s3://{DATA_BUCKET}/features.json",
        model_deploy_config={"AutoGenerateEndpointName": True},
        tags={"team": "ml"},
        extras={"AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 5}}},
    )
    ctx = make_context(op)
    result = op.execute(ctx)
    assert result == {
        "AutoMLJobName": "full-request",
        "AutoMLJobArn": sm.describe_auto_ml_job(AutoMLJobName="full-request")["AutoMLJobArn"],
    }
    described = sm.describe_auto_ml_job(AutoMLJobName="full-request")
    assert [c.get("ChannelType") for c in described["InputDataConfig"]] == ["training", "validation"]
    assert described["AutoMLJobObjective"] == {"MetricName": "AUC"}
    config = described["AutoMLJobConfig"]
    # extras merged last and key by key: MaxCandidates overridden, the other criteria kept
    assert config["CompletionCriteria"] == {
        "MaxCandidates": 5,
        "MaxRuntimePerTrainingJobInSeconds": 600,
        "MaxAutoMLJobRuntimeInSeconds": 3600,
    }
    assert config["Mode"] == "ENSEMBLING"
    assert config["CandidateGenerationConfig"]["AlgorithmsConfig"] == [
        {"AutoMLAlgorithms": ["xgboost", "lightgbm"]}
    ]
    assert described["ModelDeployConfig"]["AutoGenerateEndpointName"] is True
    tags = sm.list_tags(ResourceArn=described["AutoMLJobArn"])["Tags"]
    assert {"Key": "team", "Value": "ml"} in tags
    assert [t["Key"] for t in tags].count(OWNER_TAG_KEY) == 1
    assert ctx["pushed"]["autopilot_job_details"]["job_name"] == "full-request"  # link persisted


def test_problem_type_alone_gets_its_default_metric(emu, sm):
    op = operator(
        job_name="default-metric",
        problem_type="Regression",
        target_attribute_name="income",
        wait_for_completion=False,
    )
    op.execute(make_context(op))
    assert sm.describe_auto_ml_job(AutoMLJobName="default-metric")["AutoMLJobObjective"] == {
        "MetricName": "MSE"
    }


GOOD_CHANNEL = {
    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA_BUCKET}/train/"}},
    "TargetAttributeName": "churn",
}

BAD_INPUTS = [
    ({"job_name": "bad_name"}, "AutoMLJobName", "job_name"),
    ({"job_name": "x" * 33}, "AutoMLJobName", "at most 32"),
    ({"job_name_prefix": "p" * 20}, "job_name_prefix", "at most 19"),
    ({"job_name": "ok-name", "job_name_prefix": "pre"}, "job_name_prefix", "not both"),
    ({"s3_input_uri": "bucket/train"}, "S3Uri", "s3_input_uri"),
    ({"target_attribute_name": None}, "TargetAttributeName", "required"),
    ({"input_data_config": [GOOD_CHANNEL]}, "s3_input_uri", "not both"),
    (
        {"input_data_config": [GOOD_CHANNEL] * 3, "s3_input_uri": None, "target_attribute_name": None},
        "InputDataConfig",
        "at most 2",
    ),
    ({"content_type": "application/json"}, "ContentType", "must be one of"),
    ({"compression_type": "Zip"}, "CompressionType", "must be one of"),
    ({"s3_output_path": None}, "S3OutputPath", "s3_output_path"),
    ({"role_arn": "arn:aws:iam::123:role/short"}, "RoleArn", "role_arn"),
    ({"problem_type": "Clustering"}, "ProblemType", "problem_type"),
    ({"problem_type": "Regression", "objective_metric": "F1"}, "MetricName", "not valid for Regression"),
    ({"objective_metric": "F1"}, "give both or neither", "problem_type, objective_metric"),
    ({"max_candidates": 0}, "MaxCandidates", "max_candidates"),
    ({"max_candidates": "many"}, "MaxCandidates", "from 1 to 750"),
    ({"max_auto_ml_job_runtime_in_seconds": -5}, "MaxAutoMLJobRuntimeInSeconds", "positive integer"),
    ({"validation_fraction": 1.5}, "ValidationFraction", "validation_fraction"),
    ({"mode": "FAST"}, "Mode", "mode"),
    ({"algorithms": ["xgboost"]}, "AlgorithmsConfig", "not allowed when Mode is AUTO"),
    ({"mode": "HYPERPARAMETER_TUNING", "algorithms": ["catboost"]}, "AutoMLAlgorithms", "not available"),
    ({"algorithms": "xgboost", "mode": "ENSEMBLING"}, "algorithms", "must be a list"),
    (
        {"model_deploy_config": {"AutoGenerateEndpointName": True, "EndpointName": "e"}},
        "ModelDeployConfig",
        "must not be given",
    ),
    (
        {
            "model_deploy_config": {"AutoGenerateEndpointName": True},
            "generate_candidate_definitions_only": True,
        },
        "ModelDeployConfig",
        "nothing can be deployed",
    ),
    ({"generate_candidate_definitions_only": "yes"}, "GenerateCandidateDefinitionsOnly", "true or false"),
    ({"tags": {f"k{i}": "v" for i in range(51)}}, "tags: 51 tags given", "at most 49"),
    ({"tags": {f"k{i}": "v" for i in range(50)}}, "tags: 50 tags given", "at most 49"),
    ({"tags": {OWNER_TAG_KEY: "forged"}}, "tags", "reserved"),
    ({"tags": "team=ml"}, "tags", "must be a dict"),
    ({"extras": ["not", "a", "dict"]}, "extras", "must be a dict"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "rule"), BAD_INPUTS, ids=[b[1] + ":" + b[2] for b in BAD_INPUTS]
)
def test_bad_input_names_the_field_and_creates_nothing(emu, sm, overrides, field, rule):
    op = operator(**overrides)
    with pytest.raises(AutopilotValidationError) as raised:
        op.execute(make_context(op))
    message = str(raised.value)
    assert field in message and rule in message, message
    assert emu.request_counts() == {}  # not a single AWS call, so no CreateAutoMLJob
    assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"] == []


def test_all_problems_are_reported_at_once(emu):
    op = operator(role_arn="nope", max_candidates=0, mode="FAST")
    with pytest.raises(AutopilotValidationError) as raised:
        op.execute(make_context(op))
    assert len(raised.value.errors) == 3
    assert emu.request_counts() == {}


# ------------------------------------------------------------------------------ idempotency


def test_second_try_reattaches_instead_of_creating(emu, sm):
    op = operator(retries=3, wait_for_completion=False)
    first = op.execute(make_context(op, try_number=1))
    second = op.execute(make_context(op, try_number=2))  # same try chain: max_tries unchanged
    assert first == second
    assert emu.request_counts()["CreateAutoMLJob"] == 1
    assert len(sm.list_auto_ml_jobs()["AutoMLJobSummaries"]) == 1


def test_reattach_to_a_finished_job_returns_without_waiting_again(emu, sm):
    op = operator(retries=1)
    first = op.execute(make_context(op))
    emu.reset_request_counts()
    assert op.execute(make_context(op, try_number=2)) == first
    counts = emu.request_counts()
    assert "CreateAutoMLJob" not in counts
    assert counts["DescribeAutoMLJob"] <= 2


def test_resource_in_use_race_reattaches(emu, sm):
    """A parallel try created the job between our describe and our create."""
    op = operator(wait_for_completion=False)
    first = op.execute(make_context(op))

    class LateDescribe(AutopilotCreateJobOperator):
        calls = 0

        def find_job(self, job_name):
            LateDescribe.calls += 1
            return None if LateDescribe.calls == 1 else super().find_job(job_name)

    racer = LateDescribe(
        task_id="create",
        **{
            k: getattr(op, k)
            for k in (
                "s3_input_uri",
                "target_attribute_name",
                "s3_output_path",
                "role_arn",
                "max_candidates",
                "aws_conn_id",
                "region_name",
            )
        },
        wait_for_completion=False,
    )
    emu.reset_request_counts()
    assert racer.execute(make_context(racer)) == first
    assert emu.request_counts()["CreateAutoMLJob"] == 1  # the attempt answered ResourceInUse
    assert len(sm.list_auto_ml_jobs()["AutoMLJobSummaries"]) == 1


def test_names_differ_per_run_map_index_and_cleared_try_chain(emu):
    op = operator(wait_for_completion=False)
    names = {
        op.execute(make_context(op, run_id="r1"))["AutoMLJobName"],
        op.execute(make_context(op, run_id="r2"))["AutoMLJobName"],
        op.execute(make_context(op, run_id="r1", map_index=3))["AutoMLJobName"],
        # after a clear Airflow raises max_tries: a new try chain, so a new job
        op.execute(make_context(op, run_id="r1", max_tries=op.retries + 2, try_number=3))["AutoMLJobName"],
    }
    assert len(names) == 4
    assert all(n.startswith("create-") and len(n) <= 32 for n in names)


def test_name_taken_by_an_unrelated_job_fails_clearly(emu, sm):
    sm.create_auto_ml_job(
        AutoMLJobName="taken-name",
        InputDataConfig=[GOOD_CHANNEL],
        OutputDataConfig={"S3OutputPath": f"s3://{DATA_BUCKET}/output"},
        RoleArn=ROLE_ARN,
    )
    op = operator(job_name="taken-name")
    with pytest.raises(
        AutopilotJobNameConflict, match=r"'taken-name' is taken by a job this task try did not create.*absent"
    ):
        op.execute(make_context(op))
    assert emu.request_counts()["CreateAutoMLJob"] == 1  # only ours above


def test_fixed_name_reused_by_another_run_fails_clearly(emu):
    op = operator(job_name="fixed-name", wait_for_completion=False)
    op.execute(make_context(op, run_id="r1"))
    with pytest.raises(AutopilotJobNameConflict, match="another DAG run, task or try chain"):
        op.execute(make_context(op, run_id="r2"))


# ------------------------------------------------------------------------------ outcomes and kill


@pytest.mark.parametrize(
    ("outcome", "raises", "match"),
    [
        ("success", None, None),
        ("runtime-limit", None, None),  # Completed with the candidates finished in time
        ("runtime-limit-no-candidate", AutopilotJobFailed, "MaxAutoMLJobRuntimeReached.*no BestCandidate"),
        ("failed", AutopilotJobFailed, "Failed/Failed"),
        ("stopped", AutopilotJobFailed, "Stopped"),
        ("deploy-error", AutopilotJobFailed, "ModelDeploymentError"),
    ],
)
def test_wait_for_completion_outcomes(emu, outcome, raises, match):
    extra = {"model_deploy_config": {"AutoGenerateEndpointName": True}} if outcome == "deploy-error" else {}
    op = operator(tags={"autopilot-emulator:outcome": outcome}, **extra)
    if raises is None:
        assert op.execute(make_context(op))["AutoMLJobName"].startswith("create-")
    else:
        with pytest.raises(raises, match=match):
            op.execute(make_context(op))


def test_candidate_definitions_only_completes(emu, sm):
    op = operator(generate_candidate_definitions_only=True)
    name = op.execute(make_context(op))["AutoMLJobName"]
    described = sm.describe_auto_ml_job(AutoMLJobName=name)
    assert described["AutoMLJobSecondaryStatus"] == "CandidateDefinitionsGenerated"


def test_wait_timeout_leaves_the_job_running(emu, sm):
    op = operator(tags={"autopilot-emulator:outcome": "slow"}, max_wait_seconds=0.2)
    with pytest.raises(AutopilotJobFailed, match="Timed out"):
        op.execute(make_context(op))
    assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"][0]["AutoMLJobStatus"] == "InProgress"


def test_on_kill_stops_a_running_job(emu, sm):
    op = operator(tags={"autopilot-emulator:outcome": "slow"}, wait_for_completion=False)
    name = op.execute(make_context(op))["AutoMLJobName"]
    op.on_kill()
    assert emu.request_counts()["StopAutoMLJob"] == 1
    assert sm.describe_auto_ml_job(AutoMLJobName=name)["AutoMLJobStatus"] in ("Stopping", "Stopped")


def test_on_kill_leaves_a_finished_job_alone(emu, sm):
    op = operator()
    name = op.execute(make_context(op))["AutoMLJobName"]
    op.on_kill()
    assert "StopAutoMLJob" not in emu.request_counts()
    assert sm.describe_auto_ml_job(AutoMLJobName=name)["AutoMLJobStatus"] == "Completed"


def test_on_kill_before_execute_does_nothing(emu):
    operator().on_kill()
    assert emu.request_counts() == {}


def test_init_touches_no_aws_and_keeps_templates_verbatim(emu):
    op = operator(
        job_name="{{ ds_nodash }}-job", max_candidates="{{ params.n }}", tags={"run": "{{ run_id }}"}
    )
    assert op.job_name == "{{ ds_nodash }}-job"
    assert op.max_candidates == "{{ params.n }}"
    assert "hook" not in op.__dict__
    assert emu.request_counts() == {}


# ------------------------------------------------------------------------------ deferrable


def test_deferrable_checks_once_then_defers_with_a_serializable_trigger(emu):
    from airflow.providers.common.compat.sdk import TaskDeferred

    op = operator(deferrable=True, max_wait_seconds=600, tags={"autopilot-emulator:outcome": "slow"})
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(make_context(op))
    trigger = deferred.value.trigger
    path, kwargs = trigger.serialize()
    assert path == "airflow_autopilot.triggers.AutopilotJobTrigger"
    assert kwargs["job_name"].startswith("create-") and kwargs["timeout_at"]
    assert kwargs["poll_interval"] == 0.05
    assert not any("secret" in str(v).lower() or "testing" in str(v) for v in kwargs.values())
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.kwargs["job_arn"].endswith(kwargs["job_name"])


def test_deferrable_returns_at_once_when_the_job_already_succeeded(emu):
    op = operator(retries=1, wait_for_completion=True)
    first = op.execute(make_context(op))  # sync: the job is Completed now
    retry = operator(retries=1, deferrable=True)
    assert retry.execute(make_context(retry, try_number=2)) == first  # re-attached, no deferral


# ------------------------------------------------------------------------------ kills, re-runs, identity


def test_retry_after_our_on_kill_starts_a_new_job(emu, sm, capsys):
    """execution_timeout or SIGTERM: on_kill stops the job; the retry must not re-attach to it."""
    op = operator(retries=2, tags={"autopilot-emulator:outcome": "slow"}, wait_for_completion=False)
    first = op.execute(make_context(op, try_number=1))
    op.on_kill()
    assert sm.describe_auto_ml_job(AutoMLJobName=first["AutoMLJobName"])["AutoMLJobStatus"] == "Stopping"
    tags = sm.list_tags(ResourceArn=first["AutoMLJobArn"])["Tags"]
    assert {t["Key"] for t in tags} >= {OWNER_TAG_KEY, STOPPED_BY_TAG_KEY}

    retry = operator(retries=2, tags={"autopilot-emulator:outcome": "slow"}, wait_for_completion=False)
    capsys.readouterr()
    second = retry.execute(make_context(retry, try_number=2))
    log = capsys.readouterr().out
    assert second["AutoMLJobName"] != first["AutoMLJobName"]
    assert second["AutoMLJobName"].startswith("create-") and len(second["AutoMLJobName"]) <= 32
    assert emu.request_counts()["CreateAutoMLJob"] == 2
    assert "stopped by an earlier try of this task (on_kill)" in log
    assert f"starting a new job {second['AutoMLJobName']}" in log
    # The new job belongs to the same try chain: a further retry re-attaches to it, not to the first.
    third = operator(retries=2, tags={"autopilot-emulator:outcome": "slow"}, wait_for_completion=False)
    assert third.execute(make_context(third, try_number=3)) == second
    assert emu.request_counts()["CreateAutoMLJob"] == 2


def test_retry_after_our_on_kill_with_a_fixed_name_gets_a_suffixed_name(emu, sm):
    op = operator(job_name="fixed-job", retries=1, tags={"autopilot-emulator:outcome": "slow"})
    op.wait_for_completion = False
    op.execute(make_context(op))
    op.on_kill()
    retry = operator(job_name="fixed-job", retries=1, wait_for_completion=False)
    assert retry.execute(make_context(retry, try_number=2))["AutoMLJobName"] == "fixed-job-r1"


def test_retry_after_someone_else_stopped_the_job_still_fails(emu, sm):
    op = operator(retries=1, tags={"autopilot-emulator:outcome": "slow"}, wait_for_completion=False)
    name = op.execute(make_context(op))["AutoMLJobName"]
    sm.stop_auto_ml_job(AutoMLJobName=name)  # not our on_kill: no marker
    emu.advance(60)
    retry = operator(retries=1, tags={"autopilot-emulator:outcome": "slow"})
    with pytest.raises(AutopilotJobFailed, match="Stopped"):
        retry.execute(make_context(retry, try_number=2))
    assert emu.request_counts()["CreateAutoMLJob"] == 1


def test_on_kill_marker_on_a_job_that_kept_running_is_dropped_on_reattach(emu, sm):
    """The marker went on but StopAutoMLJob never happened: the retry re-attaches and clears it."""
    op = operator(retries=1, tags={"autopilot-emulator:outcome": "slow"}, wait_for_completion=False)
    first = op.execute(make_context(op))
    sm.add_tags(ResourceArn=first["AutoMLJobArn"], Tags=[{"Key": STOPPED_BY_TAG_KEY, "Value": "try 1"}])
    retry = operator(retries=1, tags={"autopilot-emulator:outcome": "slow"}, wait_for_completion=False)
    assert retry.execute(make_context(retry, try_number=2)) == first
    tags = sm.list_tags(ResourceArn=first["AutoMLJobArn"])["Tags"]
    assert STOPPED_BY_TAG_KEY not in {t["Key"] for t in tags}


def test_a_new_run_instance_with_the_same_run_id_gets_a_new_job(emu, sm):
    """A DAG run deleted and triggered again (or a rebuilt metadata DB) must not inherit the old job."""
    op = operator(tags={"autopilot-emulator:outcome": "failed"})
    with pytest.raises(AutopilotJobFailed):
        op.execute(make_context(op))
    again = operator()
    later = RUN_STARTED + timedelta(days=1)
    result = again.execute(make_context(again, run_started=later))  # same dag, task, run_id
    assert sm.describe_auto_ml_job(AutoMLJobName=result["AutoMLJobName"])["AutoMLJobStatus"] == "Completed"
    assert emu.request_counts()["CreateAutoMLJob"] == 2


def test_a_fixed_name_from_another_run_instance_is_a_conflict(emu):
    op = operator(job_name="fixed-instance", wait_for_completion=False)
    op.execute(make_context(op))
    with pytest.raises(AutopilotJobNameConflict, match="another DAG run"):
        op.execute(make_context(op, run_started=RUN_STARTED + timedelta(hours=1)))


def test_changing_retries_between_tries_keeps_the_job(emu, sm):
    op = operator(retries=3, wait_for_completion=False)
    first = op.execute(make_context(op, max_tries=3, try_number=1))
    edited = operator(retries=1, wait_for_completion=False)  # the DAG file changed before try 2
    assert edited.execute(make_context(edited, max_tries=3, try_number=2)) == first
    assert emu.request_counts()["CreateAutoMLJob"] == 1


def test_extras_tags_merge_with_ours_and_a_retry_reattaches(emu, sm):
    kwargs = dict(
        retries=1,
        wait_for_completion=False,
        tags={"team": "ml", "cost-center": "a"},
        extras={"Tags": [{"Key": "cost-center", "Value": "b"}, {"Key": "project", "Value": "churn"}]},
    )
    op = operator(**kwargs)
    first = op.execute(make_context(op))
    tags = {t["Key"]: t["Value"] for t in sm.list_tags(ResourceArn=first["AutoMLJobArn"])["Tags"]}
    assert {k: v for k, v in tags.items() if k != OWNER_TAG_KEY} == {
        "team": "ml",
        "cost-center": "b",  # extras are merged last
        "project": "churn",
    }
    assert OWNER_TAG_KEY in tags
    retry = operator(**kwargs)
    assert retry.execute(make_context(retry, try_number=2)) == first
    assert emu.request_counts()["CreateAutoMLJob"] == 1


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (
            {
                "tags": {f"t{i}": "v" for i in range(30)},
                "extras": {"Tags": [{"Key": f"e{i}", "Value": "v"} for i in range(20)]},
            },
            r"tags: 50 tags given \(tags and extras\['Tags'\] together\); at most 49.*airflow-autopilot:owner",
        ),
        ({"extras": {"Tags": [{"Key": OWNER_TAG_KEY, "Value": "forged"}]}}, r"extras\['Tags'\].*reserved"),
        ({"extras": {"Tags": "team=ml"}}, r"extras\['Tags'\]: must be a dict"),
    ],
)
def test_extras_tags_are_checked_with_ours_counted(emu, overrides, match):
    op = operator(**overrides)
    with pytest.raises(AutopilotValidationError, match=match):
        op.execute(make_context(op))
    assert emu.request_counts() == {}

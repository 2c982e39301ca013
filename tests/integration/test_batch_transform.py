"""Batch transform with a candidate and model approval, against the in-process emulator (real boto3)."""

from __future__ import annotations

import csv
import io
import json
from types import SimpleNamespace

import pytest

from airflow_autopilot.core.promotion import PromotionInputError
from airflow_autopilot.exceptions import AutopilotJobFailed
from airflow_autopilot.operators.promotion import AutopilotRegisterCandidateOperator
from airflow_autopilot.operators.transform import AutopilotBatchTransformOperator
from airflow_autopilot.sensors import AutopilotModelApprovalSensor
from tests.conftest import DATA_BUCKET, ROLE_ARN

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")

ROWS = ["25,2000", "31,4100", "47,1200"]


@pytest.fixture
def emu(autopilot_emulator, emulated_clock):
    autopilot_emulator.configure(stage_seconds=0.01)
    return autopilot_emulator


@pytest.fixture
def job(emu, make_job):
    make_job("score-job")
    emu.advance(60)
    s3 = emu.client("s3")
    s3.put_object(Bucket=DATA_BUCKET, Key="score/day1/a.csv", Body="\n".join(ROWS[:2]) + "\n")
    s3.put_object(Bucket=DATA_BUCKET, Key="score/day1/b.csv", Body=ROWS[2] + "\n")
    return emu.client("sagemaker").describe_auto_ml_job(AutoMLJobName="score-job")


def context(try_number=1, max_tries=0):
    ti = SimpleNamespace(
        dag_id="d", task_id="score", run_id="r1", map_index=-1, try_number=try_number, max_tries=max_tries
    )
    return {"ti": ti, "dag_run": SimpleNamespace(start_date="2024-01-01T00:00:00+00:00")}


def transform(**kwargs):
    args = dict(
        task_id="score",
        s3_input_uri=f"s3://{DATA_BUCKET}/score/day1/",
        s3_output_path=f"s3://{DATA_BUCKET}/predictions/day1",
        role_arn=ROLE_ARN,
        job_name="score-job",
        aws_conn_id=None,
        poll_interval=0.01,
        max_wait_seconds=60,
        deferrable=False,
    )
    args.update(kwargs)
    return AutopilotBatchTransformOperator(**args)


def read(emu, key):
    return emu.client("s3").get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode()


def test_scores_every_row_with_the_best_candidate_through_its_whole_pipeline(emu, job):
    result = transform(inference_response_keys=["predicted_label", "probability"]).execute(context())
    json.dumps(result)
    best = job["BestCandidate"]
    assert result["TransformJobStatus"] == "Completed" and result["CandidateName"] == best["CandidateName"]
    assert result["OutputS3Uri"] == f"s3://{DATA_BUCKET}/predictions/day1"
    assert result["InputS3Uri"] == f"s3://{DATA_BUCKET}/score/day1/"
    sm = emu.client("sagemaker")
    model = sm.describe_model(ModelName=result["ModelName"])
    assert [c["Image"] for c in model["Containers"]] == [c["Image"] for c in best["InferenceContainers"]]
    assert (
        model["Containers"][-1]["Environment"]["SAGEMAKER_INFERENCE_OUTPUT"] == "predicted_label,probability"
    )
    described = sm.describe_transform_job(TransformJobName=result["TransformJobName"])
    assert (
        described["TransformInput"]["SplitType"] == "Line"
        and described["TransformOutput"]["AssembleWith"] == "Line"
    )
    a = list(csv.reader(io.StringIO(read(emu, "predictions/day1/a.csv.out"))))
    b = list(csv.reader(io.StringIO(read(emu, "predictions/day1/b.csv.out"))))
    assert len(a) == 2 and len(b) == 1
    for label, probability in a + b:
        assert label in ("yes", "no") and 0.5 <= float(probability) <= 1
    # Deterministic per candidate: a second job (another try chain) writes the same predictions.
    again = transform(
        s3_output_path=f"s3://{DATA_BUCKET}/predictions/again",
        inference_response_keys=["predicted_label", "probability"],
    )
    again.execute(context(max_tries=1))
    assert read(emu, "predictions/again/a.csv.out") == read(emu, "predictions/day1/a.csv.out")


def test_json_lines_joined_with_the_input_and_a_named_candidate(emu, job):
    other = next(
        c["CandidateName"]
        for c in emu.client("sagemaker").list_candidates_for_auto_ml_job(AutoMLJobName="score-job")[
            "Candidates"
        ]
        if c["CandidateName"] != job["BestCandidate"]["CandidateName"]
    )
    result = transform(
        candidate_name=other,
        accept="application/jsonlines",
        join_source="Input",
        inference_response_keys=["predicted_label", "probabilities", "labels"],
    ).execute(context())
    assert result["CandidateName"] == other
    lines = [json.loads(line) for line in read(emu, "predictions/day1/a.csv.out").splitlines()]
    assert [line["SageMakerInput"] for line in lines] == [row.split(",") for row in ROWS[:2]]
    for line in lines:
        out = line["SageMakerOutput"]
        assert out["labels"] == ["no", "yes"] and abs(sum(out["probabilities"]) - 1) < 1e-5
        assert out["predicted_label"] == out["labels"][out["probabilities"].index(max(out["probabilities"]))]


def test_input_that_does_not_match_the_model_columns_fails_with_the_reason(emu, job):
    emu.client("s3").put_object(Bucket=DATA_BUCKET, Key="score/bad/x.csv", Body="25,2000,yes\n")
    with pytest.raises(AutopilotJobFailed, match="has 3 columns; the model expects 2"):
        transform(s3_input_uri=f"s3://{DATA_BUCKET}/score/bad/").execute(context())


def test_a_retry_reattaches_and_on_kill_makes_the_next_try_start_anew(emu, job):
    emu.configure(stage_seconds=30)  # the job runs long enough to be killed
    first = transform(wait_for_completion=False)
    started = first.execute(context())
    assert started["TransformJobStatus"] == "InProgress"
    first.on_kill()
    sm = emu.client("sagemaker")
    assert (
        sm.describe_transform_job(TransformJobName=started["TransformJobName"])["TransformJobStatus"]
        == "Stopping"
    )
    emu.advance(31)
    retry = transform(poll_interval=10).execute(context(try_number=2))
    assert (
        retry["TransformJobName"] != started["TransformJobName"]
        and retry["TransformJobStatus"] == "Completed"
    )
    # Another retry of the same chain re-attaches to that job instead of creating one.
    third = transform().execute(context(try_number=3))
    assert third["TransformJobName"] == retry["TransformJobName"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"inference_response_keys": ["predicted_label", "score"]},
            "inference_response_keys: ['score'] not supported",
        ),
        ({"s3_input_uri": f"s3://{DATA_BUCKET}/nothing-here/"}, "s3_input_uri: no object under"),
        (
            {"instance_type": "m5.large"},
            "TransformResources.InstanceType: 'm5.large' must be a SageMaker instance type such as "
            "ml.m5.large (ml.<family>.<size>) (operator parameter: instance_type)",
        ),
        (
            {"split_type": "Lines"},
            "TransformInput.SplitType: 'Lines' must be one of ['Line', 'None', 'RecordIO', 'TFRecord'] "
            "(operator parameter: split_type)",
        ),
        ({"join_source": "Output"}, "DataProcessing.JoinSource: 'Output' must be one of ['Input', 'None']"),
        ({"best_candidate": {"CandidateName": "x"}}, "give exactly one source"),
        ({"candidate_name": "nope"}, "candidate_name: 'nope' is not a candidate"),
        (
            {"s3_output_path": "bucket/out"},
            "TransformOutput.S3OutputPath: 'bucket/out' must match (https|s3)://([^/]+)/?(.*) "
            "(for example s3://bucket/prefix) (operator parameter: s3_output_path)",
        ),
    ],
)
def test_bad_input_is_refused_before_anything_is_created(emu, job, kwargs, message):
    sm = emu.client("sagemaker")
    # The job's candidates name transform jobs of their own (CandidateSteps): only those may exist.
    step_jobs = {j["TransformJobName"] for j in sm.list_transform_jobs()["TransformJobSummaries"]}
    with pytest.raises(PromotionInputError) as err:
        transform(**kwargs).execute(context())
    assert message in str(err.value)
    assert sm.list_models()["Models"] == []
    assert {j["TransformJobName"] for j in sm.list_transform_jobs()["TransformJobSummaries"]} == step_jobs


def test_approval_sensor_waits_for_a_person_and_fails_or_skips_on_rejection(emu, job):
    from airflow.providers.common.compat.sdk import AirflowSkipException

    best = json.loads(json.dumps(job["BestCandidate"], default=str))
    register = AutopilotRegisterCandidateOperator(
        task_id="register",
        best_candidate=best,
        job_name="score-job",
        model_package_group_name="g",
        aws_conn_id=None,
    )
    arn = register.execute({})["ModelPackageArn"]
    sensor = AutopilotModelApprovalSensor(
        task_id="approval", model_package_arn=arn, aws_conn_id=None, poke_interval=1
    )
    assert sensor.poke({}) is False
    sm = emu.client("sagemaker")
    sm.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="looks good"
    )
    done = sensor.poke({})
    assert done.xcom_value["ModelApprovalStatus"] == "Approved"
    # Approving kept the metadata the champion rule reads (moto alone would drop it).
    assert done.xcom_value["CustomerMetadataProperties"]["autopilot:candidate-name"] == best["CandidateName"]

    sm.update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Rejected", ApprovalDescription="bias found"
    )
    with pytest.raises(AutopilotJobFailed, match="Rejected: bias found"):
        AutopilotModelApprovalSensor(task_id="a2", model_package_arn=arn, aws_conn_id=None).poke({})
    with pytest.raises(AirflowSkipException):
        AutopilotModelApprovalSensor(
            task_id="a3", model_package_arn=arn, aws_conn_id=None, on_rejection="skip"
        ).poke({})
    with pytest.raises(Exception, match="model_package_arn"):
        AutopilotModelApprovalSensor(task_id="a4", model_package_arn="None", aws_conn_id=None).poke({})


def test_batch_transform_publishes_its_output_and_lineage(emu, job):
    from airflow_autopilot.assets import BATCH_TRANSFORM_OUTPUT_ALIAS, asset_alias
    from tests.airflow_versions import alias_events, outlet_event_accessors

    operator = transform(emit_asset_events=True)
    assert operator.outlets == [asset_alias(BATCH_TRANSFORM_OUTPUT_ALIAS)]
    planned = operator.planned_lineage()
    assert [d.uri for d in planned.inputs] == [f"s3://{DATA_BUCKET}/score/day1"]
    assert [d.uri for d in planned.outputs] == [f"s3://{DATA_BUCKET}/predictions/day1"]
    events = outlet_event_accessors()
    result = operator.execute({**context(), "outlet_events": events})
    (event,) = alias_events(events, asset_alias(BATCH_TRANSFORM_OUTPUT_ALIAS))
    assert event == (
        f"s3://{DATA_BUCKET}/predictions/day1",
        {
            "transform_job_name": result["TransformJobName"],
            "transform_job_arn": result["TransformJobArn"],
            "model_name": result["ModelName"],
            "candidate_name": job["BestCandidate"]["CandidateName"],
            "job_name": "score-job",
            "input_s3_uri": f"s3://{DATA_BUCKET}/score/day1",
            "output_s3_path": f"s3://{DATA_BUCKET}/predictions/day1",
        },
    )
    assert operator.recorded_lineage.asset_uri == event[0]

    pending = transform(
        emit_asset_events=True, wait_for_completion=False, s3_output_path=f"s3://{DATA_BUCKET}/p2"
    )
    quiet = outlet_event_accessors()
    pending.execute({**context(max_tries=1), "outlet_events": quiet})
    assert alias_events(quiet, asset_alias(BATCH_TRANSFORM_OUTPUT_ALIAS)) == []  # not written yet
    assert [d.uri for d in pending.recorded_lineage.outputs] == [f"s3://{DATA_BUCKET}/p2"]

"""The approval step of the promotion example and the nightly scoring example, in real ``dag.test()``
runs against the emulator server."""

from __future__ import annotations

import csv
import io
import threading
import time

import pytest
import requests

from airflow_autopilot.demo.runner import load_dag_file, task_states
from airflow_autopilot.emulator import controls
from airflow_autopilot.emulator.sample_data import churn_csv
from airflow_autopilot.operators import AutopilotRegisterCandidateOperator
from tests.conftest import DAGS
from tests.system.test_rollback_dag import BUCKET as ROLLBACK_BUCKET
from tests.system.test_rollback_dag import finished_candidate


@pytest.fixture
def emulator(autopilot_emulator_server, monkeypatch):
    autopilot_emulator_server.configure(stage_seconds=0.05)
    monkeypatch.setenv("AUTOPILOT_EXAMPLE_POLL_SECONDS", "0.2")
    return autopilot_emulator_server


def load(name: str):
    return load_dag_file(DAGS / f"{name}.py", name)


def decide_when_pending(emulator, status: str, seen: list) -> threading.Thread:
    """A person in SageMaker Studio: waits for a PendingManualApproval version and for the approval
    sensor to have checked once and deferred, then decides it through the emulator's control API."""
    deferred = threading.Event()

    def on_request(operation: str, user_agent: str) -> None:
        # The sensor's trigger polling the version: a hook's request from no task's execute.
        if operation == "DescribeModelPackage" and "Caller/Unknown" in user_agent:
            deferred.set()

    def person() -> None:
        sm = emulator.client("sagemaker")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                pending = sm.list_model_packages(
                    ModelPackageGroupName="autopilot-churn", ModelApprovalStatus="PendingManualApproval"
                )["ModelPackageSummaryList"]
            except Exception:  # the group does not exist yet
                pending = []
            if pending:
                deferred.wait(timeout=10)
                seen.append(sm.list_endpoints()["Endpoints"])  # nothing deployed before the decision
                arn = pending[0]["ModelPackageArn"]
                answer = requests.post(
                    f"{emulator.endpoint_url}/moto-api/autopilot-emulator/approval",
                    json={"model_package_arn": arn, "status": status, "description": f"{status} by a test"},
                    timeout=10,
                )
                assert answer.status_code == 200, answer.text
                return
            time.sleep(0.2)

    remove = controls.observe_requests(on_request)

    def person_then_stop_observing() -> None:
        try:
            person()
        finally:
            remove()

    thread = threading.Thread(target=person_then_stop_observing, daemon=True)
    thread.start()
    return thread


def test_promotion_waits_for_a_person_then_deploys(emulator, run_dag):
    seen: list = []
    person = decide_when_pending(emulator, "Approved", seen)
    dag_run, xcoms = run_dag(
        load("example_autopilot_promotion"), run_conf={"approval_status": "PendingManualApproval"}
    )
    person.join(5)
    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert seen == [[]]  # the DAG was waiting, with no endpoint, when the person approved
    assert xcoms["approval"]["ModelApprovalStatus"] == "Approved"
    assert xcoms["approval"]["ApprovalDescription"] == "Approved by a test"
    assert states["deploy"] == "success"
    sm = emulator.client("sagemaker")
    assert sm.describe_endpoint(EndpointName="autopilot-churn")["EndpointStatus"] == "InService"
    decision = xcoms["gate:promotion_decision"]
    assert {row["condition"] for row in decision["conditions"]} >= {
        "metric Precision (Validation)",
        "metric Recall (Validation)",
        "metric LogLoss (Validation)",
        "ModelInsights binary_classification_metrics.auc.value",
    }


def test_a_rejected_version_is_not_deployed(emulator, run_dag):
    person = decide_when_pending(emulator, "Rejected", [])
    dag_run, _ = run_dag(
        load("example_autopilot_promotion"),
        run_conf={"approval_status": "PendingManualApproval", "on_rejection": "skip"},
    )
    person.join(5)
    states = task_states(dag_run)
    assert (states["approval"], states["deploy"]) == ("skipped", "skipped"), states
    assert emulator.client("sagemaker").list_endpoints()["Endpoints"] == []


@pytest.mark.slow  # the gate's rejections are covered in tests/integration/test_gates.py
def test_a_metric_condition_rejects_the_candidate(emulator, run_dag):
    dag_run, xcoms = run_dag(load("example_autopilot_promotion"), run_conf={"min_recall": 0.99})
    states = task_states(dag_run)
    assert (states["reject"], states["register"]) == ("success", "skipped"), states
    assert "metric Recall (Validation)" in xcoms["reject"]["reason"]


def approved_version(emulator) -> dict:
    """
    What a promotion run leaves the nightly scoring: an Approved version in ``autopilot-churn`` of a
    finished churn job's best candidate, registered by the register operator as the promotion
    example does (whose own run is checked end to end in test_example_dags.py; a second one here
    would cost seconds).
    """
    s3 = emulator.client("s3")
    s3.create_bucket(Bucket=ROLLBACK_BUCKET)
    s3.put_object(Bucket=ROLLBACK_BUCKET, Key="train/churn.csv", Body=churn_csv(120).encode())
    best = finished_candidate(emulator, "churn-scored")
    return AutopilotRegisterCandidateOperator(
        task_id="register",
        best_candidate=best,
        job_name="churn-scored",
        model_package_group_name="autopilot-churn",
        approval_status="Approved",
    ).execute({})


def test_nightly_scoring_writes_a_prediction_per_row(emulator, run_dag):
    from airflow_autopilot.emulator.sample_data import scoring_csv

    registered = approved_version(emulator)
    assert registered["ModelPackageArn"]
    dag_run, xcoms = run_dag(load("example_autopilot_nightly_scoring"))
    states = task_states(dag_run)
    assert dag_run.state == "success", states
    result = xcoms["score"]
    assert result["TransformJobStatus"] == "Completed"
    bucket, prefix = result["OutputS3Uri"].removeprefix("s3://").split("/", 1)
    body = emulator.client("s3").get_object(Bucket=bucket, Key=f"{prefix}/customers.csv.out")["Body"].read()
    rows = list(csv.reader(io.StringIO(body.decode())))
    inputs = list(csv.reader(io.StringIO(scoring_csv())))
    assert len(rows) == len(inputs) == 20
    for row, given in zip(rows, inputs, strict=True):
        assert row[:5] == given  # joined with its input row
        label, probability = row[5:]
        assert label in ("yes", "no") and 0.5 <= float(probability) <= 1.0
    registered = emulator.client("sagemaker").list_model_packages(ModelPackageGroupName="autopilot-churn")
    assert result["CandidateName"] in {
        emulator.client("sagemaker").describe_model_package(ModelPackageName=p["ModelPackageArn"])[
            "CustomerMetadataProperties"
        ]["autopilot:candidate-name"]
        for p in registered["ModelPackageSummaryList"]
    }

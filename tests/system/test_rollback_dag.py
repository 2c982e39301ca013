"""The rollback example DAG in a real ``dag.test()`` run against the emulator server: two promoted
versions of the churn model, then one trigger puts the endpoint back on the first."""

from __future__ import annotations

import json
import time

import pytest

from airflow_autopilot.demo.runner import load_dag_file, task_states
from airflow_autopilot.emulator.sample_data import churn_csv
from airflow_autopilot.operators import AutopilotDeployCandidateOperator, AutopilotRegisterCandidateOperator
from tests.conftest import DAGS, ROLE_ARN
from tests.helpers import RecordingTI, error_alarm

BUCKET = "rollback-example"
ENDPOINT = "autopilot-churn"
GROUP = "autopilot-churn"
ALARM = "autopilot-churn-5xx"


@pytest.fixture
def emulator(autopilot_emulator_server, monkeypatch):
    autopilot_emulator_server.configure(stage_seconds=0.05)
    monkeypatch.setenv("AUTOPILOT_EXAMPLE_POLL_SECONDS", "0.2")
    return autopilot_emulator_server


def finished_candidate(emulator, name: str) -> dict:
    """The best candidate of a churn job (the promotion example's data) once it has finished."""
    sm = emulator.client("sagemaker")
    sm.create_auto_ml_job(
        AutoMLJobName=name,
        InputDataConfig=[
            {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}},
                "TargetAttributeName": "churn",
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        ProblemType="BinaryClassification",
        AutoMLJobObjective={"MetricName": "F1"},
        RoleArn=ROLE_ARN,
    )
    deadline = time.monotonic() + 30
    while (job := sm.describe_auto_ml_job(AutoMLJobName=name))["AutoMLJobStatus"] != "Completed":
        assert time.monotonic() < deadline, job["AutoMLJobStatus"]
        time.sleep(0.05)
    return json.loads(json.dumps(job["BestCandidate"], default=str))


def promote(best: dict, job: str) -> tuple[str, dict]:
    """Register the candidate as an Approved version and deploy it as the promotion example does."""
    registered = AutopilotRegisterCandidateOperator(
        task_id="register",
        best_candidate=best,
        job_name=job,
        model_package_group_name=GROUP,
        approval_status="Approved",
    ).execute({})
    deployed = AutopilotDeployCandidateOperator(
        task_id="deploy",
        best_candidate=best,
        endpoint_name=ENDPOINT,
        role_arn=ROLE_ARN,
        inference_response_keys=["predicted_label", "probability"],
        rollout="all-at-once",
        poll_interval=0.05,
        deferrable=False,
    ).execute({"ti": RecordingTI()})
    return registered["ModelPackageArn"], deployed


def promote_two_versions(server) -> tuple[tuple[str, dict], tuple[str, dict]]:
    """The rollback DAG's world: its training data and alarm, then two versions promoted in turn
    (the second serving); each as (ModelPackageArn, deploy result)."""
    s3 = server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="train/churn.csv", Body=churn_csv(120).encode())
    error_alarm(server, ALARM)
    first = promote(finished_candidate(server, "churn-v1"), "churn-v1")
    return first, promote(finished_candidate(server, "churn-v2"), "churn-v2")


def test_rollback_dag_restores_the_previous_approved_version(emulator, run_dag):
    (first_arn, first), (_, second) = promote_two_versions(emulator)
    sm = emulator.client("sagemaker")
    assert sm.describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"] == second["EndpointConfigName"]

    dag = load_dag_file(DAGS / "example_autopilot_rollback.py", "example_autopilot_rollback")
    dag_run, xcoms = run_dag(dag, run_conf={"rollout": "canary:50%:0s"})

    states = task_states(dag_run)
    assert dag_run.state == "success", states
    chosen = xcoms["rollback:rollback_target"]
    assert chosen["ModelPackageArn"] == first_arn and chosen["ModelPackageVersion"] == 1
    # The first promotion's model and config serve again, through a guardrailed update.
    assert xcoms["rollback"]["EndpointConfigName"] == first["EndpointConfigName"]
    endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == first["EndpointConfigName"]
    record = xcoms["rollback:rollout"]
    assert record["outcome"] == "promoted" and record["previous_config"] == second["EndpointConfigName"]
    smoke = xcoms["smoke_test"]
    assert smoke["passed"] and smoke["rows_sent"] == 2

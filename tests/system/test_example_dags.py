"""The example DAGs in dags/ in real ``dag.test()`` runs against the emulator server."""

from __future__ import annotations

import re

import pytest
import requests

from airflow_autopilot.demo.runner import load_dag_file, task_states
from tests.conftest import DAGS


@pytest.fixture
def emulator(autopilot_emulator_server, monkeypatch):
    """The emulator server with fast stages; the example DAGs poll every 0.2 s."""
    autopilot_emulator_server.configure(stage_seconds=0.05)
    monkeypatch.setenv("AUTOPILOT_EXAMPLE_POLL_SECONDS", "0.2")
    return autopilot_emulator_server


def load(name: str):
    return load_dag_file(DAGS / f"{name}.py", name)


def test_promotion_dag_promotes_registers_and_deploys(emulator, run_dag):
    dag_run, xcoms = run_dag(load("example_autopilot_promotion"))
    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert states["reject"] == "skipped"
    assert all(state == "success" for task, state in states.items() if task != "reject"), states

    sm = emulator.client("sagemaker")
    job = sm.describe_auto_ml_job(AutoMLJobName=xcoms["create_job"]["AutoMLJobName"])
    best = job["BestCandidate"]
    assert xcoms["best_candidate"]["CandidateName"] == best["CandidateName"]
    assert [c["CandidateName"] for c in xcoms["leaderboard"]][0] == best["CandidateName"]
    decision = xcoms["gate:promotion_decision"]
    assert decision["promote"] and decision["value"] == best["FinalAutoMLJobObjectiveMetric"]["Value"]
    assert decision["threshold"] == 0.6 and decision["champion_arn"] is None

    package = sm.describe_model_package(ModelPackageName=xcoms["register"]["ModelPackageArn"])
    assert package["ModelPackageGroupName"] == "autopilot-churn"
    assert package["ModelApprovalStatus"] == "Approved"
    assert package["CustomerMetadataProperties"]["autopilot:candidate-name"] == best["CandidateName"]

    endpoint = sm.describe_endpoint(EndpointName="autopilot-churn")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == xcoms["deploy"]["EndpointConfigName"]
    model = sm.describe_model(ModelName=xcoms["deploy"]["ModelName"])
    assert len(model["Containers"]) == len(best["InferenceContainers"])
    assert any(
        c["Environment"].get("SAGEMAKER_INFERENCE_OUTPUT") == "predicted_label,probability"
        for c in model["Containers"]
    )
    # A new endpoint: created directly (no traffic to shift), then smoke-tested with training rows.
    assert xcoms["deploy:rollout"]["outcome"] == "promoted"
    assert xcoms["deploy:rollout"]["previous_config"] is None
    smoke = xcoms["smoke_test"]
    assert smoke == xcoms["smoke_test:smoke_test"] and smoke["passed"]
    assert smoke["rows_sent"] == 5 and smoke["failures"] == 0
    assert all(a["answer"]["predicted_label"] in ("no", "yes") for a in smoke["answers"])
    alarm = emulator.client("cloudwatch").describe_alarms(AlarmNames=["autopilot-churn-5xx"])
    assert alarm["MetricAlarms"][0]["Dimensions"][0] == {"Name": "EndpointName", "Value": "autopilot-churn"}


def test_promotion_dag_rejects_below_threshold(emulator, run_dag):
    dag_run, xcoms = run_dag(load("example_autopilot_promotion"), run_conf={"threshold": 1.5})
    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert (states["gate"], states["reject"], states["register"], states["deploy"]) == (
        "success",
        "success",
        "skipped",
        "skipped",
    )
    assert xcoms["reject"]["promote"] is False
    assert "misses the threshold" in xcoms["reject"]["reason"]
    sm = emulator.client("sagemaker")
    assert sm.list_model_package_groups()["ModelPackageGroupSummaryList"] == []
    assert sm.list_endpoints()["Endpoints"] == []


def test_promotion_dag_failed_job_stops_before_promotion(emulator, run_dag, capfd, caplog):
    dag_run, xcoms = run_dag(
        load("example_autopilot_promotion"), run_conf={"job_name_prefix": "emu-failed-churn"}
    )
    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["wait_for_job"] == "failed"
    for task in ("best_candidate", "leaderboard", "gate", "register", "deploy", "reject"):
        assert states[task] == "upstream_failed", (task, states)
    job_name = xcoms["create_job"]["AutoMLJobName"]
    reason = emulator.client("sagemaker").describe_auto_ml_job(AutoMLJobName=job_name)["FailureReason"]
    output = capfd.readouterr()
    # The sensor failed with the job's reason: Airflow 3 prints the task log (3.0 in a traceback box
    # wrapped at 80 columns, hence the comparison without whitespace and box lines), Airflow 2 logs it
    # (after its initdb, alembic's logging config sends the records to a stream captured before the test).
    printed = re.sub(r"[\s│]+", "", output.out + output.err + caplog.text)
    assert reason and re.sub(r"\s+", "", reason) in printed
    assert emulator.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"] == []


def test_one_click_deploy_dag_smoke_checks_the_endpoint(emulator, run_dag):
    queued = requests.post(
        f"{emulator.endpoint_url}/moto-api/static/sagemaker/endpoint-results",
        json={
            "account_id": "123456789012",
            "region": "us-east-1",
            "results": [
                {
                    "Body": "yes,0.87",
                    "ContentType": "text/csv",
                    "InvokedProductionVariant": "AllTraffic",
                    "CustomAttributes": "",
                }
            ],
        },
        timeout=10,
    )
    assert queued.status_code == 201, queued.text
    dag_run, xcoms = run_dag(load("example_autopilot_one_click_deploy"))
    states = task_states(dag_run)
    assert dag_run.state == "success", states
    job = emulator.client("sagemaker").describe_auto_ml_job(
        AutoMLJobName=xcoms["create_job"]["AutoMLJobName"]
    )
    endpoint = job["ModelDeployResult"]["EndpointName"]
    assert xcoms["deploy_result"] == {"EndpointName": endpoint}
    smoke = xcoms["smoke_check"]
    assert smoke["EndpointName"] == endpoint and smoke["EndpointStatus"] == "InService"
    assert smoke["Prediction"] == ["yes", "0.87"]
    assert smoke["Input"].count(",") == 4  # five features, no target


def test_watch_existing_job_dag(emulator, run_dag, make_job):
    make_job("watched-job")
    dag_run, xcoms = run_dag(
        load("example_autopilot_watch_existing_job"), run_conf={"job_name": "watched-job"}
    )
    assert dag_run.state == "success", task_states(dag_run)
    job = emulator.client("sagemaker").describe_auto_ml_job(AutoMLJobName="watched-job")
    assert xcoms["wait_for_job"]["AutoMLJobStatus"] == "Completed"
    assert xcoms["best_candidate"]["CandidateName"] == job["BestCandidate"]["CandidateName"]
    assert len(xcoms["leaderboard"]) == 5


def test_forecast_dag_runs_a_v2_time_series_job_and_registers_the_forecaster(emulator, run_dag):
    dag_run, xcoms = run_dag(load("example_autopilot_forecast"))
    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert (states["register"], states["reject"]) == ("success", "skipped")
    sm = emulator.client("sagemaker")
    job = sm.describe_auto_ml_job_v2(AutoMLJobName=xcoms["create_forecast_job"]["AutoMLJobName"])
    assert job["AutoMLProblemTypeConfigName"] == "TimeSeriesForecasting"
    config = job["AutoMLProblemTypeConfig"]["TimeSeriesForecastingJobConfig"]
    assert (config["ForecastHorizon"], config["ForecastQuantiles"]) == (4, ["p10", "p50", "p90"])
    best = job["BestCandidate"]
    assert xcoms["best_candidate"]["CandidateName"] == best["CandidateName"]
    decision = xcoms["gate:promotion_decision"]
    assert (decision["metric_name"], decision["direction"]) == ("AverageWeightedQuantileLoss", "Minimize")
    package = sm.describe_model_package(ModelPackageName=xcoms["register"]["ModelPackageArn"])
    assert [c["Image"] for c in package["InferenceSpecification"]["Containers"]] == [
        c["Image"] for c in best["InferenceContainers"]
    ]


def test_forecast_dag_rejects_a_forecaster_above_the_loss_threshold(emulator, run_dag):
    dag_run, xcoms = run_dag(load("example_autopilot_forecast"), run_conf={"threshold": 0.001})
    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert (states["register"], states["reject"]) == ("skipped", "success")
    assert "misses the threshold" in xcoms["reject"]["reason"]

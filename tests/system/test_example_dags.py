"""
The example DAGs in dags/: integrity (parse with AWS libraries blocked, ids, tasks, no cycles) and
real ``dag.test()`` runs against the emulator server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from airflow_autopilot.testing import load_dag_file, task_states

DAGS = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {
    "example_autopilot_promotion": {
        "upload_sample_data",
        "create_job",
        "wait_for_job",
        "best_candidate",
        "leaderboard",
        "gate",
        "register",
        "deploy",
        "reject",
    },
    "example_autopilot_one_click_deploy": {
        "upload_sample_data",
        "create_job",
        "wait_for_job",
        "deploy_result",
        "smoke_check",
    },
    "example_autopilot_watch_existing_job": {"wait_for_job", "best_candidate", "leaderboard"},
}

PARSE_SCRIPT = r"""
import importlib.abc, json, sys

BANNED = ("boto3", "botocore", "aiobotocore", "moto", "airflow.providers.amazon")


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in BANNED or name.startswith(tuple(b + "." for b in BANNED)):
            raise ImportError(f"{name} imported while parsing DAG files")
        return None


from airflow.dag_processing.dagbag import DagBag
from airflow.providers_manager import ProvidersManager

# Airflow itself reads each provider's get_provider_info (not the DAG files' doing): load it first.
ProvidersManager().initialize_providers_configuration()
before = {m for m in sys.modules if m.startswith(BANNED)}
sys.meta_path.insert(0, Block())

bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {path: str(err) for path, err in bag.import_errors.items()},
    "new_aws_modules": sorted({m for m in sys.modules if m.startswith(BANNED)} - before),
    "files": sorted({d.fileloc for d in bag.dags.values()}),
    "dags": {
        d.dag_id: {t.task_id: sorted(t.downstream_task_ids) for t in d.tasks} for d in bag.dags.values()
    },
}))
"""


def has_cycle(graph: dict[str, list[str]]) -> bool:
    state: dict[str, int] = {}

    def visit(node: str) -> bool:
        if state.get(node) == 1:
            return True
        if state.get(node) == 2:
            return False
        state[node] = 1
        if any(visit(child) for child in graph.get(node, [])):
            return True
        state[node] = 2
        return False

    return any(visit(node) for node in graph)


def test_every_dag_file_parses_without_aws_libraries_or_calls():
    """Parse dags/ in a fresh interpreter where importing boto3/botocore/moto/the Amazon provider
    raises, and AWS points at a closed port: any import or call at parse time breaks the parse."""
    env = dict(os.environ)
    env["AIRFLOW_CONN_AWS_DEFAULT"] = json.dumps(
        {"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}}
    )
    env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"
    proc = subprocess.run(
        [sys.executable, "-c", PARSE_SCRIPT, str(DAGS)], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["new_aws_modules"] == []
    files = sorted(p.name for p in DAGS.glob("*.py"))
    assert sorted(Path(f).name for f in result["files"]) == files  # every file defines a DAG
    assert set(result["dags"]) == set(EXPECTED)
    for dag_id, graph in result["dags"].items():
        assert set(graph) == EXPECTED[dag_id], dag_id
        assert not has_cycle(graph), dag_id
    promotion = result["dags"]["example_autopilot_promotion"]
    assert sorted(promotion["gate"]) == ["register", "reject"]
    assert promotion["register"] == ["deploy"]


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


def test_promotion_dag_failed_job_stops_before_promotion(emulator, run_dag, capfd):
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
    assert reason and reason in output.out + output.err  # the sensor failed with the job's reason
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

"""The promotion example's lineage in one real ``dag.test()`` run against the emulator: asset events
and their extras read back from the metadata database, and the OpenLineage events of its tasks (the OpenLineage provider's file transport) chaining the training
data to the endpoint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS
from airflow_autopilot.demo.runner import load_dag_file, task_states
from tests.conftest import DAGS

# Airflow 2's dag.test() runs tasks in test mode, which registers no dataset events: the events the
# operators add there are checked in tests/unit/test_lineage.py.
pytestmark = pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS, reason="dag.test() registers no dataset events on Airflow 2"
)

ACCOUNT = "123456789012"
REGION = "us-east-1"
SAGEMAKER = f"sagemaker://{ACCOUNT}.{REGION}"
BUCKET = "s3://autopilot-example"


def _clear_openlineage_conf() -> None:
    from airflow.providers.openlineage import conf

    for value in vars(conf).values():
        if callable(getattr(value, "cache_clear", None)):
            value.cache_clear()


@contextmanager
def openlineage_to_file(path: Path) -> Iterator[bool]:
    """
    The OpenLineage provider's listener, writing each event to ``path`` (JSON lines) while active;
    yields False when the provider is not installed (this leg does not have the extra).
    """
    try:
        from airflow.providers.openlineage.plugins.listener import get_openlineage_listener
    except ImportError:
        yield False
        return
    try:  # the listener manager the task runner calls (Airflow 3.1+: the task SDK's)
        from airflow.sdk.listener import get_listener_manager
    except ImportError:
        from airflow.listeners.listener import get_listener_manager
    with pytest.MonkeyPatch.context() as patch:
        transport = {"type": "file", "log_file_path": str(path), "append": True}
        patch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
        patch.setenv("AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD", "true")
        patch.setenv("AIRFLOW__OPENLINEAGE__NAMESPACE", "autopilot-tests")
        _clear_openlineage_conf()
        manager = get_listener_manager()
        listener = get_openlineage_listener()
        manager.add_listener(listener)
        try:
            yield True
        finally:
            manager.pm.unregister(listener)
    _clear_openlineage_conf()


@pytest.fixture(scope="module")
def promotion_run(airflow_db, autopilot_emulator_server_session, tmp_path_factory) -> dict[str, Any]:
    """One promotion DAG run (OpenLineage events in a file when the provider is installed)."""
    from airflow_autopilot.demo.runner import run_dag
    from airflow_autopilot.emulator import settings
    from airflow_autopilot.emulator.pytest_plugin import _fake_aws_env

    server = autopilot_emulator_server_session
    saved = settings.snapshot()
    server.reset()
    server.configure(stage_seconds=0.05)
    events_file = tmp_path_factory.mktemp("openlineage") / "events.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        _fake_aws_env(patch)
        patch.setenv("AIRFLOW_CONN_AWS_DEFAULT", server.airflow_conn_value)
        patch.setenv("AUTOPILOT_EXAMPLE_POLL_SECONDS", "0.2")
        dag = load_dag_file(DAGS / "example_autopilot_promotion.py", "example_autopilot_promotion")
        try:
            with openlineage_to_file(events_file) as openlineage:
                dag_run, xcoms = run_dag(dag)
        finally:
            settings.restore(saved)
    assert dag_run.state == "success", task_states(dag_run)
    return {
        "dag_run": dag_run,
        "xcoms": xcoms,
        "openlineage": events_file if openlineage else None,
    }


def db_asset_events(dag_run) -> list[dict]:
    from airflow.utils.session import create_session

    from tests.airflow_versions import asset_events

    with create_session() as session:
        return asset_events(session, dag_run.dag_id, dag_run.run_id)


def test_promotion_dag_emits_asset_events_with_metadata(promotion_run):
    xcoms = promotion_run["xcoms"]
    events = {event["task_id"]: event for event in db_asset_events(promotion_run["dag_run"])}
    # The group's event comes from the approval step (the version is Approved), not from register.
    assert set(events) == {"create_job", "approval", "deploy"}
    job_name = xcoms["create_job"]["AutoMLJobName"]
    best = xcoms["best_candidate"]
    value = best["FinalAutoMLJobObjectiveMetric"]["Value"]

    assert events["create_job"]["uri"] == f"{BUCKET}/churn/output"
    assert events["create_job"]["extra"] == {
        "job_name": job_name,
        "job_arn": xcoms["create_job"]["AutoMLJobArn"],
        "s3_output_path": f"{BUCKET}/churn/output",
        "problem_type": "BinaryClassification",
        "objective_metric": "F1",
    }
    assert events["approval"]["uri"] == f"{SAGEMAKER}/model-package-group/autopilot-churn"
    assert events["approval"]["extra"] == {
        "job_name": job_name,
        "candidate_name": best["CandidateName"],
        "objective_metric": "F1",
        "objective_value": value,
        "model_package_group": "autopilot-churn",
        "model_package_arn": xcoms["register"]["ModelPackageArn"],
        "model_package_version": xcoms["register"]["ModelPackageVersion"],
        "approval_status": "Approved",
    }
    assert events["deploy"]["uri"] == f"{SAGEMAKER}/endpoint/autopilot-churn"
    assert events["deploy"]["extra"] == {
        "endpoint_name": "autopilot-churn",
        "endpoint_arn": xcoms["deploy"]["EndpointArn"],
        "endpoint_config_name": xcoms["deploy"]["EndpointConfigName"],
        "model_name": xcoms["deploy"]["ModelName"],
        "candidate_name": best["CandidateName"],
        "objective_metric": "F1",
        "objective_value": value,
        "model_package_arn": xcoms["register"]["ModelPackageArn"],
    }


def openlineage_events(path: Path) -> dict[tuple[str, str], dict]:
    """``{(task id, eventType): event}`` of the task events in the transport's file."""
    events = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        name = event["job"]["name"]
        if "." in name:  # task events are named <dag_id>.<task_id>; the DAG's own have no dot
            events[name.split(".", 1)[1], event["eventType"]] = event
    return events


def identities(datasets: list[dict]) -> list[str]:
    return [f"{d['namespace']}/{d['name']}" for d in datasets]


def test_openlineage_events_chain_training_data_to_endpoint(promotion_run):
    pytest.importorskip("airflow.providers.openlineage")
    xcoms = promotion_run["xcoms"]
    events = openlineage_events(promotion_run["openlineage"])
    package = xcoms["register"]["ModelPackageArn"].split(":model-package/")[1]
    output = f"{BUCKET}/churn/output"

    start = events["create_job", "START"]
    assert identities(start["inputs"]) == [f"{BUCKET}/churn/train"]
    assert identities(start["outputs"]) == [output]
    create = events["create_job", "COMPLETE"]
    assert identities(create["inputs"]) == [f"{BUCKET}/churn/train"]
    assert identities(create["outputs"]) == [output]
    assert create["inputs"][0]["namespace"] == BUCKET and create["inputs"][0]["name"] == "churn/train"
    columns = [field["name"] for field in create["inputs"][0]["facets"]["schema"]["fields"]]
    assert "churn" in columns and len(columns) > 3

    register = events["register", "COMPLETE"]
    inputs = identities(register["inputs"])
    assert inputs[0] == output  # what the job wrote: the link from the job to the model package
    assert all(i.startswith(f"{output}/{xcoms['create_job']['AutoMLJobName']}/") for i in inputs[1:])
    assert len(inputs) > 1
    assert identities(register["outputs"]) == [f"{SAGEMAKER}/model-package/{package}"]

    deploy = events["deploy", "COMPLETE"]
    assert identities(deploy["inputs"])[0] == f"{SAGEMAKER}/model-package/{package}"
    assert identities(deploy["outputs"]) == [f"{SAGEMAKER}/endpoint/autopilot-churn"]

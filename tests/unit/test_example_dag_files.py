"""
The example DAG files in dags/: integrity (parse with AWS libraries blocked, ids, tasks, no cycles),
without running them.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import DAGS
from tests.helpers import run_python

EXPECTED = {
    "example_autopilot_promotion": {
        "upload_sample_data",
        "create_job",
        "wait_for_job",
        "best_candidate",
        "leaderboard",
        "gate",
        "register",
        "approval",
        "deploy",
        "smoke_test",
        "create_rollback_alarm",
        "reject",
    },
    "example_autopilot_rollback": {"rollback", "smoke_test"},
    "example_autopilot_nightly_scoring": {"upload_todays_data", "score", "report"},
    "example_autopilot_one_click_deploy": {
        "upload_sample_data",
        "create_job",
        "wait_for_job",
        "deploy_result",
        "smoke_check",
    },
    "example_autopilot_watch_existing_job": {"wait_for_job", "best_candidate", "leaderboard"},
    "example_autopilot_forecast": {
        "upload_demand_data",
        "create_forecast_job",
        "best_candidate",
        "gate",
        "register",
        "reject",
    },
    "example_autopilot_on_new_model": {"read_new_model"},
    "example_autopilot_event_driven": {
        "finished_jobs",
        "promote.finished_job",
        "promote.best_candidate",
        "promote.gate",
        "promote.promoted",
        "promote.register",
        "promote.reject",
    },
    "example_autopilot_deploy_on_approval": {"approved_version", "deploy"},
}
#: Defined only where Airflow has Human-in-the-loop operators (3.1 and later).
HITL = {"example_autopilot_hitl_approval": {"find_pending", "ask", "write_decision", "approval"}}


PARSE_SCRIPT = r"""
import importlib.abc, json, sys

BANNED = (
    "boto3", "botocore", "aiobotocore", "moto", "airflow.providers.amazon",
    "openlineage", "airflow.providers.openlineage", "airflow.providers.common.compat.openlineage",
)


class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in BANNED or name.startswith(tuple(b + "." for b in BANNED)):
            raise ImportError(f"{name} imported while parsing DAG files")
        return None


from airflow.providers_manager import ProvidersManager


def has_hitl():
    try:
        import airflow.providers.standard.operators.hitl  # noqa: F401
    except Exception:  # Airflow 2: no standard provider; 3.0: the module refuses to import
        return False
    return True


from airflow_autopilot.demo.airflow_versions import dag_bag_class

DagBag = dag_bag_class()

# Airflow itself reads each provider's get_provider_info (not the DAG files' doing): load it first.
ProvidersManager().initialize_providers_configuration()
before = {m for m in sys.modules if m.startswith(BANNED)}
sys.meta_path.insert(0, Block())

bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({
    "errors": {path: str(err) for path, err in bag.import_errors.items()},
    "new_aws_modules": sorted({m for m in sys.modules if m.startswith(BANNED)} - before),
    "hitl": has_hitl(),
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
    env = {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(
            {"conn_type": "aws", "extra": {"endpoint_url": "http://127.0.0.1:9", "region_name": "us-east-1"}}
        ),
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    proc = run_python(PARSE_SCRIPT, str(DAGS), env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["errors"] == {}
    assert result["new_aws_modules"] == []
    expected = {**EXPECTED, **(HITL if result["hitl"] else {})}
    files = sorted(p.name for p in DAGS.glob("*.py") if p.name != "__init__.py")
    if not result["hitl"]:
        files.remove("example_autopilot_hitl_approval.py")
    assert sorted(Path(f).name for f in result["files"]) == files  # every file defines a DAG
    assert set(result["dags"]) == set(expected)
    for dag_id, graph in result["dags"].items():
        assert set(graph) == expected[dag_id], dag_id
        assert not has_cycle(graph), dag_id
    promotion = result["dags"]["example_autopilot_promotion"]
    assert sorted(promotion["gate"]) == ["register", "reject"]
    assert promotion["register"] == ["approval"] and promotion["approval"] == ["deploy"]
    events = result["dags"]["example_autopilot_event_driven"]
    # One promotion per finished job of the run (mapped over them), the gate branching inside it.
    assert events["finished_jobs"] == ["promote.finished_job"]
    assert sorted(events["promote.gate"]) == ["promote.promoted", "promote.reject"]
    assert events["promote.promoted"] == ["promote.register"]

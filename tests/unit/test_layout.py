"""The package's shape: public import paths, no import cycles, an Airflow-free core, one wait machine."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "airflow_autopilot"

PUBLIC = {
    "airflow_autopilot.hooks": ["AutopilotHook", "AutopilotModelHook"],
    "airflow_autopilot.operators": [
        "AutopilotCreateJobOperator",
        "AutopilotCreateJobV2Operator",
        "AutopilotBestCandidateOperator",
        "AutopilotModelDeployResultOperator",
        "AutopilotCandidatesOperator",
        "AutopilotPromotionBranchOperator",
        "AutopilotRegisterCandidateOperator",
        "AutopilotDeployCandidateOperator",
        "AutopilotEndpointSmokeTestOperator",
        "AutopilotRollbackEndpointOperator",
        "AutopilotBatchTransformOperator",
    ],
    "airflow_autopilot.sensors": ["AutopilotJobSensor", "AutopilotModelApprovalSensor"],
    "airflow_autopilot.triggers": [
        "AutopilotJobTrigger",
        "AutopilotEndpointTrigger",
        "AutopilotResourceTrigger",
    ],
    "airflow_autopilot.links": ["AutopilotJobLink"],
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def top_level_imports(path: Path) -> set[str]:
    """Modules of this package imported at module level, ``TYPE_CHECKING`` blocks included (not in functions)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []:
            if isinstance(sub, ast.ImportFrom) and sub.module and sub.module.startswith("airflow_autopilot"):
                found.add(sub.module)
                for alias in sub.names:  # ``from airflow_autopilot.emulator import controls``
                    candidate = f"{sub.module}.{alias.name}"
                    if (PACKAGE.parent / (candidate.replace(".", "/") + ".py")).exists():
                        found.add(candidate)
            elif isinstance(sub, ast.Import):
                found.update(a.name for a in sub.names if a.name.startswith("airflow_autopilot"))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target in top_level_imports(path):
            # importing a.b.c also runs a/__init__ and a/b/__init__
            parts = target.split(".")
            edges.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        # a module's own parent packages are already initialising when it runs: not a cycle
        graph[name] = {e for e in edges if e in modules and e != name and not name.startswith(e + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycles():
    assert find_cycle(import_graph()) is None


def test_core_imports_neither_airflow_runtime_nor_aws_libraries():
    """At import, the domain core loads our exceptions (Airflow exception classes) but no hook, operator or AWS module."""
    for path in (PACKAGE / "core").rglob("*.py"):  # core/waits/ and core/fields/ included
        tree = ast.parse(path.read_text())
        module_level = [n for n in tree.body if not isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        for node in (sub for top in module_level for sub in ast.walk(top)):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert not name.startswith(("boto3", "botocore", "aiobotocore", "moto")), (path, name)
                assert not name.startswith("airflow.") or name == "airflow.sdk.exceptions", (path, name)
                assert not name.startswith(
                    ("airflow_autopilot.hooks", "airflow_autopilot.operators", "airflow_autopilot.aio")
                ), (path, name)


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_import_paths_export_every_public_class(module):
    loaded = importlib.import_module(module)
    for name in PUBLIC[module]:
        assert inspect.isclass(getattr(loaded, name)), f"{module}.{name}"
        if hasattr(loaded, "__all__"):
            assert name in loaded.__all__


def test_provider_info_lists_every_operator_hook_trigger_and_link():
    from airflow_autopilot.get_provider_info import get_provider_info

    info = get_provider_info()
    listed: dict[str, set[str]] = {}
    for section in ("hooks", "operators", "sensors", "triggers"):
        classes = set()
        for entry in info[section]:
            for module in entry["python-modules"]:
                classes.update(
                    n for n, o in vars(importlib.import_module(module)).items() if inspect.isclass(o)
                )
        listed[section] = classes
    assert set(PUBLIC["airflow_autopilot.hooks"]) <= listed["hooks"]
    assert set(PUBLIC["airflow_autopilot.operators"]) <= listed["operators"]
    assert set(PUBLIC["airflow_autopilot.sensors"]) <= listed["sensors"]
    assert set(PUBLIC["airflow_autopilot.triggers"]) <= listed["triggers"]
    assert info["extra-links"] == ["airflow_autopilot.links.AutopilotJobLink"]


def test_every_wait_goes_through_the_one_state_machine():
    """No module outside core/waits/ makes a polling loop's sleep/backoff decisions."""
    waits = PACKAGE / "core" / "waits"
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if "emulator" in path.parts or path.parent == waits:
            continue
        text = path.read_text()
        if "backoff_delay(" in text or "poll_delay(" in text:
            offenders.append(module_name(path))
    assert offenders == []

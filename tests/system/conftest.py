"""Every DAG the system tests run is checked against the IAM policy data: each SageMaker request
an operator, sensor or trigger of this package makes must be an action its statements list
(:mod:`airflow_autopilot.core.permissions`, recorded through the emulator's request observer)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest

from airflow_autopilot.core import permissions
from airflow_autopilot.emulator import controls

#: Airflow's AWS hooks name the class running ``execute`` in their User-Agent; a trigger's
#: requests (no ``execute`` on the stack) say ``Caller/Unknown``.
_CALLER = re.compile(r"\bCaller/(\S+)")


class OperationRecorder:
    """The SageMaker requests made through Airflow's AWS hooks, as (caller, operation)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: set[tuple[str, str]] | None = None

    def __call__(self, operation: str, user_agent: str) -> None:
        match = _CALLER.search(user_agent)
        if "Airflow/" not in user_agent or match is None:
            return  # the test's own clients
        with self.lock:
            if self.seen is not None:
                self.seen.add((match.group(1), operation))

    def start(self) -> set[tuple[str, str]]:
        with self.lock:
            self.seen = set()
            return self.seen

    def stop(self) -> None:
        with self.lock:
            self.seen = None


@pytest.fixture(scope="session")
def operation_recorder() -> Iterator[OperationRecorder]:
    """One recorder for the session, observing every emulator request."""
    recorder = OperationRecorder()
    remove = controls.observe_requests(recorder)
    yield recorder
    remove()


def uncovered_operations(dag, seen: set[tuple[str, str]]) -> list[str]:
    """The recorded requests of ``dag``'s run that its classes' statements do not list."""
    from airflow_autopilot.iam import dag_needs

    by_task_class = {type(task).__name__: permissions.package_class(task) for task in dag.tasks}
    # The DAG's classes include its asset watchers' triggers, which run in the triggerer too.
    ours = dag_needs(dag).classes
    problems = []
    for caller, operation in sorted(seen):
        if caller == "Unknown":  # a trigger, deferred to by one of the DAG's operators, or a watcher
            allowed = permissions.actions_for(ours)
        elif by_task_class.get(caller):
            allowed = permissions.actions_for([by_task_class[caller]])
        else:
            continue  # a task of another package (a @task calling a hook itself)
        if f"sagemaker:{operation}" not in allowed:
            problems.append(f"{caller} called sagemaker:{operation}, which core/permissions.py does not list")
    return problems


@pytest.fixture
def run_dag(run_dag, operation_recorder):
    """The session's ``run_dag``, failing the test when a run calls an unlisted action."""

    def run(dag, **test_kwargs):
        seen = operation_recorder.start()
        try:
            result = run_dag(dag, **test_kwargs)
        finally:
            operation_recorder.stop()
        problems = uncovered_operations(dag, seen)
        assert not problems, problems
        return result

    return run

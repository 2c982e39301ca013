"""
Run a DAG end to end with Airflow's real ``dag.test()`` and read back its XComs: used by the demo
(``autopilot-demo``) and by the tests of the example DAGs.

Airflow 3's ``dag.test()`` runs serialized DAGs, so the DAG is first written to the metadata
database the way the DAG processor would. The database must already be initialised
(``airflow.utils.db.initdb()``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any


def load_dag_file(path: str | os.PathLike[str], dag_id: str) -> Any:
    """
    Import a DAG file the way Airflow parses it (a fresh module, not added to ``sys.modules``)
    and return its DAG ``dag_id``.

    :param path: the DAG file.
    :param dag_id: the DAG to return.
    :raises LookupError: when the file defines no such DAG.
    """
    for dag in dags_in_file(path):
        if dag.dag_id == dag_id:
            return dag
    raise LookupError(f"{path} defines no DAG {dag_id!r}")


def dags_in_file(path: str | os.PathLike[str]) -> list[Any]:
    """
    Every DAG a file defines, imported the way Airflow parses it (a fresh module, not added to
    ``sys.modules``, with the file's folder on ``sys.path`` while it runs).

    :param path: the DAG file.
    """
    from airflow.providers.common.compat.sdk import DAG

    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"autopilot_dagfile_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return [value for value in vars(module).values() if isinstance(value, DAG)]


def run_dag(dag: Any, **test_kwargs: Any) -> tuple[Any, dict[str, Any]]:
    """
    Serialize ``dag`` to the metadata database, run it with ``dag.test(**test_kwargs)`` and return
    ``(dag_run, xcoms)``; ``xcoms`` maps ``task_id`` (or ``task_id:key`` for keys other than
    ``return_value``) to the deserialised value.

    :param dag: the DAG object.
    :param test_kwargs: ``dag.test()`` arguments (``run_conf`` ...), by their Airflow 3 names
        (``logical_date``, ``run_after``; translated for Airflow 2).
    """
    from airflow.utils.session import create_session

    from airflow_autopilot.demo.airflow_versions import dag_test_kwargs, write_dag_to_db, xcom_values

    write_dag_to_db(dag)
    dag_run = dag.test(**dag_test_kwargs(test_kwargs))
    with create_session() as session:
        values = xcom_values(session, dag.dag_id, dag_run.run_id)
    return dag_run, values


def task_states(dag_run: Any) -> dict[str, str | None]:
    """``{task_id: state}`` of a finished DAG run."""
    from airflow.utils.session import create_session

    with create_session() as session:
        from airflow.models.taskinstance import TaskInstance

        rows = session.query(TaskInstance).filter(
            TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
        )
        return {
            ti.task_id: None if ti.state is None else str(getattr(ti.state, "value", ti.state)) for ti in rows
        }

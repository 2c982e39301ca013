"""
What ``dag.test()`` and its metadata database need differently on Airflow 2.11 and 3.x, for the demo
runner (:mod:`airflow_autopilot.demo.runner`) and the example-DAG tests: SQLite in unit-test mode,
the ``DagBag`` class, writing a DAG to the database, reading XComs, ``dag.test()``'s argument names.
Imports Airflow: load it once Airflow's environment (``AIRFLOW_HOME``, the database) is set.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS, AIRFLOW_V_3_2_PLUS

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

#: The bundle Airflow 3 gives the configured dags folder (what ``dag.test()`` runs from).
DAGS_FOLDER_BUNDLE = "dags-folder"


def allow_sqlite_in_unit_test_mode() -> None:
    """
    Let ``dag.test()`` run on SQLite in Airflow's unit-test mode: Airflow 2's unit-test configuration
    names the LocalExecutor, whose SQLite check (run when a sensor's reschedule dependency loads the
    executor) fails unless this variable, which Airflow's own test suite sets, is present. Airflow 3
    has no such check; nothing is set there.
    """
    if not AIRFLOW_V_3_0_PLUS:
        os.environ.setdefault("_AIRFLOW__SKIP_DATABASE_EXECUTOR_COMPATIBILITY_CHECK", "1")


def dag_bag_class() -> type:
    """Airflow's ``DagBag`` (moved to ``airflow.dag_processing.dagbag`` in 3.2)."""
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import DagBag
    else:
        from airflow.models.dagbag import DagBag  # type: ignore[no-redef]
    return DagBag


def write_dag_to_db(dag: Any) -> None:
    """
    Write ``dag`` to the metadata database as Airflow's DAG processor would (serialized, in the
    dags-folder bundle): Airflow 3's ``dag.test()`` runs the serialized DAG. Airflow 2's
    ``dag.test()`` runs the DAG object; the DAG's row (with its outlets' dataset aliases) is written.

    :param dag: the DAG object.
    """
    if not AIRFLOW_V_3_0_PLUS:
        # Airflow 2's dag.test() runs the DAG object, but a task's event through a dataset alias
        # needs the alias in the database, which writing the DAG creates.
        dag.sync_to_db()
        return
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    bag = dag_bag_class()(dag_folder=os.devnull)
    bag.bag_dag(dag)
    if AIRFLOW_V_3_2_PLUS:
        from airflow.dag_processing.dagbag import sync_bag_to_db
    elif AIRFLOW_V_3_1_PLUS:
        from airflow.models.dagbag import sync_bag_to_db  # type: ignore[no-redef]
    else:  # 3.0: a DagBag method, and the file path the DagBag sets while parsing is required
        if dag.relative_fileloc is None:
            dag.relative_fileloc = dag.fileloc
        bag.sync_to_db(DAGS_FOLDER_BUNDLE, None)
        return
    sync_bag_to_db(bag, DAGS_FOLDER_BUNDLE, None)


def xcom_values(session: Session, dag_id: str, run_id: str) -> dict[str, Any]:
    """
    Every XCom of a DAG run, deserialised: ``{task_id: value}`` for ``return_value`` and
    ``{"task_id:key": value}`` for other keys (Airflow 3's table model is ``XComModel``, Airflow 2's ``XCom``).

    :param session: a metadata database session.
    :param dag_id: the DAG.
    :param run_id: the DAG run.
    """
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel as model
    else:
        from airflow.models.xcom import XCom as model  # type: ignore[no-redef]
    values: dict[str, Any] = {}
    # Columns, not ORM objects: Airflow 2's XCom objects deserialise their value when loaded (a lighter
    # decoding than deserialize_value's), Airflow 3's keep it as stored.
    columns = session.query(model.task_id, model.key, model.value)
    for row in columns.filter(model.dag_id == dag_id, model.run_id == run_id):
        key = row.task_id if row.key == "return_value" else f"{row.task_id}:{row.key}"
        values[key] = model.deserialize_value(row)
    return values


def dag_test_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """
    ``dag.test()`` arguments given by their Airflow 3 names, for the running Airflow: Airflow 2 calls
    the logical date ``execution_date`` and has no ``run_after`` (its run is due at its logical date).

    :param kwargs: the arguments.
    """
    if AIRFLOW_V_3_0_PLUS:
        return kwargs
    renamed = {key: value for key, value in kwargs.items() if key not in ("logical_date", "run_after")}
    if "logical_date" in kwargs:
        renamed["execution_date"] = kwargs["logical_date"]
    return renamed

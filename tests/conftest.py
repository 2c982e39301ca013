"""Shared test set-up: an isolated Airflow home on SQLite, created once per session."""

from __future__ import annotations

import os
import tempfile

_HOME = tempfile.mkdtemp(prefix="autopilot-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """An initialised Airflow metadata database (SQLite), for ``dag.test()`` runs."""
    from airflow.utils.db import initdb

    initdb()
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture(scope="session")
def run_dag(airflow_db):
    """
    Run a DAG object with the real ``dag.test()`` and return ``(dag_run, xcoms)``.

    ``dag.test()`` in Airflow 3 runs only serialized DAGs, so the DAG is first written to the
    metadata database as the DAG processor would. ``xcoms`` maps ``task_id`` (and ``task_id:key``
    for keys other than ``return_value``) to the stored, deserialised values.
    """
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    DagBundlesManager().sync_bundles_to_db()

    def _run(dag, **kwargs):
        bag = DagBag(dag_folder=os.devnull)
        bag.bag_dag(dag)
        sync_bag_to_db(bag, "dags-folder", None)
        dag_run = dag.test(**kwargs)
        values = {}
        with create_session() as session:
            rows = session.query(XComModel).filter(
                XComModel.dag_id == dag.dag_id, XComModel.run_id == dag_run.run_id
            )
            for row in rows:
                key = row.task_id if row.key == "return_value" else f"{row.task_id}:{row.key}"
                values[key] = XComModel.deserialize_value(row)
        return dag_run, values

    return _run

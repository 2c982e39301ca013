"""What differs between the Airflow versions this package runs on (2.11 to 3.x) that
``apache-airflow-providers-common-compat`` does not cover: Airflow 3.0's stale deferral on retry (for
the operators); for the demo runner and the tests, DAG parsing, writing a DAG to the metadata
database, reading XComs, extra links, trigger log context.
Task-facing Airflow names come from ``airflow.providers.common.compat.sdk``, not from here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "allow_sqlite_in_unit_test_mode",
    "alias_events",
    "asset_events",
    "bind_trigger_log_context",
    "capture_structured_logs",
    "dag_test_kwargs",
    "record_deferral",
    "restart_if_stale_resume",
    "dag_test_run_creator",
    "execute_in_thread",
    "extra_link_url",
    "outlet_event_accessors",
    "trigger_log_context",
    "triggering_asset_events",
    "dag_bag_class",
    "write_dag_to_db",
    "xcom_values",
]

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


def asset_events(session: Session, dag_id: str, run_id: str | None = None) -> list[dict[str, Any]]:
    """
    The asset events (dataset events on Airflow 2) that tasks of ``dag_id`` emitted, oldest first:
    ``{"uri", "extra", "task_id", "run_id"}`` each.

    :param session: a metadata database session.
    :param dag_id: the emitting DAG.
    :param run_id: only this run's events; ``None`` for every run's.
    """
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models import asset as models

        event: Any = models.AssetEvent
        target: Any = models.AssetModel
        target_id = event.asset_id
    else:
        from airflow.models import dataset as models  # type: ignore[no-redef]

        event = models.DatasetEvent  # type: ignore[attr-defined]
        target = models.DatasetModel  # type: ignore[attr-defined]
        target_id = event.dataset_id
    query = (
        session.query(target.uri, event.extra, event.source_task_id, event.source_run_id)
        .join(target, target.id == target_id)
        .filter(event.source_dag_id == dag_id)
    )
    if run_id is not None:
        query = query.filter(event.source_run_id == run_id)
    return [
        {"uri": row[0], "extra": dict(row[1] or {}), "task_id": row[2], "run_id": row[3]}
        for row in query.order_by(event.timestamp, event.id)
    ]


def outlet_event_accessors() -> Any:
    """An empty ``outlet_events`` mapping, as a task's context holds (for tests of what tasks emit)."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.execution_time.context import OutletEventAccessors
    else:
        from airflow.utils.context import OutletEventAccessors  # type: ignore[no-redef,attr-defined]
    return OutletEventAccessors()


def alias_events(accessors: Any, alias: Any) -> list[tuple[str, dict[str, Any]]]:
    """
    ``(asset URI, extra)`` of each event added through ``alias`` to a task's ``outlet_events``.

    :param accessors: the context's ``outlet_events``.
    :param alias: the AssetAlias (DatasetAlias).
    """
    if AIRFLOW_V_3_0_PLUS:
        return [(e.dest_asset_key.uri, dict(e.extra)) for e in accessors[alias].asset_alias_events]
    return [(e["dest_dataset_uri"], dict(e["extra"])) for e in accessors[alias].dataset_alias_events]


def triggering_asset_events(context: Any, asset: Any) -> list[Any]:
    """
    The events of ``asset`` that triggered the running DAG run (``triggering_asset_events`` on
    Airflow 3, keyed by the asset; ``triggering_dataset_events`` on Airflow 2, keyed by its URI).

    :param context: the task context.
    :param asset: the Asset (Dataset).
    """
    if AIRFLOW_V_3_0_PLUS:
        return list(context["triggering_asset_events"].get(asset, []))
    return list(context["triggering_dataset_events"].get(asset.uri, []))


def extra_link_url(dag: Any, dag_run: Any, task_id: str, link: Any) -> str | None:
    """
    The URL Airflow's UI shows for ``link`` on a finished task: Airflow 3 stores it in XCom after the
    task (key ``_link_<class name>``); Airflow 2 asks the operator when the page is drawn.

    :param dag: the DAG that ran.
    :param dag_run: the finished DAG run.
    :param task_id: the task.
    :param link: the operator link instance.
    """
    from airflow.utils.session import create_session

    with create_session() as session:
        if AIRFLOW_V_3_0_PLUS:
            values = xcom_values(session, dag.dag_id, dag_run.run_id)
            return values.get(f"{task_id}:_link_{type(link).__name__}")
        from airflow.models.taskinstance import TaskInstance

        ti = (
            session.query(TaskInstance)
            .filter_by(dag_id=dag.dag_id, run_id=dag_run.run_id, task_id=task_id)
            .one()
        )
        task = dag.get_task(task_id)
        ti.task = task
        return task.get_extra_links(ti, link.name)


def bind_trigger_log_context(trigger_id: str) -> None:
    """
    Bind ``trigger_id`` to the current context (the asyncio task running a trigger), as Airflow's
    triggerer does so that the lines logged there reach the deferred task's log: a structlog context
    variable on Airflow 3, ``ctx_trigger_id`` on Airflow 2.

    :param trigger_id: the trigger's id.
    """
    if AIRFLOW_V_3_0_PLUS:
        from structlog.contextvars import bind_contextvars

        bind_contextvars(trigger_id=trigger_id)
    else:
        from airflow.utils.log.trigger_handler import ctx_trigger_id

        ctx_trigger_id.set(trigger_id)


def trigger_log_context() -> str | None:
    """The trigger id :func:`bind_trigger_log_context` bound to the current context, if any."""
    if AIRFLOW_V_3_0_PLUS:
        from structlog.contextvars import get_contextvars

        return get_contextvars().get("trigger_id")
    from airflow.utils.log.trigger_handler import ctx_trigger_id

    return ctx_trigger_id.get(None)


@contextmanager
def capture_structured_logs() -> Iterator[list[Any]]:
    """
    Capture structlog entries, each with the context variables merged in (Airflow 3 triggers log
    through structlog). Airflow 2 logs through the standard library only: the list stays empty.
    """
    if not AIRFLOW_V_3_0_PLUS:
        yield []
        return
    from structlog.contextvars import merge_contextvars
    from structlog.testing import capture_logs

    with capture_logs(processors=[merge_contextvars]) as entries:
        yield entries


def execute_in_thread(operator: Any, context: Any) -> Any:
    """
    ``operator.execute(context)`` from a thread other than the one that imported Airflow (a test
    running two tasks at once). Airflow 2's ``ExecutorSafeguard`` keeps its callers in a thread-local
    attribute that only the importing thread has; it is created in this thread first.

    :param operator: the operator.
    :param context: the task context.
    """
    if not AIRFLOW_V_3_0_PLUS:
        from airflow.models.baseoperator import ExecutorSafeguard

        if not hasattr(ExecutorSafeguard._sentinel, "callers"):
            ExecutorSafeguard._sentinel.callers = {}
    return operator.execute(context)


def dag_test_run_creator() -> tuple[Any, str]:
    """
    Where the function ``dag.test()`` creates its DAG run with lives, as ``(module, name)`` (for a
    test that patches it): ``airflow.models.dagrun.get_or_create_dagrun`` from Airflow 3.1,
    ``airflow.models.dag._get_or_create_dagrun`` before. Each takes keyword arguments, ``start_date``
    among them.
    """
    if AIRFLOW_V_3_1_PLUS:
        from airflow.models import dagrun

        return dagrun, "get_or_create_dagrun"
    from airflow.models import dag

    return dag, "_get_or_create_dagrun"


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


#: The XCom key of the try that deferred (Airflow 3.0 only, see :func:`record_deferral`).
DEFERRED_TRY_KEY = "autopilot_deferred_try"
_STALE_RESUME_BUG = AIRFLOW_V_3_0_PLUS and not AIRFLOW_V_3_1_PLUS


def record_deferral() -> None:
    """
    Before a task defers, on Airflow 3.0: record the deferring try in XCom. Airflow 3.0 keeps a failed
    try's ``next_method`` and trigger event for the retry (3.1 clears them when a try ends), so a
    retry would resume with the earlier try's event instead of starting over;
    :func:`restart_if_stale_resume` tells the two apart by this record. Nothing elsewhere.
    """
    if not _STALE_RESUME_BUG:
        return
    from airflow.sdk import get_current_context

    try:
        ti = get_current_context()["ti"]
    except Exception:  # execute() called outside a task run (a unit test): no retry to protect
        return
    ti.xcom_push(key=DEFERRED_TRY_KEY, value=ti.try_number)


def restart_if_stale_resume(operator: Any, context: Any) -> tuple[bool, Any]:
    """
    On Airflow 3.0, when this try resumes from an earlier try's deferral (see
    :func:`record_deferral`): run ``operator.execute`` from the start instead and return
    ``(True, its result)``. Otherwise, and on every other Airflow, ``(False, None)``.

    :param operator: the resuming operator.
    :param context: the task context.
    """
    if not _STALE_RESUME_BUG or "ti" not in context:
        return False, None
    ti = context["ti"]
    deferred_on = ti.xcom_pull(task_ids=ti.task_id, key=DEFERRED_TRY_KEY, map_indexes=ti.map_index)
    if deferred_on == ti.try_number:
        return False, None
    from airflow.sdk.bases.operator import ExecutorSafeguard

    operator.log.warning(
        "Try %s resumes from the deferral of try %s (Airflow 3.0 keeps it across retries): starting over",
        ti.try_number,
        deferred_on,
    )
    sentinel = {f"{type(operator).__name__}__sentinel": ExecutorSafeguard.sentinel_value}
    return True, operator.execute(context, **sentinel)

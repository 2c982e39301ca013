"""
What the tests read or drive differently on Airflow 2.11 and 3.x: asset (dataset) events, a task's
``outlet_events``, extra-link URLs, the trigger log context, structured logs, running an operator
from another thread, and where ``dag.test()`` creates its DAG run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS
from airflow_autopilot.demo.airflow_versions import xcom_values

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


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

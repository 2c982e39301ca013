"""What differs between the Airflow versions this package runs on (2.11 to 3.x) that
``apache-airflow-providers-common-compat`` does not cover: the version flags, Airflow 3.0's stale
deferral on retry (for the operators) and the triggering asset events' key (for the assets module).
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.version_compat import (
    AIRFLOW_V_3_0_PLUS,
    AIRFLOW_V_3_1_PLUS,
    AIRFLOW_V_3_2_PLUS,
)

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "AIRFLOW_V_3_1_PLUS",
    "AIRFLOW_V_3_2_PLUS",
    "record_deferral",
    "restart_if_stale_resume",
    "triggering_asset_events",
]


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

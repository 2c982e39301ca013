"""The transform-job and model-approval waits by kind, as the resource trigger and hook name them,
and the resource trigger's event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.waits.approval import ApprovalWait
from airflow_autopilot.core.waits.transform import TransformJobWait
from airflow_autopilot.core.xcom import to_json_safe


def resource_wait(kind: str, name: str, **kwargs: Any) -> TransformJobWait | ApprovalWait:
    """
    The wait machine of a resource kind.

    :param kind: ``transform-job`` or ``model-package``.
    :param name: the TransformJobName or the ModelPackageArn.
    :param kwargs: :class:`~airflow_autopilot.core.waits.machine.WaitMachine` arguments.
    """
    if kind == "transform-job":
        return TransformJobWait(name, **kwargs)
    if kind == "model-package":
        return ApprovalWait(name, **kwargs)
    raise ValueError(f"kind: {kind!r} must be transform-job or model-package")


def resource_event(kind: str, name: str, status: str, message: str, subject: Any) -> dict[str, Any]:
    """The trigger event of a resource wait (JSON-safe)."""
    return {
        "status": status,
        "kind": kind,
        "name": name,
        "message": message,
        "description": to_json_safe(dict(subject)) if isinstance(subject, Mapping) else None,
    }

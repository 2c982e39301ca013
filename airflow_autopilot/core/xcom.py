"""The XCom contract: every value this package pushes to XCom goes through :func:`to_json_safe`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_autopilot.core.job import AutopilotJob

JSONValue = Any


def to_json_safe(value: Any, *, _path: str = "$") -> JSONValue:
    """
    Convert a boto3 payload into plain JSON types, following the XCom contract.

    :param value: a describe, candidate or list payload (or any part of one).
    :raises TypeError: for a value JSON cannot hold, naming where it is.
    """
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TypeError(f"{_path}: {value!r} is not a finite number; JSON cannot hold it")
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TypeError(f"{_path}: {value} is not a finite number; JSON cannot hold it")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        out: dict[str, JSONValue] = {}
        for key, item in value.items():
            if key == "ResponseMetadata":
                continue
            if not isinstance(key, str):
                raise TypeError(f"{_path}: key {key!r} is not a string")
            out[key] = to_json_safe(item, _path=f"{_path}.{key}")
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_safe(item, _path=f"{_path}[{i}]") for i, item in enumerate(value)]
    raise TypeError(f"{_path}: {type(value).__name__} is not JSON-safe for XCom")


def job_summary(job: AutopilotJob) -> dict[str, JSONValue]:
    """
    The sensor's XCom value: the job's identity, outcome and best candidate in brief.

    Keys: ``AutoMLJobName``, ``AutoMLJobArn``, ``AutoMLJobStatus``, ``AutoMLJobSecondaryStatus``,
    ``EndTime``, ``FailureReason``, ``PartialFailureReasons`` (list of messages), ``BestCandidateName``
    and ``BestCandidateObjectiveMetric`` (``FinalAutoMLJobObjectiveMetric``: ``MetricName``, ``Value``, ``Type``), the last two ``None``
    when the job has no best candidate.
    """
    best = job.best_candidate or {}
    return to_json_safe(
        {
            "AutoMLJobName": job.name,
            "AutoMLJobArn": job.arn,
            "AutoMLJobStatus": job.status,
            "AutoMLJobSecondaryStatus": job.secondary_status,
            "EndTime": job.end_time,
            "FailureReason": job.failure_reason,
            "PartialFailureReasons": job.partial_failure_reasons,
            "BestCandidateName": best.get("CandidateName"),
            "BestCandidateObjectiveMetric": best.get("FinalAutoMLJobObjectiveMetric"),
        }
    )

"""The XCom contract: every value this package pushes to XCom goes through :func:`to_json_safe`."""

from __future__ import annotations

import ast
import json
import math
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_autopilot.core.job import AutopilotJob

JSONValue = Any

#: Deepest nesting of lists and dicts an XCom value may have (a BestCandidate needs about 6).
MAX_XCOM_DEPTH = 64
#: Longest XCom text :func:`parse_xcom_text` reads, in characters (a BestCandidate is ~10 KB).
MAX_XCOM_TEXT_CHARS = 1024 * 1024


class XComTextError(ValueError):
    """
    Rendered XCom text that cannot be read back: too long, nested too deep, or not a literal.

    :param field: the operator parameter.
    :param reason: what is wrong with its text.
    """

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


def _nesting_depth(text: str, limit: int) -> int:
    """The deepest bracket nesting in ``text`` outside string literals; stops counting past ``limit``."""
    depth = deepest = 0
    quote: str | None = None
    escaped = False
    for char in text:
        if quote is not None:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
        elif char in "]})":
            depth -= 1
    return deepest


def parse_xcom_text(text: str, field: str) -> Any:
    """
    Read a value back from the text a template rendered it to: JSON, or the Python repr Jinja
    writes for a dict or list. Bounded: at most :data:`MAX_XCOM_TEXT_CHARS` characters and
    :data:`MAX_XCOM_DEPTH` levels of nesting, so a hostile or broken value fails with a clear error
    instead of exhausting the stack or the memory.

    :param text: the rendered text.
    :param field: the operator parameter, for messages.
    :raises XComTextError: naming ``field`` and the broken bound or the parse error.
    """
    text = text.strip()
    if len(text) > MAX_XCOM_TEXT_CHARS:
        raise XComTextError(
            field, f"{len(text)} characters of text; at most {MAX_XCOM_TEXT_CHARS} are read back from XCom"
        )
    if _nesting_depth(text, MAX_XCOM_DEPTH) > MAX_XCOM_DEPTH:
        raise XComTextError(
            field, f"nested more than {MAX_XCOM_DEPTH} levels deep; not an XCom value to read back"
        )
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError) as err:
        raise XComTextError(
            field,
            f"not JSON or a Python literal ({text[:80]!r}{'...' if len(text) > 80 else ''}): "
            f"{type(err).__name__}: {err}",
        ) from err


def to_json_safe(value: Any, *, _path: str = "$", _depth: int = 0) -> JSONValue:
    """
    Convert a boto3 payload into plain JSON types, following the XCom contract.

    :param value: a describe, candidate or list payload (or any part of one).
    :raises TypeError: for a value JSON cannot hold, naming where it is, or nested more than
        :data:`MAX_XCOM_DEPTH` levels deep (a cycle included).
    """
    if _depth > MAX_XCOM_DEPTH:
        raise TypeError(f"{_path}: nested more than {MAX_XCOM_DEPTH} levels deep (or a cycle); not XCom-safe")
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
            out[key] = to_json_safe(item, _path=f"{_path}.{key}", _depth=_depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json_safe(item, _path=f"{_path}[{i}]", _depth=_depth + 1) for i, item in enumerate(value)]
    raise TypeError(f"{_path}: {type(value).__name__} is not JSON-safe for XCom")


#: Each summary key and the top-level field of the job it comes from.
SUMMARY_FIELDS: dict[str, str] = {
    "AutoMLJobName": "AutoMLJobName",
    "AutoMLJobArn": "AutoMLJobArn",
    "AutoMLJobStatus": "AutoMLJobStatus",
    "AutoMLJobSecondaryStatus": "AutoMLJobSecondaryStatus",
    "EndTime": "EndTime",
    "FailureReason": "FailureReason",
    "PartialFailureReasons": "PartialFailureReasons",
    "BestCandidateName": "BestCandidate",
    "BestCandidateObjectiveMetric": "BestCandidate",
    "AutoMLProblemTypeConfigName": "AutoMLProblemTypeConfigName",
}
#: ``ObservedIn`` of a summary built from less than a describe, by :attr:`AutopilotJob.source`.
OBSERVED_IN = {"list": "ListAutoMLJobs", "hand-off": "hand-off"}


def unknown_job_summary(job_name: str) -> dict[str, JSONValue]:
    """
    The summary of a job that was never read (a wait that broke before its first describe): its
    status is unknown, and the summary says so instead of guessing.

    :param job_name: the AutoMLJobName.
    """
    return {"AutoMLJobName": job_name, "AutoMLJobStatus": None, "ObservedIn": None}


def job_summary(job: AutopilotJob) -> dict[str, JSONValue]:
    """
    The sensor's XCom value: the job's identity, outcome and best candidate in brief.

    Keys: ``AutoMLJobName``, ``AutoMLJobArn``, ``AutoMLJobStatus``, ``AutoMLJobSecondaryStatus``,
    ``EndTime``, ``FailureReason``, ``PartialFailureReasons`` (list of messages), ``BestCandidateName``
    and ``BestCandidateObjectiveMetric`` (``FinalAutoMLJobObjectiveMetric``: ``MetricName``, ``Value``, ``Type``), the last two ``None``
    when the job has no best candidate; ``AutoMLProblemTypeConfigName`` (``Tabular``,
    ``TimeSeriesForecasting``, ``TextClassification``, ``ImageClassification``, ``TextGeneration``)
    when the job was described with DescribeAutoMLJobV2, else ``None``.

    Only what was observed: a job read from a ListAutoMLJobs summary or a task's hand-off (the
    last state of a wait that ended with an error or a timeout) gets only the keys its source
    shows, and ``ObservedIn`` (``"ListAutoMLJobs"`` or ``"hand-off"``) says so: no
    ``BestCandidateName`` then, rather than a ``None`` that would claim there is none.
    """
    best = job.best_candidate or {}
    summary: dict[str, Any] = {
        "AutoMLJobName": job.name,
        "AutoMLJobArn": job.arn,
        "AutoMLJobStatus": job.status,
        "AutoMLJobSecondaryStatus": job.secondary_status,
        "EndTime": job.end_time,
        "FailureReason": job.failure_reason,
        "PartialFailureReasons": job.partial_failure_reasons,
        "BestCandidateName": best.get("CandidateName"),
        "BestCandidateObjectiveMetric": best.get("FinalAutoMLJobObjectiveMetric"),
        "AutoMLProblemTypeConfigName": job.raw.get("AutoMLProblemTypeConfigName"),
    }
    read = job.fields_read
    if read is not None:
        summary = {key: value for key, value in summary.items() if SUMMARY_FIELDS[key] in read}
        summary["ObservedIn"] = OBSERVED_IN[job.source]
    return to_json_safe(summary)

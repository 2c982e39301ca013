"""Smoke tests of a deployed model without AWS: choosing sample rows, serialising them in the model's
content type, checking every answer against expectations and summing the verdict up for XCom.
"""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from airflow_autopilot.core.clock import Clock, default_clock
from airflow_autopilot.core.promotion import PromotionInputError, parse_string_list, refuse
from airflow_autopilot.core.xcom import XComTextError, parse_xcom_text, to_json_safe

#: The content types a smoke test speaks (Autopilot's tabular inference containers read and write both).
CSV = "text/csv"
JSON_LINES = "application/jsonlines"
CONTENT_TYPES = (CSV, JSON_LINES)
#: Most rows one smoke test sends (one InvokeEndpoint per row).
MAX_ROWS = 100
#: Rows sent when none are counted.
DEFAULT_ROW_COUNT = 5
#: Bytes read from the start of an S3 object to choose rows from (enough for ``MAX_ROWS`` usual rows).
HEAD_BYTES = 1024 * 1024
#: The response keys whose values are probabilities, one or a list.
PROBABILITY_KEY = "probability"
PROBABILITIES_KEY = "probabilities"
LABEL_KEY = "predicted_label"
LABELS_KEY = "labels"
#: The environment variable naming the keys a container answers with, in order.
INFERENCE_OUTPUT_ENV = "SAGEMAKER_INFERENCE_OUTPUT"
#: The environment variable naming a container's default Accept.
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
#: Longest text of a row or an answer kept in a result (a failing row is shown, not a megabyte).
MAX_SHOWN_CHARS = 500


class InvocationError(Exception):
    """The endpoint answered a row with an error of the model (SageMaker's ``ModelError``): the row
    fails the smoke test. Transient faults are not this: they raise as they are."""


@dataclass(frozen=True)
class SmokeTest:
    """
    What a smoke test sends and what it expects, validated (:func:`smoke_test_from`).

    :param rows: inline rows (feature values, the target excluded), or ``None`` to read them from
        ``source_uri``.
    :param source_uri: ``s3://`` object (or prefix: its first object) whose first rows are sent.
    :param row_count: how many rows to send: the first ones of ``source_uri`` (default
        :data:`DEFAULT_ROW_COUNT`), or of the inline rows (default: all of them).
    :param target_attribute_name: the target column of ``source_uri``'s header: its first line is
        then a header, and the column is left out. ``None``: the object is headerless feature rows.
    :param content_type: the request's ContentType, ``text/csv`` or ``application/jsonlines``.
    :param accept: the Accept of the answers, ``text/csv`` or ``application/jsonlines``; ``None``:
        the served model's default (:func:`for_model`).
    :param response_keys: keys every answer must carry; ``None``: the keys the served model answers
        with (:func:`for_model`).
    :param labels: the known classes ``predicted_label`` (and ``labels``) must be among; ``None``
        does not check labels.
    :param max_latency_ms: the longest an invocation may take, in milliseconds; ``None``: no bound.
    :param answer_keys: the keys a CSV answer lists, in order (the served model's
        ``SAGEMAKER_INFERENCE_OUTPUT``); ``None``: ``response_keys``.
    """

    rows: tuple[tuple[str, ...], ...] | None
    source_uri: str | None
    row_count: int
    target_attribute_name: str | None
    content_type: str
    accept: str | None
    response_keys: tuple[str, ...] | None
    labels: tuple[str, ...] | None
    max_latency_ms: float | None
    answer_keys: tuple[str, ...] | None = None

    def keys_listed(self) -> tuple[str, ...]:
        """The keys a CSV answer lists, in order."""
        return self.answer_keys or self.response_keys or (LABEL_KEY,)


def _row(value: Any, where: str) -> tuple[tuple[str, ...] | None, str | None]:
    """One inline row from a list of values or one CSV line; or the problem with it."""
    if isinstance(value, str):
        if not value.strip():
            return None, f"{where}: an empty row; give the feature values"
        return tuple(next(csv.reader([value.strip()]))), None
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
            return tuple(str(v) for v in value), None
    return None, f"{where}: {value!r} must be a CSV line or a non-empty list of values (strings or numbers)"


def _count(value: Any, field: str, errors: list[str]) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    try:
        count = int(value) if not isinstance(value, bool) and float(value) == int(float(value)) else None
    except (TypeError, ValueError, OverflowError):
        count = None
    if count is None or not 1 <= count <= MAX_ROWS:
        errors.append(f"{field}: {value!r} must be a whole number of rows from 1 to {MAX_ROWS}")
        return None
    return count


def _latency(value: Any, field: str, errors: list[str]) -> float | None:
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        errors.append(f"{field}: {value!r} must be a number of milliseconds greater than 0")
        return None
    return number


def _content_type(value: Any, field: str, errors: list[str]) -> str:
    if value in CONTENT_TYPES:
        return str(value)
    errors.append(f"{field}: {value!r} must be one of {', '.join(CONTENT_TYPES)}")
    return CSV


def _optional_content_type(value: Any, field: str, errors: list[str]) -> str | None:
    if value is None or value in ("", "None"):
        return None
    return _content_type(value, field, errors)


def smoke_test_from(
    *,
    rows: Any = None,
    source_uri: Any = None,
    row_count: Any = None,
    target_attribute_name: Any = None,
    content_type: Any = CSV,
    accept: Any = None,
    response_keys: Any = None,
    labels: Any = None,
    max_latency_ms: Any = None,
    prefix: str = "",
) -> SmokeTest:
    """
    Validate a smoke test's parameters (as an operator renders them) before any AWS call.

    :param prefix: put before every parameter name in messages (``smoke_test.``).
    :raises PromotionInputError: listing every problem, each naming the parameter and the rule.
    """
    errors: list[str] = []
    count = _count(row_count, f"{prefix}row_count", errors)
    if isinstance(rows, str) and rows.strip().startswith("["):
        try:
            rows = parse_xcom_text(rows, f"{prefix}rows")
        except XComTextError as err:
            errors.append(f"{prefix}rows: not a list of rows: {err.reason}")
            rows = None
    if isinstance(rows, str) and rows.strip() in ("", "None"):
        rows = None
    inline: tuple[tuple[str, ...], ...] | None = None
    if rows is not None:
        if isinstance(rows, str) or not isinstance(rows, Sequence):
            errors.append(f"{prefix}rows: {rows!r} must be a list of rows (CSV lines or lists of values)")
        elif not rows:
            errors.append(f"{prefix}rows: an empty list sends nothing; give at least one row")
        else:
            checked = [_row(value, f"{prefix}rows[{i}]") for i, value in enumerate(rows)]
            errors += [problem for _, problem in checked if problem]
            if count is None and len(rows) > MAX_ROWS:
                errors.append(f"{prefix}rows: {len(rows)} rows; a smoke test sends at most {MAX_ROWS}")
            inline = tuple(row for row, _ in checked if row is not None)[: count or MAX_ROWS]
    uri = None if source_uri in (None, "", "None") else source_uri
    if uri is not None and (not isinstance(uri, str) or not uri.startswith("s3://") or len(uri) <= 5):
        errors.append(f"{prefix}rows_s3_uri: {uri!r} must be an s3://bucket/key URI")
    if (rows is None) == (uri is None):
        errors.append(
            f"{prefix}rows / {prefix}rows_s3_uri: give exactly one: inline rows, or an S3 object "
            "(such as the job's validation data) to send the first rows of"
        )
    target = None if target_attribute_name in (None, "", "None") else target_attribute_name
    if target is not None and not isinstance(target, str):
        errors.append(f"{prefix}target_attribute_name: {target!r} must be a column name")
    try:
        keys = parse_string_list(response_keys, f"{prefix}expected_response_keys")
    except PromotionInputError as err:
        errors.append(str(err))
        keys = None
    try:
        known = parse_string_list(labels, f"{prefix}expected_labels")
    except PromotionInputError as err:
        errors.append(str(err))
        known = None
    if labels is not None and known is None and labels not in ("", "None"):
        errors.append(f"{prefix}expected_labels: {labels!r} must name at least one class")
    spec = SmokeTest(
        rows=inline,
        source_uri=uri if isinstance(uri, str) else None,
        row_count=count or (len(inline) if inline else DEFAULT_ROW_COUNT),
        target_attribute_name=target if isinstance(target, str) else None,
        content_type=_content_type(content_type, f"{prefix}content_type", errors),
        accept=_optional_content_type(accept, f"{prefix}accept", errors),
        response_keys=tuple(dict.fromkeys(keys)) if keys else None,
        labels=tuple(known) if known else None,
        max_latency_ms=_latency(max_latency_ms, f"{prefix}max_latency_ms", errors),
    )
    refuse(errors)
    return spec


def for_model(spec: SmokeTest, containers: Sequence[Mapping[str, Any]]) -> SmokeTest:
    """
    The smoke test for the model an endpoint serves: the keys it answers with (in their order, for
    CSV answers; and as the expected keys unless some were given) and its default Accept unless
    one was given (a content type the smoke test cannot read falls back to CSV).

    :param spec: the validated smoke test.
    :param containers: the served model's containers.
    """
    keys = response_keys_of(containers)
    default_accept = next(
        (
            str(c["Environment"][DEFAULT_ACCEPT_ENV])
            for c in reversed(containers)
            if (c.get("Environment") or {}).get(DEFAULT_ACCEPT_ENV)
        ),
        None,
    )
    return replace(
        spec,
        accept=spec.accept or (default_accept if default_accept in CONTENT_TYPES else CSV),
        response_keys=spec.response_keys or (tuple(keys) if keys else (LABEL_KEY,)),
        answer_keys=tuple(keys) if keys else None,
    )


def response_keys_of(containers: Sequence[Mapping[str, Any]]) -> list[str] | None:
    """The keys a deployed inference pipeline answers with: the last container's
    ``SAGEMAKER_INFERENCE_OUTPUT`` (the one that writes the answer), ``None`` when none sets it.

    :param containers: the model's containers (``Environment`` dicts).
    """
    for container in reversed(containers):
        output = (container.get("Environment") or {}).get(INFERENCE_OUTPUT_ENV)
        if output:
            return [key.strip() for key in str(output).split(",") if key.strip()]
    return None


# --- rows -----------------------------------------------------------------------------------------
def rows_from_text(
    text: str, *, count: int, target_attribute_name: str | None, truncated: bool = False, source: str = ""
) -> list[tuple[str, ...]]:
    """
    The first ``count`` rows of CSV ``text``, without the target column.

    :param text: the start of the object.
    :param count: rows to take.
    :param target_attribute_name: the header's target column (the first line is a header then);
        ``None`` when the text is headerless feature rows.
    :param truncated: the text was cut after a number of bytes: its last line may be partial.
    :param source: where the text comes from, for messages.
    :raises PromotionInputError: when the header has no such column, or there are no rows.
    """
    lines = text.splitlines()
    if truncated and lines:
        lines.pop()  # cut mid-row
    records = [r for r in csv.reader(line for line in lines if line.strip())]
    drop = None
    if target_attribute_name is not None:
        header = [h.strip() for h in records.pop(0)] if records else []
        if target_attribute_name not in header:
            raise PromotionInputError(
                f"target_attribute_name: {target_attribute_name!r} is not a column of the header of "
                f"{source or 'the rows'} ({', '.join(header[:20]) or 'no header'})"
            )
        drop = header.index(target_attribute_name)
    rows = [tuple(v for i, v in enumerate(r) if i != drop) for r in records[:count]]
    if not rows:
        raise PromotionInputError(f"rows_s3_uri: {source or 'the object'} has no data rows to send")
    return rows


def request_body(row: Sequence[str], content_type: str) -> str:
    """
    One InvokeEndpoint body for ``row``: a headerless CSV line, or a JSON Lines record
    ``{"features": [...]}`` (values as in the CSV).

    :param row: the feature values.
    :param content_type: ``text/csv`` or ``application/jsonlines``.
    """
    if content_type == JSON_LINES:
        return json.dumps({"features": list(row)})
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(row)
    return buffer.getvalue()


# --- answers --------------------------------------------------------------------------------------
def _list_value(value: Any) -> Any:
    """A CSV cell holding a list (``"[0.1, 0.9]"`` or ``"['no', 'yes']"``) as a list; else as it is."""
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            return parse_xcom_text(value, "answer")
        except XComTextError:
            return value
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not a JSON number")


def parse_answer(body: str, accept: str, keys: Sequence[str]) -> tuple[dict[str, Any] | None, list[str]]:
    """
    Read one answer: a JSON Lines record, or a CSV line whose values are ``keys`` in order.

    :param body: the decoded response body.
    :param accept: ``text/csv`` or ``application/jsonlines``.
    :param keys: the keys a CSV answer lists, in order.
    :return: the answer as a dict (``None`` when it cannot be read) and the problems reading it.
    """
    text = body.strip()
    if not text:
        return None, ["empty answer"]
    if accept == JSON_LINES:
        try:
            record = json.loads(text.splitlines()[0], parse_constant=_not_json)
        except ValueError:
            return None, [f"answer is not JSON Lines: {text[:80]!r}"]
        if not isinstance(record, dict):
            return None, [f"answer is not a JSON object: {text[:80]!r}"]
        return record, []
    values = next(csv.reader([text.splitlines()[0]]))
    if len(values) != len(keys):
        return None, [f"answer has {len(values)} CSV values, expected {len(keys)} ({', '.join(keys)})"]
    return {key: _list_value(value) for key, value in zip(keys, values, strict=True)}, []


def _probability(value: Any) -> float | None:
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and 0.0 <= number <= 1.0 else None


def check_answer(answer: Mapping[str, Any], spec: SmokeTest) -> list[str]:
    """
    What is wrong with one answer: a missing response key, a label outside the known classes, a
    probability outside [0, 1], a probability list that does not match the classes.

    :param answer: the parsed answer.
    :param spec: the expectations.
    """
    problems = [
        f"response key {key!r} missing"
        for key in spec.response_keys or (LABEL_KEY,)
        if answer.get(key) in (None, "")
    ]
    known = set(spec.labels or ())
    label = answer.get(LABEL_KEY)
    if known and label not in (None, "") and str(label) not in known:
        problems.append(f"predicted_label {label!r} is not one of the known classes {sorted(known)}")
    if answer.get(PROBABILITY_KEY) not in (None, "") and _probability(answer[PROBABILITY_KEY]) is None:
        problems.append(f"probability {answer[PROBABILITY_KEY]!r} is not a number in [0, 1]")
    if answer.get(PROBABILITIES_KEY) not in (None, ""):
        values = answer[PROBABILITIES_KEY]
        if not isinstance(values, list) or any(_probability(v) is None for v in values):
            problems.append(f"probabilities {values!r} must be a list of numbers in [0, 1]")
        elif known and len(values) != len(known):
            problems.append(f"probabilities has {len(values)} values for {len(known)} known classes")
    if answer.get(LABELS_KEY) not in (None, "") and known:
        values = answer[LABELS_KEY]
        if not isinstance(values, list) or any(str(v) not in known for v in values):
            problems.append(f"labels {values!r} are not among the known classes {sorted(known)}")
    return problems


# --- the run --------------------------------------------------------------------------------------
def _shown(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARS else text[:MAX_SHOWN_CHARS] + "..."


@dataclass
class SmokeResult:
    """
    A smoke test's outcome; :meth:`to_dict` is its XCom value.

    :param endpoint_name: the endpoint tested.
    :param answers: one entry per row: ``row`` (its request body), ``answer`` (parsed, or ``None``),
        ``raw`` (the response text, or the error), ``latency_ms`` and ``problems``.
    """

    endpoint_name: str
    answers: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        """The answers with problems, each with its row index."""
        return [dict(answer, index=i) for i, answer in enumerate(self.answers) if answer["problems"]]

    @property
    def passed(self) -> bool:
        """Every row was answered, and every answer met the expectations."""
        return bool(self.answers) and not self.failures

    def latency(self) -> dict[str, float | None]:
        """The median and the longest invocation, in milliseconds."""
        values = [a["latency_ms"] for a in self.answers]
        if not values:
            return {"p50": None, "max": None}
        return {"p50": round(statistics.median(values), 3), "max": round(max(values), 3)}

    def summary(self) -> str:
        """One line for the log and the task's error."""
        latency = self.latency()
        return (
            f"{len(self.answers) - len(self.failures)}/{len(self.answers)} rows answered as expected "
            f"by {self.endpoint_name} (latency p50 {latency['p50']} ms, max {latency['max']} ms)"
        )

    def failure_report(self, limit: int = 5) -> str:
        """The failing rows and their answers, for the task's error (the first ``limit``)."""
        failures = self.failures
        lines = [
            f"  row {f['index']}: {f['row']} -> {f['raw']}: {'; '.join(f['problems'])}"
            for f in failures[:limit]
        ]
        if len(failures) > limit:
            lines.append(f"  ... and {len(failures) - limit} more (see the XCom smoke_test result)")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: ``endpoint_name``, ``passed``, ``rows_sent``, ``failures`` (count),
        ``latency_ms`` (``p50``, ``max``), ``answers`` and ``failed_rows``."""
        return dict(
            to_json_safe(
                {
                    "endpoint_name": self.endpoint_name,
                    "passed": self.passed,
                    "rows_sent": len(self.answers),
                    "failures": len(self.failures),
                    "latency_ms": self.latency(),
                    "answers": self.answers,
                    "failed_rows": self.failures,
                }
            )
        )


def run_smoke_test(
    spec: SmokeTest,
    rows: Sequence[Sequence[str]],
    invoke: Callable[[str], str],
    *,
    endpoint_name: str,
    clock: Clock | None = None,
    on_answer: Callable[[int, dict[str, Any]], object] | None = None,
) -> SmokeResult:
    """
    Send every row with ``invoke`` and check each answer.

    :param spec: the smoke test.
    :param rows: the rows to send.
    :param invoke: sends one body, returns the decoded answer; raises :class:`InvocationError`
        when the model answered with an error (the row fails; anything else propagates).
    :param endpoint_name: the endpoint, for the result.
    :param clock: measures latency (default: the package's clock).
    :param on_answer: called with each row's index and entry as it is checked (logging).
    """
    clock = clock or default_clock()
    result = SmokeResult(endpoint_name=endpoint_name)
    for index, row in enumerate(rows):
        body = request_body(row, spec.content_type)
        started = clock.monotonic()
        answer: dict[str, Any] | None = None
        try:
            raw = invoke(body)
        except InvocationError as err:
            raw, problems = f"error: {err}", ["the model answered with an error"]
        else:
            answer, problems = parse_answer(raw, spec.accept or CSV, spec.keys_listed())
            if answer is not None:
                problems = check_answer(answer, spec)
        latency_ms = max(0.0, (clock.monotonic() - started) * 1000.0)
        if spec.max_latency_ms is not None and latency_ms > spec.max_latency_ms:
            problems.append(f"took {latency_ms:.0f} ms, over max_latency_ms {spec.max_latency_ms:g}")
        entry = {
            "row": _shown(body),
            "answer": answer,
            "raw": _shown(raw.strip()),
            "latency_ms": round(latency_ms, 3),
            "problems": problems,
        }
        result.answers.append(entry)
        if on_answer is not None:
            on_answer(index, entry)
    return result

"""Promotion gates on every metric: conditions over a candidate's CandidateMetrics and over values in
its model-insights and explainability reports, checked without AWS.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from airflow_autopilot.core.job import MAXIMIZED_METRICS, MINIMIZED_METRICS
from airflow_autopilot.core.promotion import PromotionDecision, PromotionInputError, parse_mapping
from airflow_autopilot.core.xcom import XComTextError, parse_xcom_text

#: Comparison operators a condition may use.
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
    "!=": operator.ne,
}
_CONDITION = re.compile(r"^\s*(>=|<=|==|!=|>|<)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")

#: Metric names Autopilot reports in ``CandidateProperties.CandidateMetrics``.
KNOWN_METRICS = frozenset(MINIMIZED_METRICS | MAXIMIZED_METRICS)
#: The data sets of ``CandidateMetrics`` entries (``Set``).
METRIC_SETS = ("Validation", "Train", "Test")

#: Reports in ``CandidateArtifactLocations`` and the JSON file read under each prefix by default.
REPORT_FILES: dict[str, str] = {"ModelInsights": "report.json", "Explainability": "analysis.json"}
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Comparison:
    """
    ``<operator> <number>``, e.g. ``>= 0.8``.

    :param op: one of :data:`OPERATORS`.
    :param bound: the number compared with.
    """

    op: str
    bound: float

    @classmethod
    def parse(cls, text: Any, field: str) -> Comparison:
        """
        Read ``">= 0.8"``.

        :param text: the condition text.
        :param field: the parameter (and key), for messages.
        :raises PromotionInputError: naming ``field`` and the rule.
        """
        match = _CONDITION.match(text) if isinstance(text, str) else None
        if match is None:
            raise PromotionInputError(
                f"{field}: {text!r} must be an operator and a number, such as '>= 0.8' "
                f"(operators: {', '.join(OPERATORS)})"
            )
        bound = float(match.group(2))
        if not math.isfinite(bound):
            raise PromotionInputError(f"{field}: {text!r}: the number must be finite")
        return cls(match.group(1), bound)

    def holds(self, value: float) -> bool:
        """Whether ``value`` meets the comparison."""
        return OPERATORS[self.op](value, self.bound)

    def __str__(self) -> str:
        return f"{self.op} {self.bound:g}"


@dataclass(frozen=True)
class MetricCondition:
    """
    A condition on one ``CandidateMetrics`` entry.

    :param metric: ``MetricName`` (or ``StandardMetricName``).
    :param comparison: the rule.
    :param metric_set: the entry's ``Set`` (``Validation`` by default).
    """

    metric: str
    comparison: Comparison
    metric_set: str = "Validation"

    @property
    def label(self) -> str:
        return f"metric {self.metric} ({self.metric_set})"


@dataclass(frozen=True)
class ReportCondition:
    """
    A condition on a number in a report under ``CandidateArtifactLocations``.

    :param report: ``ModelInsights`` or ``Explainability``.
    :param path: a dotted JSON path into the report, e.g. ``binary_classification_metrics.f1.value``
        (``$.`` prefix and ``[i]`` list indices allowed).
    :param comparison: the rule.
    :param file: the JSON file under the report's prefix (default from :data:`REPORT_FILES`).
    """

    report: str
    path: str
    comparison: Comparison
    file: str

    @property
    def label(self) -> str:
        return f"{self.report} {self.path}"


@dataclass(frozen=True)
class ConditionResult:
    """One condition's outcome: what was checked, the value found and the verdict."""

    condition: str
    rule: str
    value: float | None
    passed: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_path(path: Any, field: str) -> list[str | int]:
    """
    The parts of a dotted JSON path (``a.b[0].c``, optionally starting ``$.``).

    :raises PromotionInputError: naming ``field`` for an empty or malformed path.
    """
    text = path.strip() if isinstance(path, str) else ""
    if text.startswith("$"):
        text = text[1:].lstrip(".")
    parts: list[str | int] = []
    position = 0
    for match in _PATH_PART.finditer(text):
        gap = text[position : match.start()]
        if gap not in ("", ".") or (gap == "" and position and match.group(1)):
            break
        parts.append(int(match.group(2)) if match.group(2) is not None else match.group(1))
        position = match.end()
    if not text or not parts or position != len(text):
        raise PromotionInputError(
            f"{field}: {path!r} must be a JSON path into the report, such as "
            "'binary_classification_metrics.f1.value' or '$.explanations.kernel_shap.label0.expected_value'"
        )
    return parts


def parse_metric_conditions(
    value: Any, field: str = "metric_conditions", metric_set: Any = "Validation"
) -> list[MetricCondition]:
    """
    ``{"F1": ">= 0.8", "LogLoss": "<= 0.4"}`` as :class:`MetricCondition` s.

    :param value: a dict (or its JSON / Jinja rendering); ``None`` or empty gives no conditions.
    :param field: the parameter, for messages.
    :param metric_set: the ``Set`` the values come from.
    :raises PromotionInputError: for an unknown metric, a bad condition or a bad set.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "{}")):
        return []
    conditions = parse_mapping(value, field)
    if metric_set not in METRIC_SETS:
        raise PromotionInputError(f"metric_set: {metric_set!r} must be one of {', '.join(METRIC_SETS)}")
    out = []
    for name, text in conditions.items():
        if name not in KNOWN_METRICS:
            raise PromotionInputError(
                f"{field}[{name!r}]: unknown metric; Autopilot reports {', '.join(sorted(KNOWN_METRICS))}"
            )
        out.append(MetricCondition(str(name), Comparison.parse(text, f"{field}[{name!r}]"), str(metric_set)))
    return out


def parse_report_conditions(value: Any, field: str = "report_conditions") -> list[ReportCondition]:
    """
    ``[{"report": "ModelInsights", "path": "binary_classification_metrics.recall.value",
    "condition": ">= 0.7"}]`` as :class:`ReportCondition` s (``file`` optional).

    :param value: a list of dicts (or its JSON / Jinja rendering); ``None`` or empty gives none.
    :param field: the parameter, for messages.
    :raises PromotionInputError: naming the entry and key.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "[]")):
        return []
    if isinstance(value, str):
        try:
            value = parse_xcom_text(value, field)
        except XComTextError as err:
            raise PromotionInputError(f"{field}: not a list of dicts: {err.reason}") from err
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise PromotionInputError(f"{field}: must be a list of dicts with report, path and condition")
    out = []
    for i, entry in enumerate(value):
        where = f"{field}[{i}]"
        if not isinstance(entry, Mapping):
            raise PromotionInputError(f"{where}: must be a dict with report, path and condition")
        unknown = sorted(set(entry) - {"report", "path", "condition", "file"})
        if unknown:
            raise PromotionInputError(f"{where}: unknown key(s) {unknown}; use report, path, condition, file")
        report = entry.get("report")
        if report not in REPORT_FILES:
            raise PromotionInputError(f"{where}.report: {report!r} must be one of {', '.join(REPORT_FILES)}")
        path = entry.get("path")
        parse_path(path, f"{where}.path")
        file = entry.get("file") or REPORT_FILES[report]
        if not isinstance(file, str) or ".." in file or not file.strip("/"):
            raise PromotionInputError(f"{where}.file: {file!r} must be a file name under the report's prefix")
        comparison = Comparison.parse(entry.get("condition"), f"{where}.condition")
        out.append(ReportCondition(str(report), str(path).strip(), comparison, file.strip("/")))
    return out


def metric_value(candidate: Mapping[str, Any], name: str, metric_set: str) -> float | None:
    """A ``CandidateMetrics`` value by ``MetricName`` or ``StandardMetricName`` and ``Set``, or ``None``."""
    metrics = (candidate.get("CandidateProperties") or {}).get("CandidateMetrics") or []
    for entry in metrics if isinstance(metrics, Sequence) else []:
        if not isinstance(entry, Mapping) or entry.get("Set", "Validation") != metric_set:
            continue
        if name in (entry.get("MetricName"), entry.get("StandardMetricName")):
            try:
                return float(entry["Value"])
            except (KeyError, TypeError, ValueError):
                return None
    return None


def report_uri(candidate: Mapping[str, Any], condition: ReportCondition) -> str | None:
    """The S3 URI of the report file a condition reads, or ``None`` when the candidate has no such report."""
    locations = (candidate.get("CandidateProperties") or {}).get("CandidateArtifactLocations") or {}
    prefix = locations.get(condition.report) if isinstance(locations, Mapping) else None
    if not isinstance(prefix, str) or not prefix:
        return None
    return f"{prefix.rstrip('/')}/{condition.file}"


def value_at(document: Any, path: str) -> float | None:
    """The number at ``path`` in a parsed JSON document, or ``None`` when absent or not a number."""
    node = document
    for part in parse_path(path, "path"):
        if isinstance(part, int) and isinstance(node, list) and part < len(node):
            node = node[part]
        elif isinstance(part, str) and isinstance(node, Mapping) and part in node:
            node = node[part]
        else:
            return None
    if isinstance(node, bool) or not isinstance(node, (int, float)):
        return None
    return float(node)


def check_metric(candidate: Mapping[str, Any], condition: MetricCondition) -> ConditionResult:
    """Evaluate one metric condition on a candidate; a missing metric fails the condition."""
    value = metric_value(candidate, condition.metric, condition.metric_set)
    if value is None:
        return ConditionResult(
            condition.label, str(condition.comparison), None, False, "the candidate has no such metric"
        )
    return ConditionResult(
        condition.label, str(condition.comparison), value, condition.comparison.holds(value)
    )


def check_report(document: Any, condition: ReportCondition, uri: str | None) -> ConditionResult:
    """Evaluate one report condition on the parsed report (``None`` when it could not be read)."""
    if document is None:
        return ConditionResult(
            condition.label,
            str(condition.comparison),
            None,
            False,
            f"report not found ({uri or 'no location'})",
        )
    value = value_at(document, condition.path)
    if value is None:
        return ConditionResult(
            condition.label, str(condition.comparison), None, False, f"no number at this path in {uri}"
        )
    return ConditionResult(
        condition.label, str(condition.comparison), value, condition.comparison.holds(value), uri or ""
    )


def objective_results(decision: PromotionDecision) -> list[ConditionResult]:
    """The threshold and champion rules of a decision, listed like the other conditions."""
    sign = ">=" if decision.direction == "Maximize" else "<="
    results = []
    if decision.threshold is not None:
        passed = OPERATORS[sign](decision.value, decision.threshold)
        results.append(
            ConditionResult(
                f"threshold {decision.metric_name}", f"{sign} {decision.threshold:g}", decision.value, passed
            )
        )
    if decision.champion_value is not None and (decision.threshold is None or results[-1].passed):
        gain = decision.value - decision.champion_value
        gain = gain if decision.direction == "Maximize" else -gain
        results.append(
            ConditionResult(
                f"champion {decision.metric_name}",
                f"improvement > 0 and >= {decision.min_improvement:g} over {decision.champion_value:g}",
                decision.value,
                gain > 0 and gain >= decision.min_improvement,
                decision.champion_arn or "",
            )
        )
    return results


def combine(decision: PromotionDecision, results: Sequence[ConditionResult]) -> PromotionDecision:
    """
    The decision with every condition listed: promote only when the objective rules and every
    condition pass; the reason names the failed conditions.

    :param decision: :func:`~airflow_autopilot.core.promotion.decide_promotion`'s verdict.
    :param results: the metric and report conditions' outcomes.
    """
    listed = [r.to_dict() for r in (*objective_results(decision), *results)]
    failed = [r for r in results if not r.passed]
    if not failed:
        return replace(decision, conditions=listed)
    why = "; ".join(
        f"{r.condition} {r.value if r.value is not None else 'missing'} fails {r.rule}"
        + (f" ({r.detail})" if r.detail and r.value is None else "")
        for r in failed
    )
    reason = f"{decision.reason}; but {why}" if decision.promote else f"{decision.reason}; also {why}"
    return replace(decision, promote=False, reason=reason, conditions=listed)

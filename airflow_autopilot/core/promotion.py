"""Promotion facts and decisions without AWS: reading a BestCandidate, the promote-or-reject rule,
registered-version metadata, endpoint statuses and safe SageMaker resource names.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from airflow_autopilot.core.fields.common import RESOURCE_NAME
from airflow_autopilot.core.fields.model import RESOURCE_NAME_MAX as RESOURCE_NAME_MAX
from airflow_autopilot.core.fields.model_package import APPROVAL_STATUSES as APPROVAL_STATUSES
from airflow_autopilot.core.fields.spec import RequestSpec, generic
from airflow_autopilot.core.job import known_metric_direction, metric_direction
from airflow_autopilot.core.validation import empty_rendering_error
from airflow_autopilot.core.xcom import XComTextError, parse_xcom_text
from airflow_autopilot.exceptions import AutopilotError

#: CustomerMetadataProperties keys written on every version the register operator creates.
META_JOB_NAME = "autopilot:job-name"
META_CANDIDATE_NAME = "autopilot:candidate-name"
META_OBJECTIVE_METRIC = "autopilot:objective-metric"
META_OBJECTIVE_VALUE = "autopilot:objective-value"
META_OBJECTIVE_TYPE = "autopilot:objective-type"


#: Container environment keys Autopilot uses for the inference response.
INFERENCE_OUTPUT_ENV = "SAGEMAKER_INFERENCE_OUTPUT"
INFERENCE_SUPPORTED_ENV = "SAGEMAKER_INFERENCE_SUPPORTED"

Direction = Literal["Maximize", "Minimize"]

#: Endpoint statuses that end a wait badly.
ENDPOINT_FAILED_STATUSES = frozenset({"Failed", "OutOfService", "Deleting"})
#: Endpoint statuses during which UpdateEndpoint is refused.
ENDPOINT_BUSY_STATUSES = frozenset(
    {"Creating", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed"}
)


def endpoint_verdict(
    endpoint: Mapping[str, Any], config_name: str | None
) -> Literal["success", "failure", "waiting"]:
    """
    Whether a DescribeEndpoint answer ends a wait for ``config_name``, and how.

    * InService on ``config_name`` (or on any config when ``config_name`` is ``None``): success.
    * Failed, OutOfService or Deleting: failure.
    * InService on another config **with a FailureReason**: failure. SageMaker rolled the update
      back: the endpoint serves its previous config and will not move to ``config_name`` by itself.
      (While the update is still to start or in progress the endpoint is Updating, or InService on
      the old config without a FailureReason: waiting.)
    * Anything else (Creating, Updating, RollingBack, SystemUpdating ...): waiting.

    The outcome of :func:`~airflow_autopilot.core.rollout.rollout_outcome` (promoted is success;
    rolled back, or UpdateRollbackFailed, is failure), from one describe.

    :param endpoint: the DescribeEndpoint response.
    :param config_name: the EndpointConfigName the endpoint must serve; ``None`` accepts any.
    """
    from airflow_autopilot.core.rollout import rollout_outcome

    outcome = rollout_outcome(endpoint, config_name)
    if outcome is None:
        return "waiting"
    return "success" if outcome == "promoted" else "failure"


#: What a deploy does with the endpoint it finds (see :func:`endpoint_action`).
EndpointAction = Literal["create", "reuse", "settle", "update", "refuse"]


def endpoint_action(endpoint: Mapping[str, Any] | None, config_name: str) -> EndpointAction:
    """
    What a deploy of ``config_name`` does with the endpoint as described now.

    * ``create``: there is no endpoint.
    * ``reuse``: it serves ``config_name`` already, or an update to it is in flight
      (``PendingDeploymentSummary``, an earlier try's): only wait, which also catches a rollback.
    * ``refuse``: it is Failed, OutOfService or Deleting on another config (UpdateEndpoint cannot
      fix that).
    * ``settle``: SageMaker is busy with it (Creating, someone's update ...): wait until it settles,
      then decide again from the settled endpoint, not from this describe.
    * ``update``: UpdateEndpoint to ``config_name``.

    :param endpoint: DescribeEndpoint, or ``None`` when the endpoint does not exist.
    :param config_name: the endpoint config the deploy wants served.
    """
    if endpoint is None:
        return "create"
    if config_name in (endpoint.get("EndpointConfigName"), pending_config(endpoint)):
        return "reuse"
    status = endpoint.get("EndpointStatus")
    if status in ENDPOINT_FAILED_STATUSES:
        return "refuse"
    if status in ENDPOINT_BUSY_STATUSES:
        return "settle"
    return "update"


def pending_config(endpoint: Mapping[str, Any]) -> str | None:
    """The config an in-flight deployment moves the endpoint to (``PendingDeploymentSummary``), if known."""
    pending = endpoint.get("PendingDeploymentSummary")
    name = pending.get("EndpointConfigName") if isinstance(pending, Mapping) else None
    return name if isinstance(name, str) else None


class PromotionInputError(AutopilotError, ValueError):
    """An operator input (BestCandidate, threshold ...) is missing or malformed; names the field."""

    #: Every problem, when a request's validation found them at once (see :func:`refuse`).
    errors: tuple[str, ...] = ()


# --- reading the BestCandidate --------------------------------------------------------------------
def parse_mapping(value: Any, field: str) -> dict[str, Any]:
    """
    A dict from an XCom value: a mapping, a JSON string, or the Python repr Jinja renders a dict to.

    :param value: the rendered template field.
    :param field: the operator parameter, for messages.
    :raises PromotionInputError: naming ``field`` when the value is missing or not a mapping.
    """
    if value is None or empty_rendering_error(value, field):
        raise PromotionInputError(
            f"{field}: missing (got {value!r}); pass the BestCandidate XCom, for example "
            f"{field}=\"{{{{ ti.xcom_pull(task_ids='best_candidate') }}}}\" or best_candidate_task.output"
        )
    if isinstance(value, str):
        try:
            value = parse_xcom_text(value, field)
        except XComTextError as err:
            raise PromotionInputError(
                f"{field}: not a dict, JSON object or dict literal: {err.reason}"
            ) from err
    if not isinstance(value, Mapping):
        raise PromotionInputError(f"{field}: expected a dict (a BestCandidate), got {type(value).__name__}")
    return dict(value)


def parse_number(value: Any, field: str, *, allow_none: bool = True) -> float | None:
    """
    A finite float from a parameter that may have been rendered by Jinja as a string.

    :param value: the value.
    :param field: the parameter name, for messages.
    :param allow_none: return ``None`` for ``None`` / ``""`` / ``"None"`` instead of failing.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        if allow_none:
            return None
        raise PromotionInputError(f"{field}: missing; a number is required")
    if isinstance(value, bool):
        raise PromotionInputError(f"{field}: {value!r} is a boolean, not a number")
    try:
        number = float(value)
    except (TypeError, ValueError) as err:
        raise PromotionInputError(f"{field}: {value!r} is not a number") from err
    if not math.isfinite(number):
        raise PromotionInputError(f"{field}: {value!r} is not a finite number")
    return number


def parse_string_list(value: Any, field: str) -> list[str] | None:
    """
    A list of strings from a list, a JSON / Python list literal, or a comma-separated string.

    :param value: the rendered parameter; ``None`` / ``""`` give ``None``.
    :param field: the parameter name, for messages.
    """
    if value is None or (isinstance(value, str) and value.strip() in ("", "None")):
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = parse_xcom_text(text, field)
            except XComTextError as err:
                raise PromotionInputError(
                    f"{field}: {text[:80]!r} is not a list literal: {err.reason}"
                ) from err
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise PromotionInputError(f"{field}: {value!r} must be a list of non-empty strings")
    return list(value)


@dataclass(frozen=True)
class CandidateScore:
    """
    What promotion needs from a BestCandidate: its name, objective metric, value and direction.

    :param candidate_name: ``CandidateName``.
    :param metric_name: ``FinalAutoMLJobObjectiveMetric.MetricName``.
    :param value: ``FinalAutoMLJobObjectiveMetric.Value``.
    :param direction: ``FinalAutoMLJobObjectiveMetric.Type``, or derived from the metric name.
    """

    candidate_name: str
    metric_name: str
    value: float
    direction: Direction

    @classmethod
    def from_best_candidate(cls, best: Mapping[str, Any], field: str = "best_candidate") -> CandidateScore:
        """
        Read a BestCandidate (as AutopilotBestCandidateOperator pushes it).

        :param best: the BestCandidate dict.
        :param field: the operator parameter, for messages.
        :raises PromotionInputError: naming the missing or malformed key.
        """
        name = best.get("CandidateName")
        if not isinstance(name, str) or not name:
            raise PromotionInputError(f"{field}.CandidateName: missing or not a non-empty string ({name!r})")
        empty = empty_rendering_error(name, f"{field}.CandidateName")
        if empty:
            raise PromotionInputError(empty)
        metric = best.get("FinalAutoMLJobObjectiveMetric")
        if not isinstance(metric, Mapping):
            raise PromotionInputError(
                f"{field}.FinalAutoMLJobObjectiveMetric: missing or not a dict ({metric!r}); "
                "the candidate has no objective value to promote on"
            )
        metric_name = metric.get("MetricName")
        if not isinstance(metric_name, str) or not metric_name:
            raise PromotionInputError(
                f"{field}.FinalAutoMLJobObjectiveMetric.MetricName: missing or not a string ({metric_name!r})"
            )
        value = metric.get("Value")
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise PromotionInputError(
                f"{field}.FinalAutoMLJobObjectiveMetric.Value: missing or not a number ({value!r})"
            )
        number = parse_number(value, f"{field}.FinalAutoMLJobObjectiveMetric.Value", allow_none=False)
        assert number is not None
        declared = metric.get("Type")
        if declared in ("Maximize", "Minimize"):
            direction: Direction = declared
        elif declared in (None, ""):
            direction = metric_direction(metric_name)
        else:
            raise PromotionInputError(
                f"{field}.FinalAutoMLJobObjectiveMetric.Type: {declared!r} must be Maximize or Minimize"
            )
        known = known_metric_direction(metric_name)
        if known is not None and direction != known:
            # Promoting on it would invert the threshold and the champion comparison.
            raise PromotionInputError(
                f"{field}.FinalAutoMLJobObjectiveMetric.Type: {declared!r} contradicts the metric: "
                f"Autopilot's {metric_name} is always {known}d"
            )
        return cls(candidate_name=name, metric_name=metric_name, value=number, direction=direction)


#: ``InferenceContainerDefinitions`` keys (AutoMLProcessingUnit).
PROCESSING_UNITS = ("CPU", "GPU")
#: Instance families with GPUs (ml.g4dn, ml.g5, ml.p3, ml.p4d ...).
_GPU_INSTANCE = re.compile(r"ml\.(g|p)\d")


def processing_unit_for(instance_type: Any) -> str:
    """``GPU`` for a GPU instance type (ml.g*, ml.p*), else ``CPU``.

    :param instance_type: a SageMaker instance type such as ``ml.g5.xlarge``.
    """
    return "GPU" if isinstance(instance_type, str) and _GPU_INSTANCE.match(instance_type) else "CPU"


def inference_containers(
    best: Mapping[str, Any], field: str = "best_candidate", processing_unit: str | None = None
) -> list[dict[str, Any]]:
    """
    The BestCandidate's containers as ``{"Image", "ModelDataUrl", "Environment"}`` dicts.

    V1 and tabular, time-series (its forecasting containers) and text-generation V2 candidates carry
    ``InferenceContainers``; V2 text and image classification candidates carry
    ``InferenceContainerDefinitions``, a list per processing unit: ``processing_unit`` picks one
    (default CPU when there is one, as the default instance types are CPU ones).

    :param best: the BestCandidate dict.
    :param field: the operator parameter, for messages.
    :param processing_unit: ``CPU`` or ``GPU`` for candidates with ``InferenceContainerDefinitions``.
    :raises PromotionInputError: when there are none, or none for ``processing_unit``.
    """
    if processing_unit is not None and processing_unit not in PROCESSING_UNITS:
        raise PromotionInputError(
            f"processing_unit: {processing_unit!r} must be one of {', '.join(PROCESSING_UNITS)}"
        )
    containers = best.get("InferenceContainers")
    definitions = best.get("InferenceContainerDefinitions")
    if not containers and isinstance(definitions, Mapping) and definitions:
        if processing_unit is not None:
            containers = definitions.get(processing_unit)
            if not containers:
                raise PromotionInputError(
                    f"{field}.InferenceContainerDefinitions: no {processing_unit} containers; the candidate has "
                    f"{', '.join(sorted(definitions))} (choose processing_unit / an instance type to match)"
                )
        else:
            containers = definitions.get("CPU") or next(iter(definitions.values()), None)
    if not isinstance(containers, Sequence) or isinstance(containers, str) or not containers:
        raise PromotionInputError(f"{field}.InferenceContainers: missing or empty; nothing to deploy")
    out = []
    for i, container in enumerate(containers):
        if not isinstance(container, Mapping) or not isinstance(container.get("Image"), str):
            raise PromotionInputError(f"{field}.InferenceContainers[{i}].Image: missing or not a string")
        item: dict[str, Any] = {"Image": container["Image"]}
        if container.get("ModelDataUrl"):
            item["ModelDataUrl"] = str(container["ModelDataUrl"])
        env = container.get("Environment") or {}
        if not isinstance(env, Mapping):
            raise PromotionInputError(f"{field}.InferenceContainers[{i}].Environment: not a dict")
        if env:
            item["Environment"] = {str(k): str(v) for k, v in env.items()}
        out.append(item)
    return out


def with_response_keys(containers: list[dict[str, Any]], keys: Sequence[str] | None) -> list[dict[str, Any]]:
    """
    Set ``SAGEMAKER_INFERENCE_OUTPUT`` on every container that declares what it supports.

    A container with ``SAGEMAKER_INFERENCE_SUPPORTED`` gets the keys it supports (all of them must
    be supported by at least one container); containers without it are left as they are, except
    when none declares support, in which case every container gets the keys.

    :param containers: containers from :func:`inference_containers`.
    :param keys: response keys such as ``["predicted_label", "probability"]``; ``None`` leaves the
        containers unchanged.
    :raises PromotionInputError: for an unsupported key (field ``inference_response_keys``).
    """
    if not keys:
        return containers
    keys = [str(k) for k in keys]
    declared = [
        (
            i,
            {
                s.strip()
                for s in c.get("Environment", {}).get(INFERENCE_SUPPORTED_ENV, "").split(",")
                if s.strip()
            },
        )
        for i, c in enumerate(containers)
        if c.get("Environment", {}).get(INFERENCE_SUPPORTED_ENV)
    ]
    if declared:
        supported = set().union(*(s for _, s in declared))
        unknown = [k for k in keys if k not in supported]
        if unknown:
            raise PromotionInputError(
                f"inference_response_keys: {unknown} not supported by the candidate's containers "
                f"({INFERENCE_SUPPORTED_ENV}: {sorted(supported)})"
            )
    out = [dict(c, Environment=dict(c.get("Environment", {}))) for c in containers]
    targets = [i for i, _ in declared] or list(range(len(out)))
    for i in targets:
        own = next((s for j, s in declared if j == i), None)
        chosen = [k for k in keys if own is None or k in own]
        if chosen:
            out[i]["Environment"][INFERENCE_OUTPUT_ENV] = ",".join(chosen)
    return out


# --- the decision ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Champion:
    """
    The latest Approved version of a Model Package Group and the metric stored with it.

    :param model_package_arn: its ARN.
    :param metric_name: ``autopilot:objective-metric``.
    :param value: ``autopilot:objective-value``.
    :param candidate_name: ``autopilot:candidate-name`` (may be empty).
    """

    model_package_arn: str
    metric_name: str
    value: float
    candidate_name: str = ""

    @classmethod
    def from_package(cls, package: Mapping[str, Any]) -> Champion:
        """
        Read a DescribeModelPackage response.

        :raises AutopilotError: when the version has no readable objective metric in its
            CustomerMetadataProperties (it was not registered by this package).
        """
        arn = str(package.get("ModelPackageArn", ""))
        meta = package.get("CustomerMetadataProperties") or {}
        metric, raw = meta.get(META_OBJECTIVE_METRIC), meta.get(META_OBJECTIVE_VALUE)
        try:
            value = float(raw) if raw is not None else math.nan
        except ValueError:
            value = math.nan
        if not metric or not math.isfinite(value):
            raise AutopilotError(
                f"The champion {arn} has no usable objective metric in its CustomerMetadataProperties "
                f"({META_OBJECTIVE_METRIC}={metric!r}, {META_OBJECTIVE_VALUE}={raw!r}); register versions "
                "with AutopilotRegisterCandidateOperator, add these keys to the Approved version, or leave "
                "model_package_group_name unset (None) to promote without comparing with a champion"
            )
        return cls(arn, str(metric), value, str(meta.get(META_CANDIDATE_NAME, "")))


@dataclass(frozen=True)
class PromotionDecision:
    """The gate's verdict and why; ``to_dict()`` is its XCom value (``promotion_decision``)."""

    promote: bool
    reason: str
    candidate_name: str
    metric_name: str
    value: float
    direction: Direction
    threshold: float | None
    champion_arn: str | None = None
    champion_value: float | None = None
    min_improvement: float = 0.0
    #: Every condition checked, with its value and verdict (see :mod:`airflow_autopilot.core.gates`).
    conditions: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def improvement(value: float, other: float, direction: Direction) -> float:
    """How much better ``value`` is than ``other`` (positive = better), honouring the direction."""
    return value - other if direction == "Maximize" else other - value


def decide_promotion(
    score: CandidateScore,
    *,
    threshold: float | None,
    champion: Champion | None = None,
    min_improvement: float = 0.0,
) -> PromotionDecision:
    """
    Promote when the candidate meets ``threshold`` and, if there is a champion, beats it.

    * Threshold: ``value >= threshold`` when maximizing, ``value <= threshold`` when minimizing.
    * Champion: the improvement (``value - champion`` when maximizing, ``champion - value`` when
      minimizing) must be positive and at least ``min_improvement``.

    :param score: the candidate.
    :param threshold: the bar (``None``: no bar).
    :param champion: the current champion, if any.
    :param min_improvement: the least improvement over the champion, in metric units (>= 0).
    :raises AutopilotError: when the champion was measured with another metric.
    """

    def verdict(promote: bool, reason: str) -> PromotionDecision:
        return PromotionDecision(
            promote=promote,
            reason=reason,
            candidate_name=score.candidate_name,
            metric_name=score.metric_name,
            value=score.value,
            direction=score.direction,
            threshold=threshold,
            champion_arn=champion.model_package_arn if champion else None,
            champion_value=champion.value if champion else None,
            min_improvement=min_improvement,
        )

    sign = ">=" if score.direction == "Maximize" else "<="
    if threshold is not None and improvement(score.value, threshold, score.direction) < 0:
        return verdict(
            False,
            f"{score.metric_name} {score.value:.6g} misses the threshold ({sign} {threshold:.6g}, {score.direction})",
        )
    passed = (
        f"{score.metric_name} {score.value:.6g} meets the threshold ({sign} {threshold:.6g})"
        if threshold is not None
        else f"{score.metric_name} {score.value:.6g} (no threshold)"
    )
    if champion is None:
        return verdict(True, f"{passed}; no approved champion")
    if champion.metric_name != score.metric_name:
        raise AutopilotError(
            f"Cannot compare with the champion {champion.model_package_arn}: it was measured with "
            f"{champion.metric_name}, the candidate with {score.metric_name}"
        )
    gain = improvement(score.value, champion.value, score.direction)
    versus = (
        f"champion {champion.candidate_name or champion.model_package_arn} has {champion.value:.6g}; "
        f"improvement {gain:+.6g} (needs > 0 and >= {min_improvement:.6g})"
    )
    if gain > 0 and gain >= min_improvement:
        return verdict(True, f"{passed}; {versus}")
    return verdict(False, f"{passed}, but {versus}")


@dataclass(frozen=True)
class DeployPlan:
    """
    What a deploy will create, derived from its inputs before any AWS call.

    :param endpoint_name: the endpoint.
    :param model_name: the model (derived from the candidate unless given).
    :param config_name: the endpoint config (hash of model, instance type and count).
    :param containers: the inference containers, with the requested response keys.
    :param instance_count: endpoint instances (``None`` for a serverless endpoint).
    :param tags: tags of the model, config and a new endpoint.
    :param instance_type: endpoint instance type (``None`` for a serverless endpoint).
    """

    endpoint_name: str
    model_name: str
    config_name: str
    containers: list[dict[str, Any]]
    instance_count: int | None
    tags: list[dict[str, Any]]
    instance_type: str | None


def registration_token(job_name: str, candidate_name: str, group_name: str) -> str:
    """
    CreateModelPackage's ``ClientToken`` for one candidate of one job in one group: 32 hex digits
    of a SHA-256. Every try, and every task, registering the same candidate in the same group sends
    the same token, so SageMaker creates one version and answers the others with its ARN.

    :param job_name: the AutoMLJobName.
    :param candidate_name: the candidate.
    :param group_name: the Model Package Group.
    """
    return short_digest("autopilot-register", job_name, candidate_name, group_name, length=32)


def registered_for(package: Mapping[str, Any], candidate_name: str) -> bool:
    """
    Whether a model package version was registered for the candidate ``candidate_name`` (its
    ``autopilot:candidate-name`` metadata). The gate never takes such a version as the champion
    the candidate must beat: after a re-run of a promotion that got as far as registering, the
    candidate would otherwise be its own champion (improvement +0) and be rejected.

    :param package: a DescribeModelPackage response.
    :param candidate_name: the candidate's name.
    """
    meta = package.get("CustomerMetadataProperties") or {}
    return isinstance(meta, Mapping) and meta.get(META_CANDIDATE_NAME) == candidate_name


def candidate_metadata(job_name: str, score: CandidateScore) -> dict[str, str]:
    """The CustomerMetadataProperties stored with a registered version."""
    return {
        META_JOB_NAME: job_name,
        META_CANDIDATE_NAME: score.candidate_name,
        META_OBJECTIVE_METRIC: score.metric_name,
        META_OBJECTIVE_VALUE: repr(score.value),
        META_OBJECTIVE_TYPE: score.direction,
    }


# --- names ---------------------------------------------------------------------------------------
def short_digest(*parts: Any, length: int = 8) -> str:
    """A stable hex digest of ``parts`` (JSON-encoded, keys sorted)."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def safe_resource_name(base: str, *hash_parts: Any, max_length: int = RESOURCE_NAME_MAX) -> str:
    """
    A valid SageMaker model / endpoint-config name: ``base`` slugged and cut, then ``-<8 hex>`` of
    ``hash_parts``, at most ``max_length`` characters. The same inputs always give the same name.

    :param base: readable start (a candidate or endpoint name).
    :param hash_parts: what makes the resource distinct (containers, instance type ...).
    """
    digest = short_digest(base, *hash_parts)
    slug = re.sub(r"-+", "-", re.sub(r"[^a-zA-Z0-9-]", "-", base)).strip("-")
    slug = slug[: max_length - len(digest) - 1].rstrip("-")
    return f"{slug}-{digest}" if slug else f"m-{digest}"


def validate_resource_name(name: Any, field: str) -> str:
    """
    Check an endpoint / model / group name against SageMaker's rule (before any AWS call).

    :raises PromotionInputError: naming ``field`` and the rule.
    """
    refuse(RESOURCE_NAME.at(field).errors(name))
    return str(name)


# --- requests ------------------------------------------------------------------------------------
def request_errors(
    spec: RequestSpec,
    built: tuple[dict[str, Any], list[str]],
    *,
    derived: frozenset[str] = frozenset(),
) -> list[str]:
    """
    Every problem of a request an operator built from its parameters, each naming the request
    field, the rule and the operator parameter.

    :param spec: the request's table.
    :param built: what ``spec``'s builder returned: the request and the problems found building it.
    :param derived: table paths the operator fills in itself later (names derived from the
        candidate or the try chain, valid by construction): not reported when still missing.
    """
    request, errors = built
    problems = [p for p in spec.problems(request) if not (p.value is None and generic(p.path) in derived)]
    return [*errors, *spec.operator_messages(problems)]


def refuse(errors: Sequence[str]) -> None:
    """
    Raise one :class:`PromotionInputError` listing every problem (each once), when there are any.

    :param errors: messages naming the field and the rule.
    """
    unique = tuple(dict.fromkeys(errors))
    if not unique:
        return
    lines = "".join(f"\n  - {e}" for e in unique)
    error = PromotionInputError(unique[0] if len(unique) == 1 else f"{len(unique)} problems:{lines}")
    error.errors = unique
    raise error

"""Guardrailed endpoint rollouts: the ``rollout`` shorthand, SageMaker's documented DeploymentConfig
limits, and the one function that says how a deployment ended (promoted, rolled back or failed)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from airflow_autopilot.exceptions import AutopilotJobFailed

#: The ``rollout`` grammar, as the docs and the error messages show it.
ROLLOUT_GRAMMAR = (
    "all-at-once[:BAKE] | canary:SIZE:BAKE | linear:SIZE:BAKE | rolling:SIZE:BAKE, then optional "
    ":termination-wait=DURATION (blue/green only), :max-time=DURATION and :rollback-batch=SIZE "
    "(rolling only); SIZE is N% (CAPACITY_PERCENT) or N (INSTANCE_COUNT); BAKE and DURATION are "
    "N, Ns, Nm or Nh (seconds, minutes, hours)"
)
#: Shorthand name -> SageMaker's TrafficRoutingConfiguration Type (``rolling`` is the rolling policy).
ROUTING_TYPES = {"all-at-once": "ALL_AT_ONCE", "canary": "CANARY", "linear": "LINEAR"}
ROLLOUT_KINDS = (*ROUTING_TYPES, "rolling")
_OPTIONS = {
    "termination-wait": "TerminationWaitInSeconds",
    "max-time": "MaximumExecutionTimeoutInSeconds",
    "rollback-batch": "RollbackMaximumBatchSize",
}
_DURATION = re.compile(r"(\d+)\s*([smh]?)")
_SIZE = re.compile(r"(\d+)\s*(%?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}

#: SageMaker's documented share of the variant's instances a batch may take (percent, inclusive):
#: the canary at most 50 %, a linear step 10 to 50 %, a rolling batch 5 to 50 %.
CAPACITY_LIMITS: dict[str, tuple[int, int]] = {
    "CanarySize": (1, 50),
    "LinearStepSize": (10, 50),
    "MaximumBatchSize": (5, 50),
}
#: SageMaker's documented cap on the alarms one deployment watches.
MAX_ALARMS = 10

B_G = "BlueGreenUpdatePolicy"
ROLLING = "RollingUpdatePolicy"
ROUTING = "TrafficRoutingConfiguration"
AUTO_ROLLBACK = "AutoRollbackConfiguration"


def _seconds(text: str) -> int | None:
    match = _DURATION.fullmatch(text.strip().lower())
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)] if match else None


def _size(text: str) -> dict[str, Any] | None:
    match = _SIZE.fullmatch(text.strip())
    if not match:
        return None
    kind = "CAPACITY_PERCENT" if match.group(2) else "INSTANCE_COUNT"
    return {"Type": kind, "Value": int(match.group(1))}


def parse_rollout(value: Any, parameter: str = "rollout") -> tuple[dict[str, Any] | None, list[str]]:
    """
    The DeploymentConfig a ``rollout`` shorthand stands for (see :data:`ROLLOUT_GRAMMAR`).

    ``"canary:10%:600s"`` routes 10 % of the capacity to the new fleet, bakes 600 s watching the
    alarms, then shifts the rest; ``"linear:20%:5m"`` shifts 20 % per step with 5 minutes between
    steps; ``"all-at-once:10m"`` shifts everything, then bakes 10 minutes; ``"rolling:25%:300s"``
    replaces 25 % of the instances per batch. Limits (bake 0 to 3600 s, sizes, ...) are checked with
    the request, by the UpdateEndpoint table, as for a ``deployment_config`` given verbatim.

    :param value: the parameter's (rendered) value; ``None`` or ``""`` means no rollout.
    :param parameter: the parameter's name, for messages.
    :return: the DeploymentConfig (without alarms) or ``None``, and the problems found.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None, []
    if not isinstance(value, str):
        return None, [f"{parameter}: {value!r} must be a string ({ROLLOUT_GRAMMAR})"]
    parts = [p.strip() for p in value.strip().split(":")]
    kind = parts[0].lower()
    if kind not in ROLLOUT_KINDS:
        return None, [
            f"{parameter}: {value!r}: unknown rollout type {parts[0]!r}; expected one of "
            f"{', '.join(ROLLOUT_KINDS)} ({ROLLOUT_GRAMMAR})"
        ]
    positional = [p for p in parts[1:] if "=" not in p]
    named = [p for p in parts[1:] if "=" in p]
    wanted = ("BAKE",) if kind == "all-at-once" else ("SIZE", "BAKE")
    errors: list[str] = []
    if len(positional) > len(wanted) or (kind != "all-at-once" and len(positional) < len(wanted)):
        form = "all-at-once[:BAKE]" if kind == "all-at-once" else f"{kind}:SIZE:BAKE"
        return None, [f"{parameter}: {value!r}: {kind} takes {form} ({ROLLOUT_GRAMMAR})"]
    size: dict[str, Any] | None = None
    if kind != "all-at-once":
        size = _size(positional[0])
        if size is None:
            errors.append(f"{parameter}: {value!r}: size {positional[0]!r} must be N% or a whole N instances")
    bake_text = positional[-1] if len(positional) == len(wanted) else "0"
    bake = _seconds(bake_text)
    if bake is None:
        errors.append(
            f"{parameter}: {value!r}: bake {bake_text!r} must be a duration such as 600s, 10m or 1h"
        )
    options: dict[str, Any] = {}
    for item in named:
        name, _, text = (s.strip() for s in item.partition("="))
        allowed = ("rollback-batch", "max-time") if kind == "rolling" else ("termination-wait", "max-time")
        key = _OPTIONS.get(name.lower()) if name.lower() in allowed else None
        if key is None:
            errors.append(f"{parameter}: {value!r}: option {name!r} is not one of {list(allowed)} for {kind}")
            continue
        parsed = _size(text) if key == "RollbackMaximumBatchSize" else _seconds(text)
        if parsed is None:
            what = (
                "a size such as 25% or 2" if key == "RollbackMaximumBatchSize" else "a duration such as 300s"
            )
            errors.append(f"{parameter}: {value!r}: {name} {text!r} must be {what}")
            continue
        options[key] = parsed
    if errors:
        return None, errors
    if kind == "rolling":
        return {ROLLING: {"MaximumBatchSize": size, "WaitIntervalInSeconds": bake, **options}}, []
    routing: dict[str, Any] = {"Type": ROUTING_TYPES[kind], "WaitIntervalInSeconds": bake}
    if kind == "canary":
        routing["CanarySize"] = size
    elif kind == "linear":
        routing["LinearStepSize"] = size
    return {B_G: {ROUTING: routing, **options}}, []


def alarm_names(value: Any, parameter: str = "auto_rollback_alarms") -> tuple[list[str], list[str]]:
    """
    The CloudWatch alarm names of ``auto_rollback_alarms``: a list of names, or one name (a
    comma-separated string is split, as a template may render a list).

    :param value: the parameter's (rendered) value.
    :param parameter: the parameter's name, for messages.
    :return: the names (duplicates removed, in order) and the problems found.
    """
    if value is None or value == "" or value == []:
        return [], []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            try:
                value = json.loads(text.replace("'", '"'))
            except ValueError:
                return [], [f"{parameter}: {value!r} must be an alarm name or a list of alarm names"]
        else:
            value = [part for part in (p.strip() for p in text.split(",")) if part]
    if not isinstance(value, (list, tuple)) or not all(isinstance(n, str) and n.strip() for n in value):
        return [], [f"{parameter}: {value!r} must be an alarm name or a list of non-empty alarm names"]
    names = list(dict.fromkeys(n.strip() for n in value))
    if len(names) > MAX_ALARMS:
        return names, [f"{parameter}: {len(names)} alarms given; SageMaker watches at most {MAX_ALARMS}"]
    return names, []


def deployment_config(
    params: Mapping[str, Any],
) -> tuple[dict[str, Any] | None, list[str]]:
    """
    The UpdateEndpoint ``DeploymentConfig`` from ``deployment_config`` (SageMaker's dict, verbatim)
    or ``rollout`` (the shorthand), plus ``auto_rollback_alarms``.

    :param params: the operator's parameters.
    :return: the DeploymentConfig (``None`` when none was asked for) and the problems found.
    """
    given, shorthand = params.get("deployment_config"), params.get("rollout")
    errors: list[str] = []
    if given is not None and shorthand not in (None, ""):
        errors.append("rollout: give either rollout or deployment_config, not both")
    config: dict[str, Any] | None
    if given is not None:
        if isinstance(given, str):
            from airflow_autopilot.core.promotion import PromotionInputError, parse_mapping

            try:
                given = parse_mapping(given, "deployment_config")
            except PromotionInputError as err:
                return None, [str(err)]
        if not isinstance(given, Mapping):
            return None, [f"deployment_config: {given!r} must be a DeploymentConfig dict"]
        config = dict(given)
    else:
        config, errors_ = parse_rollout(shorthand)
        errors += errors_
    names, problems = alarm_names(params.get("auto_rollback_alarms"))
    errors += problems
    if names:
        if config is None:
            errors.append(
                "auto_rollback_alarms: needs a rollout or deployment_config: SageMaker watches the "
                "alarms during a rollout's bake periods"
            )
        elif AUTO_ROLLBACK in config:
            errors.append(
                "auto_rollback_alarms: deployment_config has an AutoRollbackConfiguration already; "
                "give the alarms in one place"
            )
        else:
            config[AUTO_ROLLBACK] = {"Alarms": [{"AlarmName": n} for n in names]}
    return config, errors


def configured_alarms(config: Mapping[str, Any] | None) -> list[str]:
    """The alarm names a DeploymentConfig watches (``AutoRollbackConfiguration.Alarms``).

    :param config: a DeploymentConfig (or ``LastDeploymentConfig``), or ``None``.
    """
    rollback = config.get(AUTO_ROLLBACK) if isinstance(config, Mapping) else None
    alarms = rollback.get("Alarms") if isinstance(rollback, Mapping) else None
    if not isinstance(alarms, list):
        return []
    return [a["AlarmName"] for a in alarms if isinstance(a, Mapping) and isinstance(a.get("AlarmName"), str)]


def _capacity_sizes(config: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
    """(request path, size name, CapacitySize) of each batch size a DeploymentConfig gives."""
    found = []
    blue_green = config.get(B_G)
    routing = blue_green.get(ROUTING) if isinstance(blue_green, Mapping) else None
    if isinstance(routing, Mapping):
        for name in ("CanarySize", "LinearStepSize"):
            if routing.get(name) is not None:
                found.append((f"DeploymentConfig.{B_G}.{ROUTING}.{name}", name, routing[name]))
    rolling = config.get(ROLLING)
    if isinstance(rolling, Mapping) and rolling.get("MaximumBatchSize") is not None:
        found.append(
            (f"DeploymentConfig.{ROLLING}.MaximumBatchSize", "MaximumBatchSize", rolling["MaximumBatchSize"])
        )
    return found


def capacity_problems(
    config: Mapping[str, Any] | None, instance_count: int | None = None
) -> list[tuple[str, str]]:
    """
    SageMaker's documented limits on batch sizes, as (path, rule): a canary at most 50 % of the
    variant's instances, a linear step 10 to 50 %, a rolling batch 5 to 50 %. Without
    ``instance_count`` the CAPACITY_PERCENT sizes are checked (the request's own rule); with it the
    INSTANCE_COUNT sizes, against it (a rule across the config and the update).

    :param config: the DeploymentConfig.
    :param instance_count: the new variant's instance count.
    """
    if not isinstance(config, Mapping):
        return []
    found = []
    for path, name, size in _capacity_sizes(config):
        if not isinstance(size, Mapping):
            continue
        kind, value = size.get("Type"), size.get("Value")
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        low, high = CAPACITY_LIMITS[name]
        if kind == "CAPACITY_PERCENT" and instance_count is None and not low <= value <= high:
            found.append(
                (f"{path}.Value", f"{value}% must be {low} to {high} percent of the new fleet's capacity")
            )
        elif kind == "INSTANCE_COUNT" and isinstance(instance_count, int) and instance_count > 0:
            share = 100 * value / instance_count
            if not low <= share <= high:
                found.append(
                    (
                        f"{path}.Value",
                        f"{value} of {instance_count} instances ({share:g}%) must be {low} to {high} "
                        "percent of the new fleet's capacity",
                    )
                )
    return found


def instance_count_errors(config: Mapping[str, Any] | None, instance_count: Any) -> list[str]:
    """The INSTANCE_COUNT batch sizes of ``config`` outside SageMaker's share of ``instance_count``,
    as messages naming the parameters.

    :param config: the DeploymentConfig.
    :param instance_count: the new variant's InitialInstanceCount (``None`` for serverless: skipped).
    """
    if not isinstance(instance_count, int) or isinstance(instance_count, bool):
        return []
    return [
        f"{path}: {text} (operator parameter: deployment_config / rollout, initial_instance_count)"
        for path, text in capacity_problems(config, instance_count)
    ]


def routing_problems(config: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The rules across a DeploymentConfig's members, as (path, rule): one policy, the size the
    routing type needs and no other.

    :param config: the DeploymentConfig.
    """
    if not isinstance(config, Mapping):
        return []
    found = []
    blue_green, rolling = config.get(B_G), config.get(ROLLING)
    if blue_green is not None and rolling is not None:
        found.append(
            (
                "DeploymentConfig",
                f"give either {B_G} (blue/green) or {ROLLING} (rolling), not both",
            )
        )
    routing = blue_green.get(ROUTING) if isinstance(blue_green, Mapping) else None
    if isinstance(routing, Mapping):
        kind = routing.get("Type")
        where = f"DeploymentConfig.{B_G}.{ROUTING}"
        needs = (
            {"CANARY": "CanarySize", "LINEAR": "LinearStepSize"}.get(kind) if isinstance(kind, str) else None
        )
        if needs and routing.get(needs) is None:
            found.append((f"{where}.{needs}", f"required when Type is {kind}"))
        for name in ("CanarySize", "LinearStepSize"):
            if routing.get(name) is not None and name != needs and isinstance(kind, str):
                found.append(
                    (
                        f"{where}.{name}",
                        f"only with Type {'CANARY' if name == 'CanarySize' else 'LINEAR'}, not {kind}",
                    )
                )
    return found


# --- the outcome ------------------------------------------------------------------------------------
Outcome = Literal["promoted", "rolled_back", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("promoted", "rolled_back", "failed")
#: Endpoint statuses that end a deployment as failed (UpdateRollbackFailed: SageMaker could not
#: even return to the previous config).
FAILED_STATUSES = frozenset({"Failed", "OutOfService", "Deleting", "UpdateRollbackFailed"})
ROLLING_BACK = "RollingBack"


def rollout_outcome(
    endpoint: Mapping[str, Any],
    new_config: str | None,
    *,
    rolled_back_seen: bool = False,
) -> Outcome | None:
    """
    How a deployment of ``new_config`` ended, from a DescribeEndpoint answer; ``None`` while it runs.

    * ``promoted``: InService on ``new_config`` (it serves 100 % of the traffic); with
      ``new_config=None`` (a deployment someone else made), InService on any config.
    * ``rolled_back``: InService on another config after SageMaker rolled the update back: a
      FailureReason is set, or the wait saw the endpoint ``RollingBack`` (``rolled_back_seen``).
      Never a success: the new model does not serve.
    * ``failed``: Failed, OutOfService, Deleting or UpdateRollbackFailed.

    InService on the previous config with neither sign is an update still to start: ``None``.

    :param endpoint: the DescribeEndpoint response.
    :param new_config: the EndpointConfigName the deployment puts in service.
    :param rolled_back_seen: an earlier poll of this wait saw ``RollingBack``.
    """
    status = endpoint.get("EndpointStatus")
    if status in FAILED_STATUSES:
        return "failed"
    if status != "InService":
        return None
    if new_config is None or endpoint.get("EndpointConfigName") == new_config:
        return "promoted"
    if endpoint.get("FailureReason") or rolled_back_seen:
        return "rolled_back"
    return None


def traffic_shift(endpoint: Mapping[str, Any]) -> str | None:
    """
    One line on the deployment in flight (``PendingDeploymentSummary``): each variant's status,
    current and desired weight and instances, e.g. ``AllTraffic Baking weight 0.1->1 instances
    1->2``; ``None`` when no deployment is pending.

    :param endpoint: the DescribeEndpoint response.
    """
    pending = endpoint.get("PendingDeploymentSummary")
    if not isinstance(pending, Mapping):
        return None
    parts = []
    for variant in pending.get("ProductionVariants") or []:
        if not isinstance(variant, Mapping):
            continue
        statuses = [
            str(s.get("Status"))
            for s in variant.get("VariantStatus") or []
            if isinstance(s, Mapping) and s.get("Status")
        ]
        text = f"{variant.get('VariantName', '?')} {'/'.join(statuses) or 'pending'}"
        if variant.get("CurrentWeight") is not None or variant.get("DesiredWeight") is not None:
            text += f" weight {_num(variant.get('CurrentWeight'))}->{_num(variant.get('DesiredWeight'))}"
        if variant.get("CurrentInstanceCount") is not None or variant.get("DesiredInstanceCount") is not None:
            text += f" instances {_num(variant.get('CurrentInstanceCount'))}->{_num(variant.get('DesiredInstanceCount'))}"
        parts.append(text)
    target = pending.get("EndpointConfigName")
    return f"to {target}: {'; '.join(parts) or 'no variant yet'}"


def _num(value: Any) -> str:
    return f"{value:g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "?"


def phase_of(endpoint: Mapping[str, Any]) -> str:
    """The phase a DescribeEndpoint answer shows: the status, and the traffic shift in flight.

    :param endpoint: the DescribeEndpoint response.
    """
    status = str(endpoint.get("EndpointStatus"))
    shift = traffic_shift(endpoint)
    return f"{status} ({shift})" if shift else status


def alarms_in(reason: str | None, watched: Sequence[str]) -> list[str]:
    """The watched alarms a FailureReason names (all watched ones when it names none of them).

    :param reason: SageMaker's FailureReason.
    :param watched: the alarm names the deployment watched.
    """
    named = [a for a in watched if reason and a in reason]
    return named or list(watched)


class AutopilotRolledBack(AutopilotJobFailed):
    """
    SageMaker rolled a deployment back (an alarm fired, or the new fleet failed): the endpoint serves
    its previous config. Never a success; retrying cannot help, so no retry is burned.

    :param message: names the alarm(s) and the phase.
    :param record: the rollout record (:func:`rollout_record`), also pushed to XCom.
    """

    def __init__(self, message: str, record: Mapping[str, Any]) -> None:
        super().__init__(message)
        self.record = dict(record)


def rollout_record(
    *,
    endpoint_name: str,
    outcome: Outcome | None,
    previous_config: str | None,
    new_config: str | None,
    phases: Sequence[str],
    endpoint: Mapping[str, Any] | None,
    watched_alarms: Sequence[str] = (),
) -> dict[str, Any]:
    """
    What XCom keeps about a deployment (JSON-safe): ``endpoint_name``, ``outcome`` (``promoted``,
    ``rolled_back``, ``failed``, or ``None`` when the wait ended without one: a timeout),
    ``previous_config``, ``new_config``, ``serving_config`` (the config InService now),
    ``phases`` (each phase seen, in order), ``alarms`` (the alarms a rollback names),
    ``rolled_back_during`` (the phase a rollback interrupted) and ``failure_reason``.

    :param endpoint_name: the endpoint.
    :param outcome: how it ended.
    :param previous_config: the config the endpoint served before the update (``None``: new endpoint).
    :param new_config: the config deployed.
    :param phases: the phases seen.
    :param endpoint: the last DescribeEndpoint.
    :param watched_alarms: the alarms the deployment watched.
    """
    endpoint = endpoint or {}
    reason = endpoint.get("FailureReason")
    watched = list(watched_alarms) or configured_alarms(endpoint.get("LastDeploymentConfig"))
    return {
        "endpoint_name": endpoint_name,
        "outcome": outcome,
        "previous_config": previous_config,
        "new_config": new_config,
        "serving_config": endpoint.get("EndpointConfigName"),
        "phases": list(phases),
        "alarms": alarms_in(reason, watched) if outcome == "rolled_back" else [],
        "rolled_back_during": last_phase(phases) if outcome == "rolled_back" else None,
        "failure_reason": reason if isinstance(reason, str) else None,
    }


def last_phase(phases: Sequence[str]) -> str | None:
    """The last phase of a deployment before it rolled back or ended (the one an alarm interrupted).

    :param phases: the phases seen, in order (:func:`phase_of`).
    """
    shifts = [p for p in phases if not p.startswith((ROLLING_BACK, "InService"))]
    return shifts[-1] if shifts else None

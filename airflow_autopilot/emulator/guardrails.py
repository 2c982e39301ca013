"""Guardrailed endpoint updates (UpdateEndpoint's DeploymentConfig): the phases of a blue/green or
rolling deployment on the emulator clock, the traffic each fleet takes, and automatic rollback
when a watched CloudWatch alarm (moto's CloudWatch) is in ALARM during a baking period."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.sagemaker.exceptions import ValidationError

from airflow_autopilot.emulator import controls, settings

#: The phases a deployment goes through, by name (what :func:`controls.fire_alarm` takes):
#: provisioning the new fleet; the canary, each linear step, the final bake (all at once too) or
#: each rolling batch, each shifting traffic then baking; the wait before the old fleet goes.
PHASES = ("creating", "canary", "linear", "baking", "rolling", "termination-wait")
#: SageMaker's documented share of the new fleet a step may take, in percent (inclusive): the
#: canary at most 50 %, a linear step 10 to 50 %, a rolling batch 5 to 50 %.
CAPACITY_LIMITS = {"CanarySize": (1, 50), "LinearStepSize": (10, 50), "MaximumBatchSize": (5, 50)}
ROUTING_TYPES = ("ALL_AT_ONCE", "CANARY", "LINEAR")
CAPACITY_TYPES = ("INSTANCE_COUNT", "CAPACITY_PERCENT")
#: Attribute of moto's SageMaker backend holding the updates in flight (moto's reset drops it).
_UPDATES_ATTRIBUTE = "autopilot_endpoint_updates"
# A threaded server refreshes updates from concurrent requests: one at a time.
_LOCK = threading.RLock()
_BG, _ROLLING, _ROUTING = "BlueGreenUpdatePolicy", "RollingUpdatePolicy", "TrafficRoutingConfiguration"


@dataclass(frozen=True)
class Phase:
    """One phase of a deployment: its parts (variant status, seconds), in order; the new fleet's
    share of the traffic from its ``ActivatingTraffic`` part on; whether alarms are watched while it
    is ``Baking``."""

    name: str
    label: str
    parts: tuple[tuple[str, float], ...]
    share: float
    watched: bool = False
    #: New-fleet instances in service from the phase's first part on (``None``: the whole fleet).
    instances: int | None = None

    @property
    def duration(self) -> float:
        return sum(seconds for _, seconds in self.parts)

    def offset_of(self, status: str) -> float | None:
        """Seconds from the phase's start to its first part in ``status``, if it has one."""
        offset = 0.0
        for part, seconds in self.parts:
            if part == status:
                return offset
            offset += seconds
        return None


def _fail(message: str) -> ValidationError:
    # The wording of the request tables' rules (core/fields/endpoint.py), which answer first where
    # they apply: the rules here also need the new config's instances or the account's alarms.
    return ValidationError(message=f"1 validation error detected: {message}")


def _rule(path: str, rule: str) -> ValidationError:
    """A rule broken at ``path`` (``DeploymentConfig.RollingUpdatePolicy``), in SageMaker's member names."""
    return _fail(f"{_wire(path)}: {rule}.")


def _wire(path: str) -> str:
    """SageMaker's name of a member in its messages: ``DeploymentConfig.BlueGreenUpdatePolicy`` ->
    ``deploymentConfig.blueGreenUpdatePolicy``."""
    return ".".join(part[:1].lower() + part[1:] for part in path.split("."))


def _capacity(config: Mapping[str, Any]) -> int | None:
    """The new fleet's instances (``None`` for a serverless config, which has none)."""
    counts = [v.get("InitialInstanceCount") for v in config.get("ProductionVariants") or []]
    numbers = [c for c in counts if isinstance(c, int)]
    return sum(numbers) if numbers else None


def _share(size: Any, where: str, name: str, instances: int | None) -> float:
    """A CapacitySize as a share of the new fleet, within SageMaker's limits for ``name``."""
    if not isinstance(size, Mapping):
        raise _rule(where, "required, a CapacitySize {Type, Value}")
    kind, value = size.get("Type"), size.get("Value")
    if kind not in CAPACITY_TYPES:
        raise _fail(
            f"Value '{kind}' at '{_wire(where)}.type' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{', '.join(CAPACITY_TYPES)}]"
        )
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _rule(f"{where}.Value", f"{value!r} must be a whole number of at least 1")
    low, high = CAPACITY_LIMITS[name]
    if kind == "CAPACITY_PERCENT":
        percent = float(value)
    elif instances:
        percent = 100.0 * value / instances
    else:
        raise _rule(where, "a serverless endpoint has no instances; give the size as CAPACITY_PERCENT")
    if not low <= percent <= high:
        shown = (
            f"{value}%" if kind == "CAPACITY_PERCENT" else f"{value} of {instances} instances ({percent:g}%)"
        )
        raise _rule(f"{where}.Value", f"{shown} must be {low} to {high} percent of the new fleet's capacity")
    return percent / 100.0


def plan(
    deployment_config: Mapping[str, Any] | None, new_config: Mapping[str, Any], stage: float
) -> list[Phase]:
    """The phases of an update onto ``new_config`` (its ``ProductionVariants``).

    Without a policy the new fleet is created and takes all traffic at once. Every shift of traffic
    lasts a stage (``ActivatingTraffic``), then the wait interval bakes (``Baking``).

    :param deployment_config: UpdateEndpoint's ``DeploymentConfig``, if any.
    :param new_config: the endpoint config being deployed (DescribeEndpointConfig's shape).
    :param stage: seconds of provisioning and of each shift (the emulator's stage).
    :raises ValidationError: for a config SageMaker refuses: both policies, an unknown routing type,
        a missing or out-of-limits size.
    """
    config = deployment_config or {}
    blue_green, rolling = config.get(_BG), config.get(_ROLLING)
    if blue_green is not None and rolling is not None:
        raise _rule("DeploymentConfig", f"give either {_BG} (blue/green) or {_ROLLING} (rolling), not both")
    instances = _capacity(new_config)
    creating = Phase("creating", "creation of the new fleet", (("Creating", stage),), 0.0, instances=0)
    if rolling is not None:
        return _rolling(rolling, instances, stage)
    if blue_green is None:
        return [creating]
    where = f"DeploymentConfig.{_BG}.{_ROUTING}"
    routing = blue_green.get(_ROUTING) or {}
    kind, wait = routing.get("Type"), float(routing.get("WaitIntervalInSeconds") or 0)
    if kind not in ROUTING_TYPES:
        raise _fail(
            f"Value '{kind}' at '{_wire(where)}.type' failed to satisfy constraint: Member must satisfy "
            f"enum value set: [{', '.join(ROUTING_TYPES)}]"
        )
    for name, wanted in (("CanarySize", "CANARY"), ("LinearStepSize", "LINEAR")):
        if kind == wanted and routing.get(name) is None:
            raise _rule(f"{where}.{name}", f"required when Type is {kind}")
        if kind != wanted and routing.get(name) is not None:
            raise _rule(f"{where}.{name}", f"only with Type {wanted}, not {kind}")

    def step(name: str, label: str, share: float) -> Phase:
        return Phase(name, label, (("ActivatingTraffic", stage), ("Baking", wait)), share, watched=True)

    phases = [creating]
    if kind == "CANARY":
        share = _share(routing["CanarySize"], f"{where}.CanarySize", "CanarySize", instances)
        phases += [step("canary", "canary baking period", share), step("baking", "final baking period", 1.0)]
    elif kind == "LINEAR":
        share = _share(routing["LinearStepSize"], f"{where}.LinearStepSize", "LinearStepSize", instances)
        steps = math.ceil(1 / share - 1e-9)
        phases += [
            step("linear", f"baking period of linear step {k} of {steps}", min(1.0, k * share))
            for k in range(1, steps + 1)
        ]
    else:
        phases.append(step("baking", "baking period", 1.0))
    termination = float(blue_green.get("TerminationWaitInSeconds") or 0)
    if termination:
        phases.append(Phase("termination-wait", "termination wait", (("Deleting", termination),), 1.0))
    return phases


def _rolling(policy: Mapping[str, Any], instances: int | None, stage: float) -> list[Phase]:
    where = f"DeploymentConfig.{_ROLLING}.MaximumBatchSize"
    share = _share(policy.get("MaximumBatchSize"), where, "MaximumBatchSize", instances)
    fleet = instances or 1
    batch = max(1, math.ceil(share * fleet - 1e-9))
    batches = math.ceil(fleet / batch)
    wait = float(policy.get("WaitIntervalInSeconds") or 0)
    return [
        Phase(
            "rolling",
            f"baking period of rolling batch {k} of {batches}",
            (("Creating", stage), ("ActivatingTraffic", stage), ("Baking", wait)),
            min(fleet, k * batch) / fleet,
            watched=True,
            instances=min(fleet, k * batch),
        )
        for k in range(1, batches + 1)
    ]


def alarm_names(deployment_config: Mapping[str, Any] | None) -> list[str]:
    """The alarms a DeploymentConfig watches."""
    alarms = ((deployment_config or {}).get("AutoRollbackConfiguration") or {}).get("Alarms") or []
    return [str(a.get("AlarmName")) for a in alarms if isinstance(a, Mapping)]


def _cloudwatch(backend: Any) -> Any:
    from moto.cloudwatch.models import cloudwatch_backends

    return cloudwatch_backends[backend.account_id][backend.region_name]


def check_alarms_exist(backend: Any, names: list[str]) -> None:
    """SageMaker refuses an update watching an alarm that does not exist (wording unverified).

    :param backend: moto's SageMaker backend (its account and region's CloudWatch is asked).
    :param names: the alarm names.
    :raises ValidationError: naming the missing alarms.
    """
    alarms = _cloudwatch(backend).alarms
    missing = [name for name in names if name not in alarms]
    if missing:
        raise _rule(
            "DeploymentConfig.AutoRollbackConfiguration.Alarms",
            f"the CloudWatch alarm(s) {missing} do not exist in account {backend.account_id}, region "
            f"{backend.region_name}",
        )


@dataclass
class Deployment:
    """An update in flight: the old and new endpoint configs, its phases and what has happened."""

    endpoint_name: str
    old_config: str
    new_config: str
    started: float
    stage: float
    phases: list[Phase]
    alarms: list[str] = field(default_factory=list)
    timeout: float | None = None
    #: How the update ends regardless of alarms (the endpoint config's update-outcome tag).
    outcome: str = controls.UPDATE_OUTCOME_SUCCESS
    #: Seconds the rollback takes.
    rollback_seconds: float = 0.0
    entered: int = 0
    checked: float = 0.0
    rollback_start: float | None = None
    failure_reason: str | None = None

    @property
    def end(self) -> float:
        return self.started + sum(p.duration for p in self.phases)

    def _starts(self) -> list[float]:
        starts, at = [], self.started
        for phase in self.phases:
            starts.append(at)
            at += phase.duration
        return starts

    def current(self, now: float) -> tuple[int, float]:
        """The index of the phase running at ``now`` and its start."""
        starts = self._starts()
        index = max((i for i, s in enumerate(starts) if s <= now), default=0)
        return index, starts[index]

    def share(self, now: float) -> float:
        """The new fleet's share of the traffic at ``now``."""
        if self.rollback_start is not None:
            return 0.0
        index, start = self.current(now)
        phase = self.phases[index]
        activating = phase.offset_of("ActivatingTraffic")
        if activating is not None and now - start >= activating:
            return phase.share
        return self.phases[index - 1].share if index > 0 else 0.0

    def advance(self, backend: Any, endpoint: Any, now: float) -> bool:
        """Bring the update up to ``now``: fire the alarm triggers of the phases entered, roll back
        when a watched alarm is in ALARM while a phase bakes, finish. Return whether it is over.

        :param backend: moto's SageMaker backend.
        :param endpoint: moto's endpoint.
        :param now: the emulator clock.
        """
        if self.rollback_start is None:
            self._walk(backend, now)
        if self.rollback_start is None and self.timeout is not None and now >= self.started + self.timeout:
            if self.end > self.started + self.timeout:
                self._roll_back(
                    self.started + self.timeout,
                    f"The update to endpoint config {self.new_config} did not finish within "
                    f"MaximumExecutionTimeoutInSeconds ({self.timeout:g} s) and was rolled back.",
                )
        if self.rollback_start is None and now >= self.end:
            if self.outcome == controls.UPDATE_OUTCOME_ROLLBACK:
                self._roll_back(self.end, controls.ROLLBACK_FAILURE_REASON)
            else:
                self._finish(backend, endpoint, self.new_config, self.end, None)
                return True
        if self.rollback_start is not None:
            done = self.rollback_start + self.rollback_seconds
            if now >= done:
                self._finish(backend, endpoint, self.old_config, done, self.failure_reason)
                return True
            endpoint.endpoint_status = "RollingBack"
            endpoint.pending_deployment_summary = None
            return False
        self.checked = now
        endpoint.endpoint_status = "Updating"
        endpoint.pending_deployment_summary = self.pending_summary(backend, now)
        return False

    def _walk(self, backend: Any, now: float) -> None:
        for index, (phase, start) in enumerate(zip(self.phases, self._starts(), strict=True)):
            if start > now:
                return
            if index >= self.entered:
                self.entered = index + 1
                for name in controls.take_alarm_triggers(self.endpoint_name, phase.name):
                    _set_alarm(backend, name, phase)
            baking = phase.offset_of("Baking")
            if not phase.watched or baking is None or not self.alarms:
                continue
            bake_start, end = start + baking, start + phase.duration
            if bake_start <= now and end > self.checked:
                firing = _firing(backend, self.alarms)
                if firing:
                    self._roll_back(
                        max(bake_start, min(self.checked, end)),
                        f"Automatic rollback of the update to endpoint config {self.new_config}: CloudWatch "
                        f"alarm(s) {', '.join(firing)} in ALARM during the {phase.label} ({phase.name} phase).",
                    )
                    return

    def _roll_back(self, at: float, reason: str) -> None:
        self.rollback_start, self.failure_reason = at, reason

    def _finish(self, backend: Any, endpoint: Any, config_name: str, at: float, reason: str | None) -> None:
        config = backend.endpoint_configs.get(config_name)
        endpoint.endpoint_config_name = config_name
        if config is not None:
            endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        endpoint.endpoint_status = "InService"
        endpoint.failure_reason = reason
        endpoint.last_modified_time = settings.to_datetime(at)
        endpoint.pending_deployment_summary = None

    def pending_summary(self, backend: Any, now: float) -> dict[str, Any]:
        """DescribeEndpoint's ``PendingDeploymentSummary`` at ``now``."""
        index, start = self.current(now)
        phase = self.phases[index]
        status, part_start = phase.parts[-1][0], start
        at = start
        for part, seconds in phase.parts:
            if now < at + seconds or seconds == 0:
                status, part_start = part, at
                break
            at += seconds
        share = self.share(now)
        config = backend.endpoint_configs.get(self.new_config)
        variants = []
        for variant in list(getattr(config, "production_variants", None) or []):
            weight = float(variant.get("InitialVariantWeight", 1.0) or 0.0)
            entry: dict[str, Any] = {
                "VariantName": variant["VariantName"],
                "CurrentWeight": round(weight * share, 6),
                "DesiredWeight": weight,
                "VariantStatus": [
                    {
                        "Status": status,
                        "StatusMessage": _status_message(status, phase, share, self.alarms),
                        "StartTime": settings.to_datetime(part_start),
                    }
                ],
            }
            count = variant.get("InitialInstanceCount")
            if isinstance(count, int):
                # While a batch is Creating, only the batches before it serve.
                shown = self.phases[index - 1] if status == "Creating" and index > 0 else phase
                active = 0 if status == "Creating" and index == 0 else shown.instances
                entry["CurrentInstanceCount"] = min(count, count if active is None else active)
                entry["DesiredInstanceCount"] = count
            if variant.get("InstanceType"):
                entry["InstanceType"] = variant["InstanceType"]
            if variant.get("ServerlessConfig"):
                entry["DesiredServerlessConfig"] = variant["ServerlessConfig"]
                if share > 0:
                    entry["CurrentServerlessConfig"] = variant["ServerlessConfig"]
            variants.append(entry)
        return {
            "EndpointConfigName": self.new_config,
            "ProductionVariants": variants,
            "StartTime": settings.to_datetime(self.started),
        }


def _status_message(status: str, phase: Phase, share: float, alarms: list[str]) -> str:
    if status == "Creating":
        return f"Creating the new fleet's instances ({phase.label})."
    if status == "ActivatingTraffic":
        return f"Shifting {share:.0%} of the traffic to the new fleet."
    if status == "Baking":
        watching = f" watching alarm(s) {', '.join(alarms)}" if alarms else ""
        return f"{phase.label[0].upper()}{phase.label[1:]}: {share:.0%} of the traffic on the new fleet{watching}."
    return "Waiting TerminationWaitInSeconds before terminating the old fleet."


def _firing(backend: Any, names: list[str]) -> list[str]:
    alarms = _cloudwatch(backend).alarms
    return [name for name in names if getattr(alarms.get(name), "state_value", None) == "ALARM"]


def _set_alarm(backend: Any, name: str, phase: Phase) -> None:
    """Put an alarm into ALARM (an outcome control); an alarm that does not exist is left alone."""
    cloudwatch = _cloudwatch(backend)
    if name in cloudwatch.alarms:
        cloudwatch.set_alarm_state(
            name,
            f"Set to ALARM by the autopilot emulator as the deployment entered its {phase.name} phase.",
            json.dumps({"phase": phase.name}),
            "ALARM",
        )


def updates(backend: Any) -> dict[str, Deployment]:
    """The updates in flight on a backend, by endpoint name."""
    found: dict[str, Deployment] | None = getattr(backend, _UPDATES_ATTRIBUTE, None)
    if found is None:
        found = {}
        setattr(backend, _UPDATES_ATTRIBUTE, found)
    return found


def start(
    backend: Any,
    endpoint: Any,
    config: Any,
    deployment_config: Mapping[str, Any] | None,
    outcome: str,
) -> Deployment:
    """Validate an update of ``endpoint`` onto ``config`` and start it (nothing changes when the
    request is refused).

    :param backend: moto's SageMaker backend.
    :param endpoint: moto's endpoint.
    :param config: moto's endpoint config to deploy.
    :param deployment_config: UpdateEndpoint's ``DeploymentConfig`` (or the retained one).
    :param outcome: how the update ends regardless of alarms (:data:`controls.UPDATE_OUTCOMES`).
    :raises ValidationError: for a DeploymentConfig SageMaker refuses or a missing alarm.
    """
    stage = settings.stage_seconds()
    phases = plan(deployment_config, {"ProductionVariants": config.production_variants}, stage)
    alarms = alarm_names(deployment_config)
    check_alarms_exist(backend, alarms)
    policy = (deployment_config or {}).get(_ROLLING) or (deployment_config or {}).get(_BG) or {}
    rollback_seconds = stage
    if (deployment_config or {}).get(_ROLLING):
        fleet = _capacity({"ProductionVariants": config.production_variants}) or 1
        size = policy.get("RollbackMaximumBatchSize") or policy.get("MaximumBatchSize")
        try:
            per = _share(
                size,
                f"DeploymentConfig.{_ROLLING}.RollbackMaximumBatchSize",
                "MaximumBatchSize",
                fleet,
            )
        except ValidationError:
            per = 1.0
        rollback_seconds = stage * math.ceil(1 / max(per, 1 / fleet) - 1e-9)
    timeout = policy.get("MaximumExecutionTimeoutInSeconds")
    now = settings.now()
    deployment = Deployment(
        endpoint_name=endpoint.endpoint_name,
        old_config=endpoint.endpoint_config_name,
        new_config=config.endpoint_config_name,
        started=now,
        stage=stage,
        phases=phases,
        alarms=alarms,
        timeout=float(timeout) if isinstance(timeout, (int, float)) else None,
        outcome=outcome,
        rollback_seconds=rollback_seconds,
        checked=now,
    )
    with _LOCK:
        updates(backend)[endpoint.endpoint_name] = deployment
        endpoint.endpoint_status = "Updating"
        endpoint.failure_reason = None
        endpoint.last_modified_time = settings.to_datetime(now)
        if deployment_config:
            endpoint.last_deployment_config = dict(deployment_config)
        deployment.advance(backend, endpoint, now)
    return deployment


def refresh(backend: Any) -> None:
    """Bring every update in flight on ``backend`` up to the emulator clock."""
    with _LOCK:
        in_flight = updates(backend)
        now = settings.now()
        for name, deployment in list(in_flight.items()):
            endpoint = backend.endpoints.get(name)
            if endpoint is None or deployment.advance(backend, endpoint, now):
                in_flight.pop(name, None)


def traffic(backend: Any, endpoint: Any) -> list[tuple[str, float]]:
    """The endpoint configs serving ``endpoint`` now, each with its share of the traffic.

    :param backend: moto's SageMaker backend.
    :param endpoint: moto's endpoint.
    """
    with _LOCK:
        deployment = updates(backend).get(endpoint.endpoint_name)
        if deployment is None:
            return [(str(endpoint.endpoint_config_name), 1.0)]
        share = deployment.share(settings.now())
    return [(deployment.old_config, 1.0 - share), (deployment.new_config, share)]

"""The wait until an endpoint deployment ends: promoted, rolled back or failed, each phase logged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_autopilot.core.rollout import (
    ROLLING_BACK,
    Outcome,
    alarms_in,
    configured_alarms,
    phase_of,
    rollout_outcome,
    rollout_record,
)
from airflow_autopilot.core.waits.machine import Finished, Verdict, WaitMachine
from airflow_autopilot.core.xcom import to_json_safe
from airflow_autopilot.exceptions import AutopilotError


class EndpointWait(WaitMachine[dict[str, Any]]):
    """
    The wait until an endpoint deployment of ``config_name`` ends, in one of the three outcomes of
    :func:`~airflow_autopilot.core.rollout.rollout_outcome`: promoted (success), rolled back or
    failed (failures, with SageMaker's reason; a rollback names the alarm(s) and the phase). Each
    new phase (status and traffic shift of ``PendingDeploymentSummary``) is logged and kept in
    :attr:`phases`. A timeout is an ordinary (retryable) error: the endpoint may still come up.

    :param endpoint_name: the endpoint.
    :param config_name: the EndpointConfigName it must serve; ``None`` accepts any.
    :param previous_config: the config the endpoint served before the update (``None``: new endpoint).
    :param alarms: the CloudWatch alarms the deployment watches (named when it rolls back).
    :param phases: the phases seen before (a deferred wait resumes with what the task saw).
    :param kwargs: :class:`WaitMachine` arguments.
    """

    timeout_error = AutopilotError

    def __init__(
        self,
        endpoint_name: str,
        config_name: str | None = None,
        *,
        previous_config: str | None = None,
        alarms: Sequence[str] = (),
        phases: Sequence[str] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(f"endpoint {endpoint_name!r}", **kwargs)
        self.endpoint_name = endpoint_name
        self.config_name = config_name
        self.previous_config = previous_config
        self.alarms = list(alarms)
        self.phases: list[str] = list(phases)

    @property
    def rolled_back_seen(self) -> bool:
        """A poll of this wait saw the endpoint RollingBack."""
        return any(phase.startswith(ROLLING_BACK) for phase in self.phases)

    def outcome(self, subject: dict[str, Any]) -> Outcome | None:
        """How the deployment ended, as ``subject`` shows it; ``None`` while it runs."""
        return rollout_outcome(subject, self.config_name, rolled_back_seen=self.rolled_back_seen)

    def verdict(self, subject: dict[str, Any]) -> Verdict:
        outcome = self.outcome(subject)
        if outcome is None:
            return "waiting"
        return "success" if outcome == "promoted" else "failure"

    def state(self, subject: dict[str, Any]) -> str:
        return str(subject.get("EndpointStatus"))

    def missing(self) -> AutopilotError:
        """The error a poll raises when DescribeEndpoint finds no such endpoint (ends the wait)."""
        return AutopilotError(f"Endpoint {self.endpoint_name!r} does not exist")

    def watched(self, subject: dict[str, Any]) -> list[str]:
        """The alarms the deployment watched: the ones given, else the endpoint's LastDeploymentConfig's."""
        return self.alarms or configured_alarms(subject.get("LastDeploymentConfig"))

    def failure_message(self, subject: dict[str, Any]) -> str:
        reason = subject.get("FailureReason") or "SageMaker gave no FailureReason"
        if self.outcome(subject) == "rolled_back":
            message = (
                f"Endpoint {self.endpoint_name!r}: the update to {self.config_name!r} was rolled back; it "
                f"is {subject.get('EndpointStatus')} on its previous config "
                f"{subject.get('EndpointConfigName')!r}: {reason}"
            )
            # From this describe alone, so every wait that sees it says the same; the phase it
            # interrupted is in the rollout record (:meth:`record`), which the deploy task reports.
            alarms = alarms_in(subject.get("FailureReason"), self.watched(subject))
            if alarms:
                message += f". Alarm(s): {', '.join(alarms)}"
            return message
        return f"Endpoint {self.endpoint_name!r} is {subject.get('EndpointStatus')}: {reason}"

    def observe(self, subject: dict[str, Any]) -> None:
        phase = phase_of(subject)
        if not self.phases or phase != self.phases[-1]:
            self.log.info("Endpoint %s is %s", self.endpoint_name, phase)
            self.phases.append(phase)

    def record(self, subject: dict[str, Any] | None) -> dict[str, Any]:
        """The rollout record (:func:`~airflow_autopilot.core.rollout.rollout_record`) as ``subject`` shows it."""
        subject = subject or {}
        return to_json_safe(
            rollout_record(
                endpoint_name=self.endpoint_name,
                outcome=self.outcome(subject) if subject else None,
                previous_config=self.previous_config,
                new_config=self.config_name,
                phases=self.phases,
                endpoint=subject,
                watched_alarms=self.watched(subject),
            )
        )

    def event(self, step: Finished[dict[str, Any]]) -> dict[str, Any]:
        """The trigger event for a finished wait (JSON-safe), with the rollout record."""
        return {
            "status": step.status,
            "endpoint_name": self.endpoint_name,
            "message": step.message,
            "endpoint": to_json_safe(dict(step.subject)) if step.subject is not None else None,
            "rollout": self.record(step.subject),
        }

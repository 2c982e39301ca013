"""The wait until an endpoint is InService on the expected config."""

from __future__ import annotations

from typing import Any

from airflow_autopilot.core.promotion import ENDPOINT_FAILED_STATUSES, endpoint_verdict
from airflow_autopilot.core.waits.machine import Finished, Verdict, WaitMachine
from airflow_autopilot.core.xcom import to_json_safe
from airflow_autopilot.exceptions import AutopilotError


class EndpointWait(WaitMachine[dict[str, Any]]):
    """
    The wait until an endpoint is InService (on ``config_name`` when given). Failed, OutOfService
    or Deleting, or InService on another config with a FailureReason (SageMaker rolled the update
    back), is a failure with the reason; see :func:`~airflow_autopilot.core.promotion.endpoint_verdict`.
    A timeout is an ordinary (retryable) error: the endpoint may still come up.

    :param endpoint_name: the endpoint.
    :param config_name: the EndpointConfigName it must serve; ``None`` accepts any.
    :param kwargs: :class:`WaitMachine` arguments.
    """

    timeout_error = AutopilotError

    def __init__(self, endpoint_name: str, config_name: str | None = None, **kwargs: Any) -> None:
        super().__init__(f"endpoint {endpoint_name!r}", **kwargs)
        self.endpoint_name = endpoint_name
        self.config_name = config_name
        self._seen: str | None = None

    def verdict(self, subject: dict[str, Any]) -> Verdict:
        return endpoint_verdict(subject, self.config_name)

    def state(self, subject: dict[str, Any]) -> str:
        return str(subject.get("EndpointStatus"))

    def missing(self) -> AutopilotError:
        """The error a poll raises when DescribeEndpoint finds no such endpoint (ends the wait)."""
        return AutopilotError(f"Endpoint {self.endpoint_name!r} does not exist")

    def failure_message(self, subject: dict[str, Any]) -> str:
        reason = subject.get("FailureReason") or "SageMaker gave no FailureReason"
        if subject.get("EndpointStatus") not in ENDPOINT_FAILED_STATUSES:
            return (
                f"Endpoint {self.endpoint_name!r}: the update to {self.config_name!r} was rolled back; it "
                f"is {subject.get('EndpointStatus')} on its previous config "
                f"{subject.get('EndpointConfigName')!r}: {reason}"
            )
        return f"Endpoint {self.endpoint_name!r} is {subject.get('EndpointStatus')}: {reason}"

    def observe(self, subject: dict[str, Any]) -> None:
        state = self.state(subject)
        if state != self._seen:
            self.log.info("Endpoint %s is %s", self.endpoint_name, state)
            self._seen = state

    def event(self, step: Finished[dict[str, Any]]) -> dict[str, Any]:
        """The trigger event for a finished wait (JSON-safe)."""
        return {
            "status": step.status,
            "endpoint_name": self.endpoint_name,
            "message": step.message,
            "endpoint": to_json_safe(dict(step.subject)) if step.subject is not None else None,
        }

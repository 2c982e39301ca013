"""The wait until a batch transform job ends."""

from __future__ import annotations

from typing import Any

from airflow_autopilot.core.waits.machine import Verdict, WaitMachine
from airflow_autopilot.exceptions import AutopilotError

#: TransformJobStatus values that end a wait.
TRANSFORM_DONE = "Completed"
TRANSFORM_FAILED = frozenset({"Failed", "Stopped", "Stopping"})


class TransformJobWait(WaitMachine[dict[str, Any]]):
    """
    The wait until a transform job ends: Completed is success; Failed, Stopping or Stopped is a
    failure carrying SageMaker's FailureReason.

    :param job_name: the TransformJobName.
    :param kwargs: :class:`~airflow_autopilot.core.waits.machine.WaitMachine` arguments.
    """

    timeout_error = AutopilotError

    def __init__(self, job_name: str, **kwargs: Any) -> None:
        super().__init__(f"transform job {job_name!r}", **kwargs)
        self.name = job_name
        self._seen: str | None = None

    def verdict(self, subject: dict[str, Any]) -> Verdict:
        status = subject.get("TransformJobStatus")
        if status == TRANSFORM_DONE:
            return "success"
        return "failure" if status in TRANSFORM_FAILED else "waiting"

    def state(self, subject: dict[str, Any]) -> str:
        return str(subject.get("TransformJobStatus"))

    def failure_message(self, subject: dict[str, Any]) -> str:
        reason = subject.get("FailureReason") or "SageMaker gave no FailureReason"
        return f"Transform job {self.name!r} is {subject.get('TransformJobStatus')}: {reason}"

    def missing(self) -> AutopilotError:
        """The error when DescribeTransformJob finds no such job (ends the wait)."""
        return AutopilotError(f"Transform job {self.name!r} does not exist")

    def observe(self, subject: dict[str, Any]) -> None:
        if self.state(subject) != self._seen:
            self._seen = self.state(subject)
            self.log.info("Transform job %s is %s", self.name, self._seen)

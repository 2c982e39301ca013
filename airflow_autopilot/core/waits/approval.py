"""The wait until a model package version is approved or rejected."""

from __future__ import annotations

from typing import Any

from airflow_autopilot.core.waits.machine import Verdict, WaitMachine
from airflow_autopilot.exceptions import AutopilotError


class ApprovalWait(WaitMachine[dict[str, Any]]):
    """
    The wait until a model package version's ``ModelApprovalStatus`` is decided: Approved is
    success, Rejected a failure; PendingManualApproval keeps waiting.

    :param model_package_arn: the version.
    :param kwargs: :class:`~airflow_autopilot.core.waits.machine.WaitMachine` arguments.
    """

    timeout_error = AutopilotError

    def __init__(self, model_package_arn: str, **kwargs: Any) -> None:
        super().__init__(f"model package {model_package_arn!r}", **kwargs)
        self.name = model_package_arn
        self._seen: str | None = None

    def verdict(self, subject: dict[str, Any]) -> Verdict:
        status = subject.get("ModelApprovalStatus")
        if status == "Approved":
            return "success"
        return "failure" if status == "Rejected" else "waiting"

    def state(self, subject: dict[str, Any]) -> str:
        return str(subject.get("ModelApprovalStatus") or "PendingManualApproval")

    def failure_message(self, subject: dict[str, Any]) -> str:
        why = subject.get("ApprovalDescription") or "no ApprovalDescription"
        return f"Model package {self.name!r} was Rejected: {why}"

    def missing(self) -> AutopilotError:
        """The error when DescribeModelPackage finds no such version (ends the wait)."""
        return AutopilotError(f"Model package {self.name!r} does not exist")

    def observe(self, subject: dict[str, Any]) -> None:
        if self.state(subject) != self._seen:
            self._seen = self.state(subject)
            self.log.info("Model package %s is %s", self.name, self._seen)

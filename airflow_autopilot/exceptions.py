"""Exceptions raised by airflow_autopilot."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class AutopilotError(AirflowException):
    """Base class of every error this package raises on purpose."""


class AutopilotValidationError(AutopilotError, AirflowFailException, ValueError):
    """
    A CreateAutoMLJob request broke one or more rules; raised before any AWS call.

    A retry would send the same request, so no retries are burned (an ``AirflowFailException``).

    :param errors: one message per broken rule, each naming the field and the rule.
    """

    def __init__(self, errors: list[str]) -> None:
        self.errors = list(errors)
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"Invalid Autopilot job request ({len(self.errors)} problem(s)):\n{lines}")


class AutopilotJobNotFound(AutopilotError):
    """
    SageMaker answered ResourceNotFound for a job.

    :param job_name: the AutoMLJobName asked for.
    :param region: the region that was asked.
    """

    def __init__(self, job_name: str, region: str | None) -> None:
        self.job_name = job_name
        self.region = region
        super().__init__(f"Autopilot job {job_name!r} was not found in region {region or '(default)'}")


class AutopilotJobFailed(AutopilotError, AirflowFailException):
    """A job reached a terminal failure; retrying the task cannot help, so no retry is burned."""


class AutopilotWaitTimeout(AutopilotJobFailed, TimeoutError):
    """The wait's own timeout passed before the job reached a success or failure verdict."""


class AutopilotJobNameConflict(AutopilotError, AirflowFailException):
    """The job name is taken by a job this task did not create."""

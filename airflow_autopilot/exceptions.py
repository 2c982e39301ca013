"""Exceptions raised by airflow_autopilot."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException


class AutopilotError(AirflowException):
    """Base class of every error this package raises on purpose."""


class AutopilotValidationError(AutopilotError, AirflowFailException, ValueError):
    """
    A request or a task's arguments broke one or more rules; raised before any AWS call.

    A retry would send the same request, so no retries are burned (an ``AirflowFailException``).

    :param errors: one message per broken rule, each naming the field and the rule.
    :param subject: what was invalid, for the title: ``Invalid <subject> (<n> problem(s))``.
    """

    def __init__(self, errors: list[str], subject: str = "Autopilot job request") -> None:
        self.errors = list(errors)
        self.subject = subject
        lines = "\n".join(f"  - {e}" for e in self.errors)
        super().__init__(f"Invalid {subject} ({len(self.errors)} problem(s)):\n{lines}")


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


class AutopilotWaitError(AutopilotError):
    """
    A wait broke on an error that is not the job's outcome: a permission or credential error, the
    job still missing after the grace period, an answer the wait cannot use, a broken trigger.

    Airflow's retries stay available, in every waiting mode: credentials get refreshed, policies get
    fixed, and a retry re-attaches to the same job instead of creating one.
    """


class AutopilotJobFailed(AutopilotError, AirflowFailException):
    """A job reached a terminal failure; retrying the task cannot help, so no retry is burned."""


class AutopilotWaitTimeout(AutopilotJobFailed, TimeoutError):
    """The wait's own timeout passed before the job reached a success or failure verdict."""


class AutopilotJobNameConflict(AutopilotError, AirflowFailException):
    """The job name is taken by a job this task did not create."""

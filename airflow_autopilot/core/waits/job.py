"""The wait on one Autopilot job: its machine, its trigger event, and the hand-off from a task to
its trigger.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from airflow_autopilot.core.clock import parse_timestamp
from airflow_autopilot.core.defaults import (
    DEFAULT_CANDIDATE_COUNT_INTERVAL,
    DEFAULT_NOT_FOUND_GRACE_SECONDS,
)
from airflow_autopilot.core.errors import is_not_found
from airflow_autopilot.core.job import HAND_OFF_FIELDS, AutopilotJob, WaitCriteria
from airflow_autopilot.core.redaction import describe_error
from airflow_autopilot.core.waits.machine import EVENT_STATUSES, EventStatus, Finished, Verdict, WaitMachine
from airflow_autopilot.core.waits.progress import ProgressReporter
from airflow_autopilot.core.xcom import JSONValue, job_summary, to_json_safe, unknown_job_summary


def within_not_found_grace(created_at: datetime | str | None, grace_seconds: float, *, now: datetime) -> bool:
    """
    Whether ResourceNotFound should still be tolerated for a job created at ``created_at``.

    :param created_at: when the job was created (or the wait began, when unknown).
    :param grace_seconds: the grace period in seconds; 0 disables it.
    :param now: the current time (the wait's clock).
    """
    start = parse_timestamp(created_at)
    if start is None or grace_seconds <= 0:
        return False
    return (now - start).total_seconds() < grace_seconds


def make_event(
    status: EventStatus, job_name: str, message: str, job: AutopilotJob | None = None
) -> dict[str, Any]:
    """
    A job trigger's event payload (JSON-safe).

    ``{"status": "success"|"failure"|"timeout"|"error", "job_name": str, "message": str,
    "summary": job_summary(job)}``; without a job (never read), the summary says its status is
    unknown (:func:`~airflow_autopilot.core.xcom.unknown_job_summary`).

    :param status: the outcome.
    :param job_name: the job waited on.
    :param message: a human message (the job's failure message on failure).
    :param job: the last described job, when there is one.
    """
    if status not in EVENT_STATUSES:
        raise ValueError(f"status: {status!r} is not one of {sorted(EVENT_STATUSES)}")
    return {
        "status": status,
        "job_name": job_name,
        "message": message,
        "summary": job_summary(job) if job is not None else unknown_job_summary(job_name),
    }


class JobWait(WaitMachine[AutopilotJob]):
    """
    The wait on one Autopilot job: verdicts from :class:`~airflow_autopilot.core.job.WaitCriteria`, progress lines, and
    ResourceNotFound tolerated for ``not_found_grace`` seconds after ``created_at``.

    :param job_name: the AutoMLJobName.
    :param criteria: what ends the wait.
    :param not_found_grace: seconds after creation during which ResourceNotFound is retried.
    :param created_at: when the job was created (or the wait began); defaults to now.
    :param candidate_interval: minimum seconds between candidate counts while training.
    :param logged_state: ``(status, secondary status)`` the task already logged before deferring.
    :param kwargs: :class:`~.machine.WaitMachine` arguments (``poll_interval``, ``timeout`` or
        ``deadline``, ``log``, ``clock`` ...); the clock also paces the candidate counts.
    """

    def __init__(
        self,
        job_name: str,
        criteria: WaitCriteria,
        *,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE_SECONDS,
        created_at: datetime | str | None = None,
        candidate_interval: float = DEFAULT_CANDIDATE_COUNT_INTERVAL,
        logged_state: tuple[str, str | None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(f"Autopilot job {job_name!r}", **kwargs)
        self.job_name = job_name
        self.criteria = criteria
        self.not_found_grace = not_found_grace
        self.created_at = created_at if created_at is not None else self.clock.now()
        self.reporter = ProgressReporter(
            job_name,
            self.log,
            candidate_interval=candidate_interval,
            logged_state=logged_state,
            clock=self.clock,
        )
        self.api_version: Literal["auto", "v1", "v2"] = "auto"
        #: A describe of the job succeeded (this wait's, or the task's handed to its trigger).
        self.described = False

    def verdict(self, subject: AutopilotJob) -> Verdict:
        return self.criteria.verdict(subject)

    def state(self, subject: AutopilotJob) -> str:
        return subject.describe_state()

    def failure_message(self, subject: AutopilotJob) -> str:
        return subject.failure_message()

    def observe(self, subject: AutopilotJob) -> None:
        self.described = True
        self.api_version = subject.api_version
        self.reporter.update(subject)

    def tolerate(self, error: BaseException) -> bool:
        # ResourceNotFound is eventual consistency only until the job has been described: a job
        # that was described and is gone now (deleted, an emulator restart) will not come back.
        if (
            is_not_found(error)
            and not self.described
            and within_not_found_grace(self.created_at, self.not_found_grace, now=self.clock.now())
        ):
            self.log.info(
                "Autopilot job %s is not visible yet (%s); will check again",
                self.job_name,
                describe_error(error),
            )
            return True
        return super().tolerate(error)

    def error_message(self, error: BaseException) -> str:
        if is_not_found(error):
            seen = (
                f"it was last seen {self.state(self.last)}" if self.last is not None else "it was never seen"
            )
            return f"Autopilot job {self.job_name!r} not found ({describe_error(error)}); {seen}"
        return super().error_message(error)

    def event(self, step: Finished[AutopilotJob]) -> dict[str, Any]:
        """The trigger event for a finished wait."""
        return make_event(step.status, self.job_name, step.message, step.subject)


# --- the hand-off from a task to its trigger ------------------------------------------------------
# What a task hands over is HAND_OFF_FIELDS, in core.job beside what every other source shows.
_HAND_OFF_TIMES = ("CreationTime", "LastModifiedTime", "EndTime")


def hand_off(job: AutopilotJob) -> dict[str, JSONValue]:
    """
    What a task saw in its last describe before deferring, JSON-safe for the trigger's
    ``last_seen`` kwarg, so the trigger's first poll needs no describe of its own.

    ``{"job": {<HAND_OFF_FIELDS>, "MaxCandidates"}, "api_version": "v1"|"v2", "observed_at": ISO
    8601 server time of the describe (its Date header) or None}``.

    :param job: the task's last describe.
    """
    fields = {key: job.raw[key] for key in HAND_OFF_FIELDS if job.raw.get(key) is not None}
    if job.max_candidates is not None:
        fields["AutoMLJobConfig"] = {"CompletionCriteria": {"MaxCandidates": job.max_candidates}}
    return {
        "job": to_json_safe(fields),
        "api_version": job.api_version,
        "observed_at": to_json_safe(job.observed_at),
    }


def from_hand_off(data: Mapping[str, Any]) -> AutopilotJob:
    """
    The :class:`AutopilotJob` a task handed to its trigger with :func:`hand_off`.

    :param data: the ``last_seen`` trigger kwarg.
    :raises ValueError: naming the field, when ``data`` is not what :func:`hand_off` returns.
    """
    raw = data.get("job") if isinstance(data, Mapping) else None
    if not isinstance(raw, Mapping) or not raw.get("AutoMLJobName") or not raw.get("AutoMLJobStatus"):
        raise ValueError("last_seen: expected the dict hand_off() returns, with job.AutoMLJobName and status")
    fields = dict(raw)
    for key in _HAND_OFF_TIMES:
        if fields.get(key) is not None:
            fields[key] = parse_timestamp(fields[key])
    version = data.get("api_version")
    return AutopilotJob(
        raw=fields,
        api_version="v2" if version == "v2" else "v1",
        observed_at=parse_timestamp(data.get("observed_at")),
        source="hand-off",
    )

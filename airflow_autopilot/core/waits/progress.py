"""Progress lines of a job wait: status changes with elapsed time, and paced candidate counts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_autopilot.core.clock import Clock, default_clock, format_duration, parse_timestamp
from airflow_autopilot.core.defaults import DEFAULT_CANDIDATE_COUNT_INTERVAL
from airflow_autopilot.core.job import TRAINING_SECONDARY_STATUSES, AutopilotJob
from airflow_autopilot.core.redaction import describe_error

if TYPE_CHECKING:
    import logging


class ProgressReporter:
    """
    Logs a wait's progress: one line per change of status or secondary status, with elapsed time,
    and while candidates train how many completed out of MaxCandidates.

    Counting candidates costs one ListCandidatesForAutoMLJob call, made at most once per
    ``candidate_interval`` seconds and only during :data:`TRAINING_SECONDARY_STATUSES`: the caller
    asks :meth:`candidates_request` and, when it returns a request, makes that call and hands the
    response (or the error) to :meth:`report_listing`, so sync and async callers share the rule.

    :param job_name: the job being waited on.
    :param log: a ``logging.Logger``-like object.
    :param candidate_interval: minimum seconds between two candidate counts; 0 disables counting.
    :param logged_state: ``(status, secondary status)`` already logged for this wait (by the task
        before it deferred), so the trigger does not log it again.
    :param clock: the wait's clock (default: :func:`~airflow_autopilot.core.clock.default_clock`).
    """

    def __init__(
        self,
        job_name: str,
        log: logging.Logger | Any,
        *,
        candidate_interval: float = DEFAULT_CANDIDATE_COUNT_INTERVAL,
        logged_state: tuple[str, str | None] | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.job_name = job_name
        self.log = log
        self.candidate_interval = candidate_interval
        self._clock = clock or default_clock()
        self._started = self._clock.monotonic()
        self.last_state: tuple[str, str | None] | None = logged_state
        self._last_count_at: float | None = None

    def elapsed(self, job: AutopilotJob | None = None) -> float:
        """Seconds since the job's CreationTime, or since this wait began if that is longer (clock skew)."""
        waited = self._clock.monotonic() - self._started
        created = parse_timestamp(job.creation_time) if job is not None else None
        if created is not None:
            return max(waited, (self._clock.now() - created).total_seconds())
        return waited

    def update(self, job: AutopilotJob) -> bool:
        """Log a line if status or secondary status changed; return whether it did."""
        state = (job.status, job.secondary_status)
        if state == self.last_state:
            return False
        self.last_state = state
        self.log.info(
            "Autopilot job %s is %s after %s",
            self.job_name,
            job.describe_state(),
            format_duration(self.elapsed(job)),
        )
        return True

    def candidate_count_due(self, job: AutopilotJob) -> bool:
        """True when a ListCandidates call to count completed candidates is allowed now."""
        return self.seconds_until_count(job) == 0.0

    def seconds_until_count(self, job: AutopilotJob | None) -> float | None:
        """Seconds until a candidate count is allowed for ``job`` (0: now); ``None`` while none applies."""
        if job is None or self.candidate_interval <= 0 or job.is_terminal:
            return None
        if job.secondary_status not in TRAINING_SECONDARY_STATUSES:
            return None
        if self._last_count_at is None:
            return 0.0
        return max(0.0, self.candidate_interval - (self._clock.monotonic() - self._last_count_at))

    def candidates_request(self, job: AutopilotJob) -> dict[str, Any] | None:
        """The ListCandidatesForAutoMLJob arguments that count completed candidates, when a count is due."""
        if not self.candidate_count_due(job):
            return None
        return {"AutoMLJobName": job.name or self.job_name, "StatusEquals": "Completed", "MaxResults": 100}

    def report_listing(self, job: AutopilotJob, response: Mapping[str, Any] | BaseException) -> None:
        """
        Log the count from a :meth:`candidates_request` call (a listing error is logged and skipped).

        :param job: the job.
        :param response: the ListCandidatesForAutoMLJob response, or the exception it raised.
        """
        if isinstance(response, BaseException):
            self.log.info(
                "Could not count candidates of %s (%s); carrying on", self.job_name, describe_error(response)
            )
            self.report_candidates(job, None)
            return
        self.report_candidates(job, len(response.get("Candidates", [])), more=bool(response.get("NextToken")))

    def mark_counted(self) -> None:
        """Take the count as just made (by the task, before it deferred): the next is due one
        ``candidate_interval`` from now."""
        self._last_count_at = self._clock.monotonic()

    def report_candidates(self, job: AutopilotJob, completed: int | None, *, more: bool = False) -> None:
        """
        Log how many candidates completed out of MaxCandidates.

        :param job: the job.
        :param completed: completed candidates seen, or ``None`` when the count failed.
        :param more: True when the listing was truncated (at least ``completed``).
        """
        self._last_count_at = self._clock.monotonic()
        if completed is None:
            return
        total = job.max_candidates
        self.log.info(
            "Autopilot job %s: %s%d of %s candidates completed after %s",
            self.job_name,
            "at least " if more else "",
            completed,
            total if total is not None else "?",
            format_duration(self.elapsed(job)),
        )

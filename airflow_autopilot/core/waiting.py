"""
Waiting on an Autopilot job: transient-error classification, backoff, progress logging, the trigger
event format and the synchronous polling loop.

Shared by the sensor, the trigger and the create operator (``wait_for_completion=True``), so there
is one definition of "transient", one progress log format and one event format.

Import-light on purpose: no boto3, botocore or aiohttp at module top (DAG-facing modules import it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

from airflow_autopilot.core.errors import is_not_found, is_transient
from airflow_autopilot.core.job import TRAINING_SECONDARY_STATUSES, AutopilotJob, WaitCriteria
from airflow_autopilot.core.xcom import job_summary
from airflow_autopilot.exceptions import AutopilotJobFailed, AutopilotWaitTimeout

if TYPE_CHECKING:
    import logging

    from airflow_autopilot.hooks import AutopilotHook

#: Seconds after a job's creation during which ResourceNotFound is taken as eventual consistency.
DEFAULT_NOT_FOUND_GRACE_SECONDS = 60.0
#: Longest sleep after repeated transient errors.
DEFAULT_MAX_BACKOFF_SECONDS = 300.0
#: At most one ListCandidatesForAutoMLJob call this often while candidates train.
DEFAULT_CANDIDATE_COUNT_INTERVAL = 300.0
#: Upward jitter on the regular poll interval (never polls faster than ``poll_interval``).
POLL_JITTER = 0.1

EventStatus = Literal["success", "failure", "timeout", "error"]
EVENT_STATUSES: frozenset[str] = frozenset({"success", "failure", "timeout", "error"})


# --- backoff ---------------------------------------------------------------------------------
def backoff_delay(
    failures: int, poll_interval: float, max_delay: float = DEFAULT_MAX_BACKOFF_SECONDS
) -> float:
    """
    Seconds to sleep after ``failures`` consecutive transient errors: exponential, jittered upward.

    The base delay is one poll interval after the first failure and doubles with each further one,
    capped at ``max(max_delay, poll_interval)``; the result lies in ``[base, 1.5 * base]``, so a
    retry never comes sooner than a regular poll would (at most one call per poll interval).

    :param failures: consecutive transient failures so far (1 for the first).
    :param poll_interval: the regular poll interval in seconds.
    :param max_delay: cap on the base delay in seconds.
    """
    cap = max(max_delay, poll_interval)
    base = min(cap, poll_interval * (2 ** min(max(failures - 1, 0), 20)))
    return base * random.uniform(1.0, 1.5)


def poll_delay(poll_interval: float) -> float:
    """The regular sleep between polls: ``poll_interval`` plus up to 10 % upward jitter."""
    return poll_interval * (1.0 + random.uniform(0.0, POLL_JITTER))


def _as_utc(value: datetime | str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def within_not_found_grace(
    created_at: datetime | str | None, grace_seconds: float, *, now: datetime | None = None
) -> bool:
    """
    Whether ResourceNotFound should still be tolerated for a job created at ``created_at``.

    :param created_at: when the job was created (or the wait began, when unknown).
    :param grace_seconds: the grace period in seconds; 0 disables it.
    :param now: the current time (tests).
    """
    start = _as_utc(created_at)
    if start is None or grace_seconds <= 0:
        return False
    now = now or datetime.now(timezone.utc)
    return (now - start).total_seconds() < grace_seconds


def tolerate_poll_error(
    error: BaseException,
    job_name: str,
    log: logging.Logger | Any,
    *,
    created_at: datetime | str | None,
    not_found_grace: float,
) -> bool:
    """
    Whether a failed describe leaves the wait going (logging why), or must end it.

    Tolerated: ResourceNotFound within ``not_found_grace`` seconds of ``created_at`` (a job just
    created may not be visible yet) and every :func:`is_transient` error. The sensor, the trigger
    and :func:`wait_for_job` all decide through this one function.

    :param error: what the describe raised.
    :param job_name: the job, for the log line.
    :param log: where to log.
    :param created_at: when the job was created (or the wait began).
    :param not_found_grace: the grace period in seconds.
    """
    if is_not_found(error) and within_not_found_grace(created_at, not_found_grace):
        log.info("Autopilot job %s is not visible yet (%s); will check again", job_name, error)
        return True
    if is_transient(error):
        log.warning(
            "Transient error checking Autopilot job %s (%s: %s); will check again",
            job_name,
            type(error).__name__,
            error,
        )
        return True
    return False


# --- progress ------------------------------------------------------------------------------------
def _format_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


class ProgressReporter:
    """
    Logs a wait's progress: one line per change of status or secondary status, with elapsed time,
    and while candidates train how many completed out of MaxCandidates.

    Counting candidates costs one ListCandidatesForAutoMLJob call, made at most once per
    ``candidate_interval`` seconds and only during :data:`TRAINING_SECONDARY_STATUSES`. The caller
    asks :meth:`candidate_count_due` and, when True, makes that call and passes the count to
    :meth:`report_candidates` (so the same reporter serves sync and async code).

    :param job_name: the job being waited on.
    :param log: a ``logging.Logger``-like object.
    :param candidate_interval: minimum seconds between two candidate counts; 0 disables counting.
    :param clock: monotonic clock (tests).
    """

    def __init__(
        self,
        job_name: str,
        log: logging.Logger | Any,
        *,
        candidate_interval: float = DEFAULT_CANDIDATE_COUNT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_name = job_name
        self.log = log
        self.candidate_interval = candidate_interval
        self._clock = clock
        self._started = clock()
        self._last_state: tuple[str, str | None] | None = None
        self._last_count_at: float | None = None
        self._last_count: int | None = None

    def elapsed(self, job: AutopilotJob | None = None) -> float:
        """Seconds since the job's CreationTime, or since this wait began if that is longer (clock skew)."""
        waited = self._clock() - self._started
        created = _as_utc(job.creation_time) if job is not None else None
        if created is not None:
            return max(waited, (datetime.now(timezone.utc) - created).total_seconds())
        return waited

    def update(self, job: AutopilotJob) -> bool:
        """Log a line if status or secondary status changed; return whether it did."""
        state = (job.status, job.secondary_status)
        if state == self._last_state:
            return False
        self._last_state = state
        self.log.info(
            "Autopilot job %s is %s after %s",
            self.job_name,
            job.describe_state(),
            _format_elapsed(self.elapsed(job)),
        )
        return True

    def candidate_count_due(self, job: AutopilotJob) -> bool:
        """True when a ListCandidates call to count completed candidates is allowed now."""
        if self.candidate_interval <= 0 or job.secondary_status not in TRAINING_SECONDARY_STATUSES:
            return False
        if job.is_terminal:
            return False
        if self._last_count_at is None:
            return True
        return self._clock() - self._last_count_at >= self.candidate_interval

    def report_candidates(self, job: AutopilotJob, completed: int | None, *, more: bool = False) -> None:
        """
        Log how many candidates completed out of MaxCandidates.

        :param job: the job.
        :param completed: completed candidates seen, or ``None`` when the count failed.
        :param more: True when the listing was truncated (at least ``completed``).
        """
        self._last_count_at = self._clock()
        if completed is None:
            return
        self._last_count = completed
        total = job.max_candidates
        self.log.info(
            "Autopilot job %s: %s%d of %s candidates completed after %s",
            self.job_name,
            "at least " if more else "",
            completed,
            total if total is not None else "?",
            _format_elapsed(self.elapsed(job)),
        )

    def count_candidates(self, hook: AutopilotHook, job: AutopilotJob) -> None:
        """Synchronous helper: when due, count completed candidates with one call and log it."""
        if not self.candidate_count_due(job):
            return
        try:
            response = hook.client.list_candidates_for_auto_ml_job(
                AutoMLJobName=job.name or self.job_name, StatusEquals="Completed", MaxResults=100
            )
        except Exception as err:
            self.log.info("Could not count candidates of %s (%s); carrying on", self.job_name, err)
            self.report_candidates(job, None)
            return
        self.report_candidates(job, len(response.get("Candidates", [])), more=bool(response.get("NextToken")))


# --- events --------------------------------------------------------------------------------------
def make_event(
    status: EventStatus, job_name: str, message: str, job: AutopilotJob | None = None
) -> dict[str, Any]:
    """
    A trigger event payload (JSON-safe).

    ``{"status": "success"|"failure"|"timeout"|"error", "job_name": str, "message": str,
    "summary": job_summary(job) or None}``.

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
        "summary": job_summary(job) if job is not None else None,
    }


def event_for_verdict(job_name: str, job: AutopilotJob, verdict: str) -> dict[str, Any]:
    """The event for a final verdict (``success`` or ``failure``) on ``job``."""
    if verdict == "success":
        return make_event("success", job_name, f"Autopilot job {job_name!r} is {job.describe_state()}", job)
    return make_event("failure", job_name, job.failure_message(), job)


def resolve_event(event: Mapping[str, Any] | None, *, soft_fail: bool = False) -> dict[str, Any]:
    """
    The ``execute_complete`` side of a deferred wait: the job summary on success, else raise.

    :param event: the trigger event payload (may be ``None`` or malformed).
    :param soft_fail: raise ``AirflowSkipException`` instead of failing.
    :return: the success event's ``summary`` (JSON-safe; ``{}`` if it had none).
    :raises AutopilotJobFailed: for a failure, error, missing or malformed event (no retries).
    :raises AutopilotWaitTimeout: for a timeout event (a subclass of AutopilotJobFailed).
    :raises AirflowSkipException: instead of the above when ``soft_fail`` is set.
    """
    error: AutopilotJobFailed
    if not isinstance(event, Mapping):
        error = AutopilotJobFailed(
            f"Trigger returned no usable event ({event!r}); cannot tell how the job ended"
        )
    elif event.get("status") == "success":
        return dict(event.get("summary") or {})
    else:
        status = event.get("status")
        message = event.get("message") or f"Trigger event {dict(event)!r} is not a success"
        job = event.get("job_name")
        if status == "timeout":
            error = AutopilotWaitTimeout(message)
        elif status in EVENT_STATUSES:
            error = AutopilotJobFailed(message)
        else:
            error = AutopilotJobFailed(
                f"Unexpected trigger event status {status!r} for job {job!r}: {message}"
            )
    if soft_fail:
        from airflow.sdk.exceptions import AirflowSkipException

        raise AirflowSkipException(f"Skipped (soft_fail): {error}") from error
    raise error


# --- the synchronous loop ------------------------------------------------------------------------
def wait_for_job(
    hook: AutopilotHook,
    job_name: str,
    criteria: WaitCriteria,
    *,
    poll_interval: float,
    timeout: float | None,
    log: logging.Logger | Any,
    not_found_grace: float = DEFAULT_NOT_FOUND_GRACE_SECONDS,
    created_at: datetime | str | None = None,
    candidate_interval: float = DEFAULT_CANDIDATE_COUNT_INTERVAL,
    max_backoff: float = DEFAULT_MAX_BACKOFF_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> AutopilotJob:
    """
    Poll a job until ``criteria`` give a verdict, blocking the caller.

    Transient errors (:func:`is_transient`) are logged and retried with jittered exponential
    backoff; ResourceNotFound is tolerated until ``not_found_grace`` seconds after ``created_at``
    (or after the wait began). Progress is logged through :class:`ProgressReporter`.

    :param hook: an :class:`~airflow_autopilot.hooks.AutopilotHook`.
    :param job_name: the AutoMLJobName.
    :param criteria: what ends the wait.
    :param poll_interval: seconds between polls (plus up to 10 % jitter).
    :param timeout: give up after this many seconds; ``None`` waits forever.
    :param log: logger for progress lines.
    :param not_found_grace: seconds after creation during which ResourceNotFound is retried.
    :param created_at: when the job was created; defaults to the start of this wait.
    :param candidate_interval: minimum seconds between candidate counts while training.
    :param max_backoff: cap on the sleep after repeated transient errors.
    :param sleep: sleep function (tests).
    :return: the job, when the verdict is success.
    :raises AutopilotJobFailed: on a failure verdict, with :meth:`AutopilotJob.failure_message`.
    :raises AutopilotWaitTimeout: when ``timeout`` passes first.
    :raises AutopilotJobNotFound: when the job is still missing after the grace period.
    """
    start = time.monotonic()
    reference = created_at if created_at is not None else datetime.now(timezone.utc)
    deadline = start + timeout if timeout is not None else None
    reporter = ProgressReporter(job_name, log, candidate_interval=candidate_interval)
    api_version: Literal["auto", "v1", "v2"] = "auto"
    failures = 0
    last_job: AutopilotJob | None = None
    while True:
        try:
            job = hook.get_job(job_name, api_version=api_version)
        except Exception as err:
            if not tolerate_poll_error(
                err, job_name, log, created_at=reference, not_found_grace=not_found_grace
            ):
                raise
            failures += 1
            delay = backoff_delay(failures, poll_interval, max_backoff)
        else:
            failures = 0
            last_job = job
            api_version = job.api_version
            reporter.update(job)
            verdict = criteria.verdict(job)
            if verdict == "success":
                return job
            if verdict == "failure":
                raise AutopilotJobFailed(job.failure_message())
            reporter.count_candidates(hook, job)
            delay = poll_delay(poll_interval)
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                state = last_job.describe_state() if last_job is not None else "never described"
                raise AutopilotWaitTimeout(
                    f"Timed out after {timeout:g}s waiting for Autopilot job {job_name!r} (last seen {state})"
                )
            delay = min(delay, remaining)
        sleep(delay)

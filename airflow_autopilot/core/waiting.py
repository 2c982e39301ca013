"""The one wait state machine (no I/O) behind every Autopilot job and endpoint wait, sync or async."""

from __future__ import annotations

import asyncio
import math
import os
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

# Defined apart so that DAG-facing modules need not load this one; re-exported (explicitly) here.
from airflow_autopilot.core.defaults import (
    DEFAULT_CANDIDATE_COUNT_INTERVAL as DEFAULT_CANDIDATE_COUNT_INTERVAL,
)
from airflow_autopilot.core.defaults import (
    DEFAULT_NOT_FOUND_GRACE_SECONDS as DEFAULT_NOT_FOUND_GRACE_SECONDS,
)
from airflow_autopilot.core.errors import is_not_found, is_transient
from airflow_autopilot.core.job import TRAINING_SECONDARY_STATUSES, AutopilotJob, WaitCriteria
from airflow_autopilot.core.promotion import ENDPOINT_FAILED_STATUSES, endpoint_verdict
from airflow_autopilot.core.redaction import describe_error, scrub
from airflow_autopilot.core.xcom import JSONValue, job_summary, to_json_safe
from airflow_autopilot.exceptions import AutopilotError, AutopilotJobFailed, AutopilotWaitTimeout

if TYPE_CHECKING:
    import logging

#: Longest sleep after repeated transient errors.
DEFAULT_MAX_BACKOFF_SECONDS = 300.0
#: Upward jitter on the regular poll interval (never polls faster than ``poll_interval``).
POLL_JITTER = 0.1
#: The shortest poll interval any wait (sync or deferred, sensor or trigger) uses: Airflow allows
#: ``poke_interval=0``, which would poll SageMaker as fast as the loop spins.
MIN_POLL_INTERVAL_SECONDS = 1.0
#: Environment variable that lowers (or raises) :data:`MIN_POLL_INTERVAL_SECONDS`, for local
#: emulators whose jobs take seconds (the emulator's pytest fixtures set it to 0.01).
MIN_POLL_INTERVAL_ENV = "AUTOPILOT_MIN_POLL_INTERVAL"

EventStatus = Literal["success", "failure", "timeout", "error"]
EVENT_STATUSES: frozenset[str] = frozenset({"success", "failure", "timeout", "error"})


# --- delays ----------------------------------------------------------------------------------------
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


def min_poll_interval() -> float:
    """The poll-interval floor: ``$AUTOPILOT_MIN_POLL_INTERVAL`` when set to a positive number,
    else :data:`MIN_POLL_INTERVAL_SECONDS`."""
    try:
        value = float(os.environ.get(MIN_POLL_INTERVAL_ENV, ""))
    except ValueError:
        return MIN_POLL_INTERVAL_SECONDS
    return value if math.isfinite(value) and value > 0 else MIN_POLL_INTERVAL_SECONDS


def floor_poll_interval(
    poll_interval: float, log: logging.Logger | Any | None = None, what: str = "the wait"
) -> float:
    """
    ``poll_interval`` raised to :func:`min_poll_interval`, with a warning naming both when raised.

    :param poll_interval: the requested seconds between polls (``poke_interval`` or ``poll_interval``).
    :param log: where to warn; ``None`` warns nowhere.
    :param what: the subject of the wait, for the message.
    """
    floor = min_poll_interval()
    try:
        requested = float(poll_interval)
    except (TypeError, ValueError):
        requested = math.nan
    if requested >= floor:  # False for NaN too
        return requested
    if log is not None:
        log.warning(
            "Poll interval %ss for %s is below the floor of %gs (%s); polling every %gs instead",
            poll_interval,
            what,
            floor,
            MIN_POLL_INTERVAL_ENV,
            floor,
        )
    return floor


def poll_delay(poll_interval: float) -> float:
    """The regular sleep between polls: ``poll_interval`` plus up to 10 % upward jitter."""
    return poll_interval * (1.0 + random.uniform(0.0, POLL_JITTER))


def as_utc(value: datetime | str | None) -> datetime | None:
    """
    A timestamp as an aware ``datetime``: ISO 8601 strings (``Z`` included) are parsed, and naive
    values are taken as UTC; ``None`` stays ``None``.

    :param value: the timestamp, as AWS, XCom or Airflow hand it over.
    """
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
    start = as_utc(created_at)
    if start is None or grace_seconds <= 0:
        return False
    now = now or datetime.now(timezone.utc)
    return (now - start).total_seconds() < grace_seconds


def _format_elapsed(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# --- call budgets ----------------------------------------------------------------------------------
#: The least time a call made at (or past) a wait's deadline gets: its one last look.
MIN_CALL_SECONDS = 1.0
#: Per-attempt connect/read timeouts a bounded botocore call may use (few distinct clients).
CALL_TIMEOUT_STEPS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0)
#: The longest sleep botocore's standard retry mode makes between two attempts.
BOTOCORE_MAX_BACKOFF = 20.0


def call_worst_case(connect_timeout: float, read_timeout: float, attempts: int) -> float:
    """
    The longest a botocore call can take with these settings (standard retry mode): every attempt
    times out connecting and then reading, with the longest backoff between attempts.

    :param connect_timeout: botocore ``connect_timeout`` in seconds.
    :param read_timeout: botocore ``read_timeout`` in seconds.
    :param attempts: total attempts (the first one included).
    """
    backoff = sum(min(2.0**k, BOTOCORE_MAX_BACKOFF) for k in range(max(attempts - 1, 0)))
    return max(attempts, 1) * (connect_timeout + read_timeout) + backoff


@dataclass(frozen=True)
class CallLimits:
    """
    botocore settings under which one call, retries included, ends within a budget.

    :param connect_timeout: per-attempt connect timeout in seconds.
    :param read_timeout: per-attempt read timeout in seconds.
    :param attempts: total attempts (standard retry mode).
    """

    connect_timeout: float
    read_timeout: float
    attempts: int


def attempt_seconds(budget: float | None) -> float | None:
    """
    How long one attempt at a call may take within ``budget``: the largest of
    :data:`CALL_TIMEOUT_STEPS` that fits twice in it (so a request lost on a dead connection leaves
    time for another), never above 60 s; ``None`` without a budget.

    :param budget: seconds the call may take, from :meth:`WaitMachine.call_budget`.
    """
    if budget is None:
        return None
    fitting = [step for step in CALL_TIMEOUT_STEPS if 2 * step <= budget]
    return fitting[-1] if fitting else CALL_TIMEOUT_STEPS[0]


def call_limits(
    budget: float | None, *, connect_timeout: float = 60.0, read_timeout: float = 60.0, attempts: int = 3
) -> CallLimits | None:
    """
    Settings that make one botocore call end within ``budget`` seconds, or ``None`` when the
    configured ones already do (or there is no budget).

    The per-attempt timeouts drop to :func:`attempt_seconds` of the budget (never above the
    configured ones), then as many attempts as still fit are kept (at least one, at most the
    configured number). Steps, not exact values, so a wait reuses a few clients.

    :param budget: seconds the call may take (``None``: no limit).
    :param connect_timeout: the configured connect timeout.
    :param read_timeout: the configured read timeout.
    :param attempts: the configured total attempts.
    """
    attempts = max(int(attempts), 1)
    if budget is None or call_worst_case(connect_timeout, read_timeout, attempts) <= budget:
        return None
    step = attempt_seconds(budget)
    assert step is not None
    connect, read = min(connect_timeout, step), min(read_timeout, step)
    allowed = 1
    while allowed < attempts and call_worst_case(connect, read, allowed + 1) <= budget:
        allowed += 1
    return CallLimits(connect_timeout=connect, read_timeout=read, attempts=allowed)


# --- progress ------------------------------------------------------------------------------------
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
    :param clock: monotonic clock (tests).
    """

    def __init__(
        self,
        job_name: str,
        log: logging.Logger | Any,
        *,
        candidate_interval: float = DEFAULT_CANDIDATE_COUNT_INTERVAL,
        logged_state: tuple[str, str | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_name = job_name
        self.log = log
        self.candidate_interval = candidate_interval
        self._clock = clock
        self._started = clock()
        self.last_state: tuple[str, str | None] | None = logged_state
        self._last_count_at: float | None = None

    def elapsed(self, job: AutopilotJob | None = None) -> float:
        """Seconds since the job's CreationTime, or since this wait began if that is longer (clock skew)."""
        waited = self._clock() - self._started
        created = as_utc(job.creation_time) if job is not None else None
        if created is not None:
            return max(waited, (datetime.now(timezone.utc) - created).total_seconds())
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
            _format_elapsed(self.elapsed(job)),
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
        return max(0.0, self.candidate_interval - (self._clock() - self._last_count_at))

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
        self._last_count_at = self._clock()

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
        total = job.max_candidates
        self.log.info(
            "Autopilot job %s: %s%d of %s candidates completed after %s",
            self.job_name,
            "at least " if more else "",
            completed,
            total if total is not None else "?",
            _format_elapsed(self.elapsed(job)),
        )


# --- events --------------------------------------------------------------------------------------
def make_event(
    status: EventStatus, job_name: str, message: str, job: AutopilotJob | None = None
) -> dict[str, Any]:
    """
    A job trigger's event payload (JSON-safe).

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


# --- the state machine ---------------------------------------------------------------------------
T = TypeVar("T")
Verdict = Literal["success", "failure", "waiting"]


@dataclass(frozen=True)
class Sleep:
    """Keep waiting: poll again after ``seconds``."""

    seconds: float


@dataclass(frozen=True)
class Finished(Generic[T]):
    """
    The wait is over.

    :param status: ``success``, ``failure``, ``timeout`` or ``error``.
    :param message: what to tell the user (SageMaker's failure reason on failure).
    :param subject: the last thing described (a job or an endpoint), if any.
    :param error: the exception that ended the wait, for ``error``.
    :param timeout_error: the exception class :meth:`outcome` raises for ``timeout``.
    """

    status: EventStatus
    message: str
    subject: T | None = None
    error: BaseException | None = None
    timeout_error: type[Exception] = AutopilotWaitTimeout

    def outcome(self) -> T:
        """The subject on success; otherwise raise what a blocking caller should see."""
        if self.status == "success":
            assert self.subject is not None
            return self.subject
        if self.status == "failure":
            raise AutopilotJobFailed(self.message)
        if self.status == "timeout":
            raise self.timeout_error(self.message)
        assert self.error is not None
        raise scrub(self.error)


Step = Sleep | Finished[T]


class WaitMachine(Generic[T]):
    """
    What a wait does after each poll, without doing any I/O: sleep how long, or finish how.

    A driver (:func:`drive` for blocking code, :func:`drive_async` for triggers, or a sensor's
    pokes) makes the calls and feeds each result to :meth:`on_result` and each error to
    :meth:`on_error`. Subclasses say what success, failure and progress mean.

    :param what: the subject in messages, e.g. ``Autopilot job 'churn-1'``.
    :param poll_interval: seconds between regular polls (plus up to 10 % jitter).
    :param timeout: give up this many seconds from now; ``None`` waits until ``deadline``.
    :param deadline: give up at this time (UTC); ignored when ``timeout`` is given.
    :param max_backoff: cap on the sleep after repeated transient errors.
    :param log: logger for progress and tolerated errors.
    :param now: the current UTC time (tests).
    """

    timeout_error: type[Exception] = AutopilotWaitTimeout

    def __init__(
        self,
        what: str,
        *,
        poll_interval: float,
        timeout: float | None = None,
        deadline: datetime | str | None = None,
        max_backoff: float = DEFAULT_MAX_BACKOFF_SECONDS,
        log: logging.Logger | Any,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.what = what
        self.poll_interval = floor_poll_interval(poll_interval, log, what)
        self.max_backoff = max_backoff
        self.log = log
        self._now = now
        self._timeout = timeout
        self.deadline = now() + timedelta(seconds=timeout) if timeout is not None else as_utc(deadline)
        self.failures = 0
        self.last: T | None = None

    # --- what subclasses define ---------------------------------------------------------------------
    def verdict(self, subject: T) -> Verdict:
        raise NotImplementedError

    def state(self, subject: T) -> str:
        """One-line state of ``subject`` for messages."""
        raise NotImplementedError

    def failure_message(self, subject: T) -> str:
        raise NotImplementedError

    def observe(self, subject: T) -> None:
        """Called with every successful poll's result, before the verdict (progress logging)."""

    def tolerate(self, error: BaseException) -> bool:
        """Whether a failed poll leaves the wait going (default: transient errors only)."""
        if is_transient(error):
            self.log.warning(
                "Transient error checking %s (%s); will check again",
                self.what,
                describe_error(error),
            )
            return True
        return False

    # --- the machine ------------------------------------------------------------------------------
    def remaining(self) -> float | None:
        """Seconds left until the deadline (``None`` without one)."""
        if self.deadline is None:
            return None
        return (self.deadline - self._now()).total_seconds()

    def call_budget(self) -> float | None:
        """
        Seconds the next call may take so the wait ends on time: the time left, but at least a short
        last look (:data:`MIN_CALL_SECONDS`, or one poll interval when shorter). ``None``: no deadline.
        """
        remaining = self.remaining()
        if remaining is None:
            return None
        floor = max(min(MIN_CALL_SECONDS, self.poll_interval), 2 * CALL_TIMEOUT_STEPS[0])
        return max(remaining, floor)

    def on_result(self, subject: T) -> Step[T]:
        """The next step after a successful poll that returned ``subject``."""
        self.failures = 0
        self.last = subject
        self.observe(subject)
        verdict = self.verdict(subject)
        if verdict == "success":
            return Finished("success", f"{self.what} is {self.state(subject)}", subject)
        if verdict == "failure":
            return Finished("failure", self.failure_message(subject), subject)
        return self._sleep(poll_delay(self.poll_interval))

    def error_message(self, error: BaseException) -> str:
        """The message of a wait ended by ``error``."""
        return f"Error polling {self.what}: {describe_error(error)}"

    def note(self, subject: T) -> None:
        """Record a newer state seen without a poll (a list summary): the last state a timeout or
        an error reports, never a verdict."""
        self.last = subject

    def on_error(self, error: BaseException) -> Step[T]:
        """The next step after a poll that raised ``error``."""
        if not self.tolerate(error):
            return Finished("error", self.error_message(error), self.last, error)
        self.failures += 1
        return self._sleep(backoff_delay(self.failures, self.poll_interval, self.max_backoff))

    def _sleep(self, delay: float) -> Step[T]:
        remaining = self.remaining()
        if remaining is None:
            return Sleep(delay)
        if remaining <= 0:
            state = self.state(self.last) if self.last is not None else "never described"
            deadline = self.deadline.isoformat() if self.deadline is not None else "?"
            when = f"after {self._timeout:g}s" if self._timeout is not None else f"at {deadline}"
            return Finished(
                "timeout",
                f"Timed out {when} waiting for {self.what} (last seen {state})",
                self.last,
                timeout_error=self.timeout_error,
            )
        return Sleep(min(delay, remaining))


class JobWait(WaitMachine[AutopilotJob]):
    """
    The wait on one Autopilot job: verdicts from :class:`WaitCriteria`, progress lines, and
    ResourceNotFound tolerated for ``not_found_grace`` seconds after ``created_at``.

    :param job_name: the AutoMLJobName.
    :param criteria: what ends the wait.
    :param not_found_grace: seconds after creation during which ResourceNotFound is retried.
    :param created_at: when the job was created (or the wait began); defaults to now.
    :param candidate_interval: minimum seconds between candidate counts while training.
    :param logged_state: ``(status, secondary status)`` the task already logged before deferring.
    :param clock: the monotonic clock that paces candidate counts (a trigger passes its event loop's).
    :param kwargs: :class:`WaitMachine` arguments (``poll_interval``, ``timeout`` or ``deadline``, ``log`` ...).
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
        clock: Callable[[], float] = time.monotonic,
        **kwargs: Any,
    ) -> None:
        super().__init__(f"Autopilot job {job_name!r}", **kwargs)
        self.job_name = job_name
        self.criteria = criteria
        self.not_found_grace = not_found_grace
        self.created_at = created_at if created_at is not None else self._now()
        self.reporter = ProgressReporter(
            job_name, self.log, candidate_interval=candidate_interval, logged_state=logged_state, clock=clock
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
            and within_not_found_grace(self.created_at, self.not_found_grace, now=self._now())
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


# --- the hand-off from a task to its trigger ------------------------------------------------------
#: The describe fields a task hands to its trigger (``last_seen``): enough for the verdict, the
#: progress lines and the coalesced poller's first window, small enough for trigger kwargs.
HAND_OFF_FIELDS = (
    "AutoMLJobName",
    "AutoMLJobArn",
    "AutoMLJobStatus",
    "AutoMLJobSecondaryStatus",
    "CreationTime",
    "LastModifiedTime",
    "EndTime",
    "FailureReason",
    "PartialFailureReasons",
    "ModelDeployConfig",
    "GenerateCandidateDefinitionsOnly",
    "AutoMLProblemTypeConfigName",
)
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
            fields[key] = as_utc(fields[key])
    version = data.get("api_version")
    return AutopilotJob(
        raw=fields,
        api_version="v2" if version == "v2" else "v1",
        observed_at=as_utc(data.get("observed_at")),
    )


# --- drivers -------------------------------------------------------------------------------------
def drive(
    machine: WaitMachine[T],
    poll: Callable[[], T],
    *,
    between: Callable[[T], object] | None = None,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """
    Run ``machine`` in the calling thread until it finishes; return the subject or raise.

    :param machine: the wait's state machine.
    :param poll: makes one call (a describe) and returns its result.
    :param between: called with the result of each poll that keeps the wait going.
    :param sleep: sleep function (tests).
    """
    while True:
        try:
            subject = poll()
        except Exception as err:
            step = machine.on_error(err)
        else:
            step = machine.on_result(subject)
            if between is not None and isinstance(step, Sleep):
                between(subject)
        if isinstance(step, Finished):
            return step.outcome()
        sleep(step.seconds)


async def drive_async(
    machine: WaitMachine[T],
    poll: Callable[[], Awaitable[T]],
    *,
    between: Callable[[T], Awaitable[object]] | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
) -> Finished[T]:
    """
    Run ``machine`` on the event loop until it finishes; return how it finished (never raises for
    a poll's error: that becomes an ``error`` result).

    :param machine: the wait's state machine.
    :param poll: makes one call and returns its result.
    :param between: awaited with the result of each poll that keeps the wait going.
    :param sleep: awaited with each step's delay.
    """
    while True:
        try:
            # Bounded by the time left, so nothing a poll awaits holds the wait past its deadline
            # (the calls themselves are cut sooner: see attempt_seconds).
            budget = machine.call_budget()
            subject = await (poll() if budget is None else asyncio.wait_for(poll(), timeout=budget))
        except Exception as err:
            step = machine.on_error(err)
        else:
            step = machine.on_result(subject)
            if between is not None and isinstance(step, Sleep):
                await between(subject)
        if isinstance(step, Finished):
            return step
        await sleep(step.seconds)

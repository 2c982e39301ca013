"""The wait state machine: after each poll, sleep how long or finish how, without doing any I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from airflow_autopilot.core.clock import Clock, default_clock, parse_timestamp
from airflow_autopilot.core.errors import is_transient
from airflow_autopilot.core.redaction import describe_error, scrub
from airflow_autopilot.core.waits.pace import (
    CALL_TIMEOUT_STEPS,
    DEFAULT_MAX_BACKOFF_SECONDS,
    MIN_CALL_SECONDS,
    backoff_delay,
    floor_poll_interval,
    poll_delay,
)
from airflow_autopilot.exceptions import AutopilotJobFailed, AutopilotWaitTimeout

if TYPE_CHECKING:
    import logging

EventStatus = Literal["success", "failure", "timeout", "error"]
EVENT_STATUSES: frozenset[str] = frozenset({"success", "failure", "timeout", "error"})
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

    A driver (:func:`~.loop.drive` for blocking code, :func:`~.loop.drive_async` for triggers, or a sensor's
    pokes) makes the calls and feeds each result to :meth:`on_result` and each error to
    :meth:`on_error`. Subclasses say what success, failure and progress mean.

    :param what: the subject in messages, e.g. ``Autopilot job 'churn-1'``.
    :param poll_interval: seconds between regular polls (plus up to 10 % jitter).
    :param timeout: give up this many seconds from now; ``None`` waits until ``deadline``.
    :param deadline: give up at this time (UTC); ignored when ``timeout`` is given.
    :param max_backoff: cap on the sleep after repeated transient errors.
    :param log: logger for progress and tolerated errors.
    :param clock: what the deadline is read from (default: :func:`~airflow_autopilot.core.clock.default_clock`).
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
        clock: Clock | None = None,
    ) -> None:
        self.what = what
        self.poll_interval = floor_poll_interval(poll_interval, log, what)
        self.max_backoff = max_backoff
        self.log = log
        self.clock = clock or default_clock()
        self._timeout = timeout
        self.deadline = (
            self.clock.now() + timedelta(seconds=timeout)
            if timeout is not None
            else parse_timestamp(deadline)
        )
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
        return (self.deadline - self.clock.now()).total_seconds()

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

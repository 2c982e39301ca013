"""How fast and how long a wait polls: the poll-interval floor, jittered delays and backoff, and the
time budget (botocore timeouts and attempts) of each call.
"""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

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


# --- the rule for a poll interval --------------------------------------------------------------------
def poll_interval_errors(value: Any, field: str = "poll_interval") -> list[str]:
    """
    The one rule for a poll interval (``poll_interval``, ``poke_interval``): a finite number of
    seconds, 0 or more (at most 100 years). 0 is allowed, as Airflow allows ``poke_interval=0``: a
    poll interval only paces the wait, and every wait raises one under
    :func:`min_poll_interval` to that floor, with a warning. docs/operators.md states this rule.

    :param value: the parameter.
    :param field: the parameter name, for messages.
    :return: the problems, each naming ``field`` and the rule; empty when it is fine.
    """
    from airflow_autopilot.core.validation import seconds_errors

    return seconds_errors(value, field, allow_zero=True)


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

"""Time for the whole package: the one timestamp parser, the one duration formatter and the
injectable :class:`Clock` that every wait, trigger, poller and the emulator read.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Protocol, runtime_checkable


# --- timestamps -----------------------------------------------------------------------------------
def parse_timestamp(value: object) -> datetime | None:
    """
    A SageMaker, XCom or Airflow timestamp as an aware UTC ``datetime``.

    Accepts a ``datetime`` (naive is taken as UTC; an offset is converted to UTC), an ISO 8601
    string (``Z``, an offset or none, which means UTC), or a number of POSIX seconds (as a JSON
    wire format may carry). ``None`` gives ``None``.

    The edge behaviour, the same for every caller: anything else (a string that is not ISO 8601,
    a bool, NaN, an out-of-range number, another type) raises :class:`ValueError` naming the value;
    nothing malformed turns silently into ``None``.

    :param value: the timestamp.
    :raises ValueError: for a value that is not a timestamp.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 timestamp") from None
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            if not math.isfinite(value):
                raise ValueError
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise ValueError(f"{value!r} is not a timestamp in POSIX seconds") from None
    else:
        raise ValueError(f"{value!r} ({type(value).__name__}) is not a timestamp")
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# --- durations ------------------------------------------------------------------------------------
def format_duration(seconds: float) -> str:
    """
    A duration for people: ``12.3s`` under a minute, ``12m31s`` under an hour, ``1h02m03s`` beyond
    (negative values count as 0).

    :param seconds: the duration in seconds.
    """
    seconds = max(0.0, float(seconds))
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


# --- the clock ------------------------------------------------------------------------------------
@runtime_checkable
class Clock(Protocol):
    """
    What a wait reads the time from and sleeps on. :data:`SYSTEM_CLOCK` is the real one; tests pass
    another (the emulator's, :class:`airflow_autopilot.emulator.settings.EmulatorClock`) to the
    waits, triggers and poller, or make it the default with :func:`clock_in_use`.
    """

    def now(self) -> datetime:
        """The current time, aware UTC (deadlines, grace periods, elapsed time)."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back (pacing between calls)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (the blocking waits)."""
        ...

    async def sleep_async(self, seconds: float) -> None:
        """Sleep for ``seconds`` on the event loop (triggers and the poller)."""
        ...


class SystemClock:
    """The real clock: the wall clock, ``time.monotonic``, ``time.sleep`` and ``asyncio.sleep``."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    async def sleep_async(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


#: The real clock.
SYSTEM_CLOCK: Clock = SystemClock()
_default: Clock = SYSTEM_CLOCK


def default_clock() -> Clock:
    """The clock a wait uses when it is given none: :data:`SYSTEM_CLOCK` unless :func:`clock_in_use`
    says otherwise."""
    return _default


@contextmanager
def clock_in_use(clock: Clock) -> Iterator[Clock]:
    """
    Make ``clock`` the process's default clock inside the ``with`` block (tests: waits built deep
    inside an operator or a hook then run on it); the previous default comes back afterwards.

    :param clock: the clock to use.
    """
    global _default
    previous, _default = _default, clock
    try:
        yield clock
    finally:
        _default = previous


class ManualClock:
    """
    A clock that moves only when told to (or when slept on, by the time slept): for tests and for
    replaying a wait step by step.

    :param start: the time it starts at (aware; default 2026-01-01 UTC).
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=timezone.utc)
        self._monotonic = 0.0
        #: Every sleep asked of this clock, in order.
        self.slept: list[float] = []

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward."""
        self._now += timedelta(seconds=seconds)
        self._monotonic += seconds

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.advance(max(0.0, seconds))

    async def sleep_async(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)

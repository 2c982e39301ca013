"""Process-wide emulator settings: stage duration, candidate cap and the emulator clock (also as a
:class:`~airflow_autopilot.core.clock.Clock` that waits can run on: :data:`CLOCK`)."""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

#: Seconds each lifecycle stage lasts when nothing else is configured.
DEFAULT_STAGE_SECONDS = 0.5
#: Candidates generated when the request gives no ``MaxCandidates``.
DEFAULT_MAX_CANDIDATES = 5
#: Upper bound on generated candidates when neither :func:`configure` nor the env var sets one.
DEFAULT_CANDIDATE_CAP = 20

ENV_STAGE_SECONDS = "AUTOPILOT_EMULATOR_STAGE_SECONDS"
ENV_MAX_CANDIDATES = "AUTOPILOT_EMULATOR_MAX_CANDIDATES"

_lock = threading.Lock()
_stage_seconds: float | None = None
_max_candidates: int | None = None
_clock_offset = 0.0


def configure(stage_seconds: float | None = None, max_candidates: int | None = None) -> None:
    """Override the emulator defaults for jobs created from now on (in this process).

    :param stage_seconds: seconds per lifecycle stage; ``None`` leaves the current value.
    :param max_candidates: cap on candidates per job; ``None`` leaves the current value.
    """
    global _stage_seconds, _max_candidates
    # Both checked before either is applied: a bad call changes nothing.
    if stage_seconds is not None and not is_positive_number(stage_seconds):
        raise ValueError(f"stage_seconds: {stage_seconds!r} must be a positive, finite number")
    if max_candidates is not None and (
        isinstance(max_candidates, bool) or not isinstance(max_candidates, int) or max_candidates < 1
    ):
        raise ValueError(f"max_candidates: {max_candidates!r} must be an integer of at least 1")
    with _lock:
        if stage_seconds is not None:
            _stage_seconds = float(stage_seconds)
        if max_candidates is not None:
            _max_candidates = int(max_candidates)


def is_positive_number(value: object) -> bool:
    """Whether ``value`` is a positive, finite int or float (not a bool, NaN or infinity).

    :param value: the value to check.
    """
    return (
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def snapshot() -> tuple[float | None, int | None, float]:
    """Return the current overrides and clock offset, for :func:`restore`."""
    with _lock:
        return _stage_seconds, _max_candidates, _clock_offset


def restore(state: tuple[float | None, int | None, float]) -> None:
    """Restore overrides and clock offset saved by :func:`snapshot`.

    :param state: the value :func:`snapshot` returned.
    """
    global _stage_seconds, _max_candidates, _clock_offset
    with _lock:
        _stage_seconds, _max_candidates, _clock_offset = state


def _positive_env(name: str, cast: Callable[[str], Any]) -> Any:
    """The environment variable ``name`` as a positive number, or ``None`` when unset or invalid."""
    try:
        value = cast(os.environ.get(name, ""))
    except ValueError:
        return None
    return value if is_positive_number(value) else None


def stage_seconds() -> float:
    """Return the configured seconds per stage: :func:`configure`, else ``$AUTOPILOT_EMULATOR_STAGE_SECONDS``,
    else :data:`DEFAULT_STAGE_SECONDS`. A job's ``autopilot-emulator:stage-seconds`` tag beats all three.
    """
    if _stage_seconds is not None:
        return _stage_seconds
    return _positive_env(ENV_STAGE_SECONDS, float) or DEFAULT_STAGE_SECONDS


def candidate_cap() -> int:
    """Return the cap on candidates per job (configure() > env var > :data:`DEFAULT_CANDIDATE_CAP`)."""
    if _max_candidates is not None:
        return _max_candidates
    return _positive_env(ENV_MAX_CANDIDATES, int) or DEFAULT_CANDIDATE_CAP


def advance_time(seconds: float) -> None:
    """Move the emulator clock forward, so jobs progress without sleeping.

    :param seconds: how far to jump; jobs see the jump on their next request.
    """
    global _clock_offset
    if not is_positive_number(seconds) and seconds != 0:
        raise ValueError(
            f"seconds: {seconds!r} must be a finite number of at least 0 (the clock only moves forward)"
        )
    with _lock:
        _clock_offset += seconds


def now() -> float:
    """Return the emulator clock as a POSIX timestamp (wall clock plus :func:`advance_time`)."""
    return time.time() + _clock_offset


def to_datetime(timestamp: float) -> datetime:
    """Convert an emulator timestamp to a naive UTC datetime, like moto's own ``utcnow()``.

    Naive UTC, as moto keeps its resources' times (the emulator's ListAutoMLJobs compares in it).

    :param timestamp: POSIX seconds.
    """
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).replace(tzinfo=None)


class EmulatorClock:
    """
    The emulator's clock as a :class:`~airflow_autopilot.core.clock.Clock`: ``now()`` and
    ``monotonic()`` read it, and a sleep moves it forward at once instead of waiting, so a wait run
    on it (``clock=CLOCK``, or ``with clock_in_use(CLOCK)``) follows emulated jobs through their
    stages without sleeping through them.
    """

    def now(self) -> datetime:
        return datetime.fromtimestamp(now(), tz=timezone.utc)

    def monotonic(self) -> float:
        return now()

    def sleep(self, seconds: float) -> None:
        advance_time(max(0.0, seconds))

    async def sleep_async(self, seconds: float) -> None:
        advance_time(max(0.0, seconds))
        await asyncio.sleep(0)  # a turn for the rest of the loop, as a real sleep gives


#: The emulator's clock.
CLOCK = EmulatorClock()

"""The emulator's clock as a Clock: sleeping on it moves the emulator's time instead of waiting."""

from __future__ import annotations

import asyncio
import time

from airflow_autopilot.core.clock import Clock
from airflow_autopilot.emulator import settings


def test_sleeping_on_the_emulator_clock_moves_it_at_once():
    saved = settings.snapshot()
    try:
        clock = settings.CLOCK
        assert isinstance(clock, Clock)
        before, started = clock.monotonic(), time.monotonic()
        clock.sleep(3600)
        asyncio.run(clock.sleep_async(600))
        assert time.monotonic() - started < 5  # no real hour passed
        assert clock.monotonic() - before >= 4200
        assert abs(clock.now().timestamp() - settings.now()) < 1 and clock.now().tzinfo is not None
    finally:
        settings.restore(saved)

"""The one time module: the timestamp parser's forms and edges, the duration formatter, the clock seam."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from airflow_autopilot.core.clock import (
    SYSTEM_CLOCK,
    Clock,
    ManualClock,
    clock_in_use,
    default_clock,
    format_duration,
    parse_timestamp,
)


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-30T10:00:00Z",
        "2026-11-30T10:00:00+00:00",
        "2026-11-30T11:00:00+01:00",
        "2026-11-30T10:00:00",
        datetime(2026, 11, 30, 10, 0),
        datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc),
    ],
)
def test_parse_timestamp_reads_every_form_airflow_and_aws_hand_over(value):
    result = parse_timestamp(value)
    assert result == datetime(2026, 11, 30, 10, 0, tzinfo=timezone.utc)
    assert result.tzinfo is not None


def test_parse_timestamp_keeps_none():
    assert parse_timestamp(None) is None


def test_parse_timestamp_converts_offsets_to_utc_and_reads_posix_seconds():
    east = parse_timestamp("2026-11-30T11:00:00+01:00")
    assert east.utcoffset() == timedelta(0) and east.isoformat() == "2026-11-30T10:00:00+00:00"
    assert parse_timestamp(1_796_119_200) == datetime(2026, 12, 1, 10, 0, tzinfo=timezone.utc)
    assert parse_timestamp(1_796_119_200.5).microsecond == 500_000


@pytest.mark.parametrize("value", ["", "yesterday", "2026-13-01T00:00:00Z", True, float("nan"), 1e20, [], {}])
def test_parse_timestamp_raises_a_value_error_naming_anything_malformed(value):
    with pytest.raises(ValueError, match="timestamp"):
        parse_timestamp(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-3, "0.0s"), (0, "0.0s"), (12.34, "12.3s"), (60, "1m00s"), (751, "12m31s"), (3723, "1h02m03s")],
)
def test_format_duration_is_the_one_duration_format(seconds, text):
    assert format_duration(seconds) == text


def test_the_system_clock_is_the_default_and_clock_in_use_swaps_it_for_a_block():
    assert default_clock() is SYSTEM_CLOCK and isinstance(SYSTEM_CLOCK, Clock)
    assert abs((SYSTEM_CLOCK.now() - datetime.now(timezone.utc)).total_seconds()) < 5
    manual = ManualClock()
    with clock_in_use(manual) as used:
        assert used is manual and default_clock() is manual
        with pytest.raises(RuntimeError):
            with clock_in_use(SYSTEM_CLOCK):
                assert default_clock() is SYSTEM_CLOCK
                raise RuntimeError
        assert default_clock() is manual  # restored after an error too
    assert default_clock() is SYSTEM_CLOCK


def test_a_manual_clock_moves_by_what_is_slept_on_it():
    clock = ManualClock(datetime(2026, 1, 1, tzinfo=timezone.utc))
    clock.sleep(5)
    asyncio.run(clock.sleep_async(2.5))
    assert clock.slept == [5, 2.5] and clock.monotonic() == 7.5
    assert clock.now() == datetime(2026, 1, 1, 0, 0, 7, 500_000, tzinfo=timezone.utc)


def test_no_module_but_core_clock_parses_timestamps():
    """One parser: everything else calls parse_timestamp (the emulator's data reader parses the
    time-series column of a training CSV, user data rather than a SageMaker timestamp)."""
    from pathlib import Path

    package = Path(__file__).resolve().parents[2] / "airflow_autopilot"
    parsers = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if path != package / "core" / "clock.py"
        and not (path.parent.name == "emulator" and path.name.startswith("data"))
        and "fromisoformat(" in path.read_text()
    ]
    assert parsers == []

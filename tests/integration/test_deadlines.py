"""
Every wait ends within its timeout plus one poll interval, however the endpoint misbehaves: a server
that accepts connections and never answers, and a port where nothing listens. The hooks keep
botocore's default retries and timeouts here (no ONE_ATTEMPT), since those are what used to overrun.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_autopilot.core.job import WaitCriteria
from airflow_autopilot.emulator.server import airflow_conn_value
from airflow_autopilot.exceptions import AutopilotError, AutopilotWaitTimeout
from airflow_autopilot.hooks import AutopilotHook
from airflow_autopilot.operators import AutopilotCreateJobOperator
from airflow_autopilot.sensors import AutopilotJobSensor
from airflow_autopilot.triggers import AutopilotEndpointTrigger, AutopilotJobTrigger
from tests.helpers import create_kwargs, make_context
from tests.network_faults import HangingServer, refused_url

CONN_ID = "deadline_test"
#: Scheduling noise allowed on a loaded test machine, on top of timeout + one poll interval.
SLACK = 2.5
#: The fast cases' timeout: any deadline far below botocore's 60 s timeouts shows an overrun.
TIMEOUT = 0.3


@pytest.fixture(params=["hanging", "refused"])
def bad_endpoint(request, monkeypatch) -> Iterator[str]:
    """An Airflow AWS connection (``deadline_test``) whose endpoint hangs or refuses connections."""
    server = HangingServer() if request.param == "hanging" else None
    url = server.url if server else refused_url()
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", airflow_conn_value(url))
    try:
        yield request.param
    finally:
        if server:
            server.close()


def hook() -> AutopilotHook:
    return AutopilotHook(aws_conn_id=CONN_ID)


def assert_within(started: float, timeout: float, poll: float) -> None:
    elapsed = time.monotonic() - started
    assert elapsed <= timeout + poll + SLACK, f"the wait took {elapsed:.1f}s for a {timeout}s timeout"


# --- fast cases: 0.3 s timeouts -----------------------------------------------------------------
def test_blocking_job_wait_ends_on_time(bad_endpoint):
    started = time.monotonic()
    with pytest.raises(AutopilotWaitTimeout, match="never described"):
        hook().wait_for_job("deadline-job", WaitCriteria(), poll_interval=0.2, timeout=TIMEOUT)
    assert_within(started, TIMEOUT, 0.2)


def test_poke_sensor_ends_on_time(bad_endpoint):
    sensor = AutopilotJobSensor(
        task_id="wait",
        job_name="deadline-job",
        aws_conn_id=CONN_ID,
        poke_interval=0.2,
        timeout=TIMEOUT,
        mode="poke",
        deferrable=False,
    )
    started = time.monotonic()
    with pytest.raises(AutopilotWaitTimeout):
        sensor.execute(make_context(sensor))
    assert_within(started, TIMEOUT, 0.2)


def test_create_operator_deferrable_first_check_is_bounded_by_max_wait(bad_endpoint):
    op = AutopilotCreateJobOperator(
        task_id="create",
        aws_conn_id=CONN_ID,
        deferrable=True,
        **create_kwargs(poll_interval=0.2, max_wait_seconds=TIMEOUT),
    )
    started = time.monotonic()
    # The first check gives up in time; then the trigger waits on, or (on a loaded machine) the
    # deadline has already passed and the wait ends with its timeout.
    with pytest.raises((TaskDeferred, AutopilotWaitTimeout)):
        op.defer_until_done("deadline-job", "arn", datetime.now(timezone.utc))
    assert_within(started, TIMEOUT, 0.2)


def test_endpoint_wait_ends_on_time(bad_endpoint):
    started = time.monotonic()
    with pytest.raises(AutopilotError, match="Timed out"):
        hook().wait_for_endpoint("deadline-ep", poll_interval=0.2, timeout=TIMEOUT)
    assert_within(started, TIMEOUT, 0.2)


def assert_trigger_times_out(trigger, timeout: float, poll: float) -> None:
    """Run a trigger to its one event: a timeout, within its deadline plus one poll interval."""

    async def main():
        return [event.payload async for event in trigger.run()]

    started = time.monotonic()
    events = asyncio.run(main())
    assert_within(started, timeout, poll)
    assert [e["status"] for e in events] == ["timeout"]


def _deadline(seconds: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=seconds)).isoformat()


@pytest.mark.parametrize("coalesce", [True, False], ids=["coalesced", "own-describes"])
def test_job_trigger_ends_on_time(bad_endpoint, coalesce):
    trigger = AutopilotJobTrigger(
        "deadline-job",
        aws_conn_id=CONN_ID,
        poll_interval=0.2,
        timeout_at=_deadline(TIMEOUT),
        coalesce=coalesce,
    )
    assert_trigger_times_out(trigger, TIMEOUT, 0.2)


def test_endpoint_trigger_ends_on_time(bad_endpoint):
    trigger = AutopilotEndpointTrigger(
        "deadline-ep", aws_conn_id=CONN_ID, poll_interval=0.2, timeout_at=_deadline(TIMEOUT)
    )
    assert_trigger_times_out(trigger, TIMEOUT, 0.2)


# --- slow cases: the timeouts of the original report ---------------------------------------------
@pytest.mark.slow
def test_poke_sensor_with_a_15s_timeout_ends_on_time(bad_endpoint):
    sensor = AutopilotJobSensor(
        task_id="wait",
        job_name="deadline-job",
        aws_conn_id=CONN_ID,
        poke_interval=2,
        timeout=15,
        mode="poke",
        deferrable=False,
    )
    started = time.monotonic()
    with pytest.raises(AutopilotWaitTimeout):
        sensor.execute(make_context(sensor))
    assert_within(started, 15, 2)


@pytest.mark.slow
def test_job_trigger_with_a_10s_deadline_ends_on_time(bad_endpoint):
    trigger = AutopilotJobTrigger(
        "deadline-job", aws_conn_id=CONN_ID, poll_interval=2, timeout_at=_deadline(10)
    )
    assert_trigger_times_out(trigger, 10, 2)


@pytest.mark.slow
def test_blocking_wait_with_a_short_read_timeout_ends_on_time(bad_endpoint):
    slow_hook = AutopilotHook(aws_conn_id=CONN_ID, config={"read_timeout": 3, "connect_timeout": 3})
    started = time.monotonic()
    with pytest.raises(AutopilotWaitTimeout):
        slow_hook.wait_for_job("deadline-job", WaitCriteria(), poll_interval=1, timeout=5)
    assert_within(started, 5, 1)

"""
Fault-injection suite, deferrable half: generated outcomes and AWS faults through the trigger.

The trigger runs on a real event loop with aiobotocore against the emulator server; faults are real
AWS error responses (throttling bursts of up to 10, HTTP 5xx, ResourceNotFound right after
creation). Some cases restart the triggerer mid-wait: the trigger is cancelled, rebuilt from its own
``serialize()`` output and run again, as a triggerer does after a restart. Every case must yield
exactly one event carrying the job's true outcome; when the server restarts and loses the job
before that, the event is "not found" within ``not_found_grace_seconds``, in both kinds of wait.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airflow_autopilot.core.defaults import DEFAULT_NOT_FOUND_GRACE_SECONDS
from airflow_autopilot.core.job import AutopilotJob, WaitCriteria
from airflow_autopilot.core.waits.job import hand_off
from airflow_autopilot.hooks import AutopilotHook
from airflow_autopilot.triggers import AutopilotJobTrigger
from tests import emulated_time
from tests.system.test_fault_suite import (
    FULL_SUITE,
    NETWORK_SETTINGS,
    OUTCOMES,
    SUITE_SETTINGS,
    create_case_job,
)

#: Large and generated: the Airflow-version legs other than the main one may deselect it (-m).
pytestmark = pytest.mark.main_leg_only

STAGE_SECONDS = 0.04
POLL_SECONDS = 0.02

_names = itertools.count()

cases = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(sorted(OUTCOMES)),
        "throttle": st.integers(min_value=0, max_value=10),
        "server_errors": st.integers(min_value=0, max_value=4),
        "not_found": st.integers(min_value=0, max_value=3),
        # seconds after which the triggerer "restarts" (None: no restart)
        "restart_after": st.none() | st.floats(min_value=0.0, max_value=0.4),
    }
)


def _rebuild(trigger: AutopilotJobTrigger) -> AutopilotJobTrigger:
    path, kwargs = trigger.serialize()
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


async def _run_once(trigger: AutopilotJobTrigger, limit: float | None) -> list:
    events = []

    async def consume():
        async for event in trigger.run():
            events.append(event.payload)

    if limit is None:
        await asyncio.wait_for(consume(), timeout=60)
    else:
        try:
            await asyncio.wait_for(consume(), timeout=limit)
        except asyncio.TimeoutError:
            return []  # cancelled mid-wait, as at a triggerer restart
    return events


def _case(outcome: str, throttle: int, server_errors: int, not_found: int, restart_after: float | None):
    return {
        "outcome": outcome,
        "throttle": throttle,
        "server_errors": server_errors,
        "not_found": not_found,
        "restart_after": restart_after,
    }


# The explicit examples (in ``make test`` and ``make test-all``): every outcome, each fault kind at
# its largest, and restarts before the first poll, mid-wait and never.
@settings(max_examples=40 if FULL_SUITE else 4, **SUITE_SETTINGS)
@given(case=cases)
@example(case=_case("success", throttle=10, server_errors=4, not_found=3, restart_after=0.1))
@example(case=_case("failed", throttle=3, server_errors=1, not_found=1, restart_after=None))
@example(case=_case("stopped", throttle=0, server_errors=2, not_found=0, restart_after=0.0))
@example(case=_case("runtime-limit", throttle=5, server_errors=0, not_found=2, restart_after=None))
@example(
    case=_case("runtime-limit-no-candidate", throttle=1, server_errors=3, not_found=0, restart_after=0.3)
)
@example(case=_case("deploy-error", throttle=7, server_errors=4, not_found=3, restart_after=0.2))
def test_deferred_wait_ends_with_the_true_outcome(case, autopilot_emulator_server, make_job):
    server = autopilot_emulator_server
    name = f"fzd-{next(_names)}"
    create_case_job(make_job, name, case["outcome"], STAGE_SECONDS)
    server.inject_faults(
        name, throttle=case["throttle"], server_errors=case["server_errors"], not_found=case["not_found"]
    )
    trigger = AutopilotJobTrigger(
        name,
        aws_conn_id="aws_default",
        poll_interval=POLL_SECONDS,
        max_backoff=0.1,
        candidate_interval=0,
        botocore_config={"retries": {"total_max_attempts": 1}},  # every fault reaches the trigger
    )

    async def main():
        events = []
        if case["restart_after"] is not None:
            events = await _run_once(trigger, case["restart_after"])
        if not events:
            events = await _run_once(_rebuild(trigger), None)
        return events

    events = emulated_time.run(main())  # the emulator's clock: restarts and backoffs without sleeping
    assert len(events) == 1, events  # exactly one event, none lost
    event = events[0]

    server.clear_faults()
    server.advance(100)
    job = AutopilotHook(aws_conn_id="aws_default").get_job(name)
    assert job.is_terminal
    assert event["status"] == OUTCOMES[case["outcome"]] == WaitCriteria().verdict(job), event
    assert event["job_name"] == name
    assert event["summary"]["AutoMLJobName"] == name
    if event["status"] == "failure":
        assert job.describe_state() in event["message"]


# --- a server restart that loses its state: the job is gone ---------------------------------------
restart_cases = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(sorted(OUTCOMES)),
        "coalesce": st.booleans(),
        # emulated seconds into the wait when the server restarts with every job gone
        "server_restart_at": st.floats(min_value=0.0, max_value=0.3),
        # seconds after which the triggerer restarts (None: no restart)
        "restart_after": st.none() | st.floats(min_value=0.0, max_value=0.4),
    }
)


@settings(max_examples=40 if FULL_SUITE else 4, **SUITE_SETTINGS)
@given(case=restart_cases)
@example(case={"outcome": "success", "coalesce": True, "server_restart_at": 0.05, "restart_after": None})
@example(case={"outcome": "failed", "coalesce": False, "server_restart_at": 0.1, "restart_after": 0.0})
@example(case={"outcome": "deploy-error", "coalesce": True, "server_restart_at": 0.0, "restart_after": 0.2})
def test_a_deferred_wait_on_a_job_lost_in_a_server_restart_ends_not_found_within_the_grace(
    case, autopilot_emulator_server, make_job
):
    """The trigger starts from the task's hand-off, as a deferring task's does; once the server has
    lost the job, the wait ends "not found" within the grace (emulated seconds), coalesced or not."""
    server = autopilot_emulator_server
    name = f"fzdr-{next(_names)}"
    create_case_job(make_job, name, case["outcome"], STAGE_SECONDS)
    seen = AutopilotJob.from_describe(server.client().describe_auto_ml_job(AutoMLJobName=name))
    trigger = AutopilotJobTrigger(
        name,
        aws_conn_id="aws_default",
        poll_interval=POLL_SECONDS,
        max_backoff=0.1,
        candidate_interval=0,
        coalesce=case["coalesce"],
        last_seen=hand_off(seen),
        botocore_config={"retries": {"total_max_attempts": 1}},
    )
    times: dict[str, float] = {}

    async def restart_server():
        await asyncio.sleep(case["server_restart_at"])
        server.reset()
        times["restart"] = asyncio.get_running_loop().time()

    async def main():
        restarter = asyncio.create_task(restart_server())
        events = []
        if case["restart_after"] is not None:
            events = await _run_once(trigger, case["restart_after"])
        if not events:
            events = await _run_once(_rebuild(trigger), None)
        times["event"] = asyncio.get_running_loop().time()
        restarter.cancel()
        return events

    events = emulated_time.run(main())
    assert len(events) == 1, events
    event = events[0]
    if "restart" not in times:  # the job ended, and the wait with it, before the restart
        assert event["status"] == OUTCOMES[case["outcome"]], event
        return
    if event["status"] != "error":  # the verdict's describe came just before the restart
        assert event["status"] == OUTCOMES[case["outcome"]], event
        return
    assert "not found" in event["message"], event
    assert times["event"] - times["restart"] <= DEFAULT_NOT_FOUND_GRACE_SECONDS, times


# --- a real network that hangs or refuses for a while, then heals --------------------------------
NETWORK_TIMEOUT = 8.0
NETWORK_POLL = 0.2

network_cases = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(["success", "failed", "stopped"]),
        # The trigger's own describes: the shared poller's calls are its own (docs/sensor.md).
        "coalesce": st.just(False),
        # (kind, start, seconds): every window is over well before the trigger's deadline
        "windows": st.lists(
            st.tuples(
                st.sampled_from(["hang", "refuse"]),
                st.floats(min_value=0.0, max_value=1.5),
                st.floats(min_value=0.1, max_value=1.0),
            ),
            max_size=3,
        ),
    }
)


@settings(**NETWORK_SETTINGS)  # real time: the explicit examples in ``make test``
@given(case=network_cases)
# Coalesced: the windows end before the trigger hands over to the shared poller.
@example(case={"outcome": "success", "coalesce": True, "windows": [("hang", 0.0, 0.5), ("refuse", 0.6, 0.4)]})
@example(case={"outcome": "failed", "coalesce": False, "windows": [("refuse", 0.0, 0.4), ("hang", 0.5, 0.5)]})
def test_deferred_wait_through_a_network_that_hangs_or_refuses(
    case, autopilot_emulator_server, make_job, monkeypatch
):
    """aiobotocore with its default settings: the trigger's deadline alone bounds every call."""
    import time
    from datetime import datetime, timedelta, timezone

    from tests.network_faults import faulty_network

    server = autopilot_emulator_server
    name = f"fzdn-{next(_names)}"
    create_case_job(make_job, name, case["outcome"], 0.1)
    proxy = faulty_network(server.port, case["windows"], monkeypatch)
    trigger = AutopilotJobTrigger(
        name,
        aws_conn_id="faulty_network",
        poll_interval=NETWORK_POLL,
        timeout_at=(datetime.now(timezone.utc) + timedelta(seconds=NETWORK_TIMEOUT)).isoformat(),
        candidate_interval=0,
        coalesce=case["coalesce"],
    )
    proxy.start_clock()
    started = time.monotonic()
    try:
        events = asyncio.run(_run_once(trigger, None))
    finally:
        proxy.close()
    elapsed = time.monotonic() - started
    assert len(events) == 1, events
    assert events[0]["status"] == OUTCOMES[case["outcome"]], events[0]
    assert elapsed < NETWORK_TIMEOUT, f"{elapsed:.1f}s: the network healed long before the deadline"

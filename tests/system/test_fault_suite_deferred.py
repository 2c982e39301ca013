"""
Fault-injection suite, deferrable half: generated outcomes and AWS faults through the trigger.

The trigger runs on a real event loop with aiobotocore against the emulator server; faults are real
AWS error responses (throttling bursts of up to 10, HTTP 5xx, ResourceNotFound right after
creation). Some cases restart the triggerer mid-wait: the trigger is cancelled, rebuilt from its own
``serialize()`` output and run again, as a triggerer does after a restart. Every case must yield
exactly one event carrying the job's true outcome.
"""

from __future__ import annotations

import asyncio
import importlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_autopilot.core.job import WaitCriteria
from airflow_autopilot.hooks import AutopilotHook
from airflow_autopilot.triggers import AutopilotJobTrigger
from tests.system.test_fault_suite import OUTCOMES, SUITE_SETTINGS, create_case_job

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


@settings(max_examples=40, **SUITE_SETTINGS)
@given(case=cases)
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

    events = asyncio.run(main())
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

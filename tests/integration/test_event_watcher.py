"""
AutopilotJobCompletedTrigger against the emulator server: one event per finished job created by
"someone else" (plain boto3), across restarts after each event, a triggerer restart, two watchers
on one asset (failover) and downtime; the poller's calls stay at the floor with waits and watchers.

Job progress and the claim's settle pause run on the emulator clock (``emulated_clock``): no sleeping.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

import pytest

from airflow_autopilot.aio.clients import client_key
from airflow_autopilot.aio.poller import shared_poller
from airflow_autopilot.core.events import ack_tag_key
from airflow_autopilot.event_triggers import AutopilotJobCompletedTrigger
from airflow_autopilot.triggers import AutopilotJobTrigger
from tests.conftest import ONE_ATTEMPT, emulator_client, job_request
from tests.helpers import fast_trigger

pytestmark = pytest.mark.skipif(
    not hasattr(__import__("airflow.triggers.base", fromlist=["x"]), "BaseEventTrigger"),
    reason="event-driven scheduling needs Airflow 3",
)


def watcher(**kwargs) -> AutopilotJobCompletedTrigger:
    kwargs.setdefault("name_prefix", "evt-")
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("botocore_config", ONE_ATTEMPT)
    kwargs.setdefault("settle_seconds", 1.0)
    kwargs.setdefault("lookback_seconds", 3600.0)
    return AutopilotJobCompletedTrigger(**kwargs)


def create(server, *names: str, **overrides) -> None:
    sagemaker = emulator_client("sagemaker", server.endpoint_url)
    for name in names:
        sagemaker.create_auto_ml_job(**job_request(name, **overrides))


async def collect(triggers, *, count: int, limit: float = 10.0, stop_after_each: bool = False) -> list[dict]:
    """Run the watchers in one loop (as one triggerer does) until ``count`` events or ``limit`` seconds;
    with ``stop_after_each``, each watcher returns after its first event (a restart per event)."""
    events: list[dict] = []

    async def consume(trigger):
        async for event in trigger.run():
            events.append(event.payload)
            if stop_after_each:
                return

    tasks = [asyncio.create_task(consume(t)) for t in triggers]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and len(events) < count and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    # Let a late duplicate show up: a few more cycles.
    grace = time.monotonic() + 0.5
    while time.monotonic() < grace and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
    for task in tasks:
        task.cancel()
    for task in tasks:
        with suppress(asyncio.CancelledError):
            await task
    return events


def test_one_event_per_finished_job_with_its_summary(server, emulated_clock):
    create(server, "evt-a1", "evt-a2", "other-a3")
    events = asyncio.run(collect([watcher()], count=2))
    assert sorted(e["job_name"] for e in events) == ["evt-a1", "evt-a2"]
    event = events[0]
    assert event["status"] == "Completed"
    assert event["job_arn"].endswith(f"automl-job/{event['job_name']}")
    assert event["best_candidate"] and event["objective_metric"]
    assert isinstance(event["objective_value"], float)
    tags = emulator_client("sagemaker", server.endpoint_url).list_tags(ResourceArn=event["job_arn"])["Tags"]
    assert ack_tag_key(watcher().watcher_id) in {t["Key"] for t in tags}

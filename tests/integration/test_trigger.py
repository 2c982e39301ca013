"""AutopilotJobTrigger against the emulator server (aiobotocore needs a real HTTP endpoint)."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone

import pytest

from airflow_autopilot.aio import clients
from airflow_autopilot.hooks import AutopilotHook
from airflow_autopilot.triggers import AutopilotJobTrigger
from tests.conftest import ONE_ATTEMPT


async def collect(trigger: AutopilotJobTrigger) -> list:
    return [event async for event in trigger.run()]


def make_trigger(name: str, **kwargs) -> AutopilotJobTrigger:
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("botocore_config", ONE_ATTEMPT)
    kwargs.setdefault("max_backoff", 0.1)
    kwargs.setdefault("timeout_at", (datetime.now(timezone.utc) + timedelta(seconds=60)).isoformat())
    return AutopilotJobTrigger(name, **kwargs)


@pytest.mark.parametrize("coalesce", [True, False], ids=["shared-poller", "own-describes"])
async def test_success_yields_exactly_one_event_with_the_summary(server, make_job, coalesce):
    make_job("trig-ok", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 2}})
    server.reset_request_counts()
    events = await collect(make_trigger("trig-ok", coalesce=coalesce))
    counts = server.request_counts()
    # Coalesced, the job's progress comes from ListAutoMLJobs and only the first check and the
    # verdict need a describe; uncoalesced, there is one describe per poll.
    assert (counts.get("ListAutoMLJobs", 0) > 0) is coalesce
    if coalesce:
        assert counts["DescribeAutoMLJob"] <= 4
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success" and payload["job_name"] == "trig-ok"
    assert payload["summary"]["AutoMLJobStatus"] == "Completed"
    assert payload["summary"]["BestCandidateName"]
    assert clients.open_client_count() == 0  # the shared client is closed by its last user


@pytest.mark.parametrize(
    ("outcome", "texts"),
    [
        ("failed", ["Failed/Failed", "FailureReason:", "PartialFailure:"]),
        ("stopped", ["Stopped/Stopped"]),
        ("runtime-limit-no-candidate", ["MaxAutoMLJobRuntimeReached", "no BestCandidate"]),
    ],
)
async def test_terminal_failures_yield_a_failure_event_with_the_reason(server, make_job, outcome, texts):
    name = f"trig-{outcome}"[:32]
    make_job(name, outcome=outcome)
    events = await collect(make_trigger(name))
    assert len(events) == 1 and events[0].payload["status"] == "failure"
    for text in texts:
        assert text in events[0].payload["message"]
    assert events[0].payload["summary"]["AutoMLJobName"] == name


async def test_transient_faults_and_not_found_after_create_do_not_end_the_wait(server, make_job):
    make_job("trig-faults")
    server.inject_faults("trig-faults", throttle=3, server_errors=2, not_found=2)
    server.reset_request_counts()
    events = await collect(make_trigger("trig-faults"))
    assert [e.payload["status"] for e in events] == ["success"]
    assert server.request_counts()["DescribeAutoMLJob"] > 7


async def test_timeout_yields_a_timeout_event_with_the_last_state(server, make_job):
    make_job("emu-slow-trig")
    deadline = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    started = asyncio.get_running_loop().time()
    events = await collect(make_trigger("emu-slow-trig", timeout_at=deadline))
    assert asyncio.get_running_loop().time() - started < 5
    assert len(events) == 1 and events[0].payload["status"] == "timeout"
    assert "last seen InProgress/" in events[0].payload["message"]


async def test_missing_job_after_grace_yields_an_error_event(server):
    events = await collect(make_trigger("trig-missing", not_found_grace_seconds=0))
    assert len(events) == 1 and events[0].payload["status"] == "error"
    assert "ResourceNotFound" in events[0].payload["message"]


async def test_triggers_share_one_client_and_look_up_the_connection_off_the_loop(
    server, make_job, monkeypatch
):
    names = [f"trig-share-{i}" for i in range(5)]
    for name in names:
        make_job(name)
    created, lookup_threads = [], []
    original_conn, original_lookup = AutopilotHook.get_async_conn, AutopilotHook.get_connection

    async def counting_get_async_conn(self):
        created.append(self.aws_conn_id)
        return await original_conn(self)

    def recording_lookup(conn_id):
        lookup_threads.append(threading.get_ident())
        return original_lookup(conn_id)

    monkeypatch.setattr(AutopilotHook, "get_async_conn", counting_get_async_conn)
    monkeypatch.setattr(AutopilotHook, "get_connection", staticmethod(recording_lookup))
    peak = []

    async def watch():
        while True:
            peak.append(clients.open_client_count())
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(*(collect(make_trigger(n)) for n in names))
    watcher.cancel()
    assert [r[0].payload["status"] for r in results] == ["success"] * 5
    assert created == ["aws_default"]  # one client for five triggers
    assert max(peak) == 1 and clients.open_client_count() == 0
    assert lookup_threads and threading.get_ident() not in lookup_threads  # never on the event loop

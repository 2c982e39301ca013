"""
The coalesced poller against the emulator server, many waits in one event loop: calls at the floor,
list windows on the server's clock, registration without describes, the full-listing safety net,
jobs that disappear, the rate-limited fallback without ListAutoMLJobs, and the poll-interval floor.

Job progress comes from the emulator's movable clock, not from sleeping.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime, timedelta, timezone

import pytest

from airflow_autopilot.aio import poller as poller_module
from airflow_autopilot.aio.poller import LIST_PERMISSION, CoalescedPoller
from airflow_autopilot.core.clock import SYSTEM_CLOCK, SystemClock, clock_in_use, parse_timestamp
from airflow_autopilot.core.job import AutopilotJob, WaitCriteria, server_time
from airflow_autopilot.core.waits.job import from_hand_off, hand_off
from airflow_autopilot.core.waits.pace import MIN_POLL_INTERVAL_ENV
from airflow_autopilot.emulator import settings
from airflow_autopilot.emulator.responses import AutopilotResponse
from airflow_autopilot.triggers import AutopilotJobTrigger
from tests.conftest import job_request, upload_training_data
from tests.helpers import fast_trigger

#: Jobs that never change on their own (a stage lasts 28 emulated hours).
IDLE = {"autopilot-emulator:stage-seconds": "100000"}
#: Jobs that are Completed 80 emulated seconds after creation.
QUICK = {"autopilot-emulator:stage-seconds": "10"}


def create_jobs(server, names, tags) -> None:
    """Create V1 jobs through boto3, a few at a time (the training data is uploaded once)."""
    upload_training_data(server.endpoint_url)
    sagemaker = server.client()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda name: sagemaker.create_auto_ml_job(**job_request(name, tags=tags)), names))


def handed_off(server, name: str) -> dict:
    """What a sensor hands its trigger: its describe just before deferring, through JSON."""
    job = AutopilotJob.from_describe(server.client().describe_auto_ml_job(AutoMLJobName=name))
    return json.loads(json.dumps(hand_off(job)))


def handed_off_all(server, names) -> dict[str, dict]:
    """The hand-offs of many jobs at once, from ListAutoMLJobs pages (the same fields and server
    time a sensor's describe gives, at a fraction of the calls)."""
    wanted, found = set(names), {}
    pages = server.client().get_paginator("list_auto_ml_jobs").paginate(PaginationConfig={"PageSize": 100})
    for page in pages:
        observed_at = server_time(page)
        for row in page["AutoMLJobSummaries"]:
            if row["AutoMLJobName"] in wanted:
                job = AutopilotJob(raw=row, observed_at=observed_at)
                found[row["AutoMLJobName"]] = json.loads(json.dumps(hand_off(job)))
    assert found.keys() == wanted
    return found


@asynccontextmanager
async def emulator_client(server):
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    async with get_session().create_client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=AioConfig(retries={"mode": "standard", "max_attempts": 1}),  # the poller sees every fault
    ) as client:
        yield client


async def run_triggers(triggers, *, until=lambda events: False, advance=None, limit=20.0) -> dict:
    """Run triggers as a triggerer does (one event loop), moving the emulator clock with ``advance``
    every 0.1 s; return the payload per job of those that fired before ``limit`` or ``until(events)``."""
    events: dict = {}

    async def consume(trigger):
        async for event in trigger.run():
            events[trigger.job_name] = event.payload

    tasks = [asyncio.create_task(consume(t)) for t in triggers]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and not until(events) and not all(t.done() for t in tasks):
        await asyncio.sleep(0.1)
        if advance is not None:
            advance()
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return events


@pytest.fixture
def list_requests(monkeypatch):
    """Every ListAutoMLJobs request the emulator serves: (LastModifiedTimeAfter, emulator time)."""
    seen: list[tuple[datetime | None, datetime]] = []
    original = AutopilotResponse.list_auto_ml_jobs

    def recording(self):
        after = self._get_param("LastModifiedTimeAfter")
        if isinstance(after, (int, float)):
            after = datetime.fromtimestamp(after, timezone.utc)
        elif isinstance(after, datetime) and after.tzinfo is None:
            after = after.replace(tzinfo=timezone.utc)
        seen.append((after, datetime.fromtimestamp(settings.now(), timezone.utc)))
        return original(self)

    monkeypatch.setattr(AutopilotResponse, "list_auto_ml_jobs", recording)
    return seen


@pytest.fixture
def describe_times(monkeypatch):
    """``time.monotonic()`` of every DescribeAutoMLJob the emulator serves."""
    times: list[float] = []
    original = AutopilotResponse.describe_auto_ml_job

    def recording(self):
        times.append(time.monotonic())
        return original(self)

    monkeypatch.setattr(AutopilotResponse, "describe_auto_ml_job", recording)
    return times


# --- the floor ------------------------------------------------------------------------------------
async def _watch_until_verdicts(poller, client, names, criteria, advance, cycles):
    """Watch ``names`` (no hand-off) and drive the poller's cycles by hand; return verdicts."""
    results: dict = {}

    async def watch_one(name):
        async with poller.watch(name, criteria, 3600.0, client=client) as watch:
            while True:
                job = await watch.next()
                if criteria.verdict(job) != "waiting":
                    results[name] = (criteria.verdict(job), job)
                    return

    tasks = [asyncio.create_task(watch_one(n)) for n in names]
    await asyncio.sleep(0)
    for _ in range(cycles):
        await poller.cycle(client)
        await asyncio.sleep(0)
        if all(t.done() for t in tasks):
            break
        advance()
    await asyncio.gather(*tasks)
    return results


async def test_every_outcome_arrives_with_one_page_a_cycle_and_one_describe_per_ended_job(
    autopilot_emulator_server,
):
    server = autopilot_emulator_server
    names = [f"poll-ok-{i}" for i in range(20)] + ["emu-failed-poll", "emu-stopped-poll"]
    create_jobs(server, names, QUICK)
    server.reset_request_counts()
    poller = CoalescedPoller(run_loop=False)
    async with emulator_client(server) as client:
        results = await _watch_until_verdicts(
            poller, client, names, WaitCriteria(), lambda: server.advance(5), cycles=60
        )
    assert {n: v for n, (v, _) in results.items() if v != "success"} == {
        "emu-failed-poll": "failure",
        "emu-stopped-poll": "failure",
    }
    assert results["emu-failed-poll"][1].failure_reason
    counts = server.request_counts()
    # Fewer than 100 jobs change in any cycle: one page a cycle (the first a full listing, for
    # jobs registered without a hand-off), and a describe only for each verdict.
    assert counts["ListAutoMLJobs"] == poller.stats.cycles
    assert counts["DescribeAutoMLJob"] == len(names)


async def test_an_idle_batch_is_not_listed_again(autopilot_emulator_server, list_requests):
    """101 jobs launched together, then idle: one ListAutoMLJobs page a cycle, no describes."""
    server = autopilot_emulator_server
    names = [f"poll-idle-{i}" for i in range(101)]
    create_jobs(server, names, IDLE)
    server.advance(30)  # launched, then idle
    seen = {name: from_hand_off(data) for name, data in handed_off_all(server, names).items()}
    server.reset_request_counts()
    poller = CoalescedPoller(run_loop=False)
    pages = []
    async with emulator_client(server) as client, AsyncExitStack() as stack:
        for name in names:
            await stack.enter_async_context(
                poller.watch(name, WaitCriteria(), 60.0, client=client, seen=seen[name])
            )
        for _ in range(6):
            before = poller.stats.list_calls
            await poller.cycle(client)
            pages.append(poller.stats.list_calls - before)
            server.advance(60)
    # The first window reaches back to the hand-offs, after the launch; the next ones start at the
    # previous listing's server time: nothing in them, one page each.
    assert pages == [1] * 6
    assert server.request_counts().get("DescribeAutoMLJob", 0) == 0


async def test_a_wait_that_joins_later_starts_from_what_the_poller_knows(autopilot_emulator_server):
    """A second wait on a watched job, and a wait restarted in the same event loop (its job is in
    the latest listing), get the job's state at once and a describe when it may end their wait."""
    server = autopilot_emulator_server
    create_jobs(server, ["poll-join"], QUICK)
    server.advance(100)  # Completed
    poller = CoalescedPoller(run_loop=False)
    criteria = WaitCriteria()
    async with emulator_client(server) as client:
        async with poller.watch("poll-join", criteria, 60.0, client=client) as first:
            await poller.cycle(client)  # full listing (no hand-off), then the describe
            assert (await asyncio.wait_for(first.next(), 1)).status == "Completed"
            async with poller.watch("poll-join", criteria, 60.0, client=client) as second:
                await poller.cycle(client)
                assert (await asyncio.wait_for(second.next(), 1)).status == "Completed"
        # Restarted: the job is no longer watched, but the latest listing showed it.
        server.reset_request_counts()
        async with poller.watch("poll-join", criteria, 60.0, client=client) as again:
            await poller.cycle(client)
            assert (await asyncio.wait_for(again.next(), 1)).status == "Completed"
    counts = server.request_counts()
    assert counts["DescribeAutoMLJob"] == 1 and counts["ListAutoMLJobs"] == 1  # a window, no full listing


async def test_a_listing_that_changes_many_jobs_wakes_their_waiters_a_batch_per_loop_turn(
    autopilot_emulator_server,
):
    """Hundreds of waiters woken in one turn of the event loop would each run their step (progress,
    a log line) before the loop's timers: Airflow's triggerer watchdog among them."""
    server = autopilot_emulator_server
    names = [f"poll-fan-{i}" for i in range(4)]
    create_jobs(server, names, IDLE)
    seen = {name: from_hand_off(data) for name, data in handed_off_all(server, names).items()}
    poller = CoalescedPoller(run_loop=False)
    turn = 0
    woken_in_turn: list[int] = []

    async def count_turns() -> None:
        nonlocal turn
        while True:
            turn += 1
            await asyncio.sleep(0)

    woken_at: list[float] = []

    async def wait_for_progress(watch) -> None:
        assert await watch.next_or_progress() is None  # progress: no verdict, no describe
        woken_in_turn.append(turn)
        woken_at.append(time.monotonic())

    counting = asyncio.create_task(count_turns())
    async with emulator_client(server) as client, AsyncExitStack() as stack:
        watches = [
            await stack.enter_async_context(
                poller.watch(name, WaitCriteria(), 60.0, client=client, seen=seen[name])
            )
            for name in names
            for _ in range(50)  # 200 waiters on 4 jobs
        ]
        waiting = [asyncio.create_task(wait_for_progress(w)) for w in watches]
        await asyncio.sleep(0)
        server.advance(150_000)  # every job moves on: the next listing shows all four changed
        await poller.cycle(client)
        await asyncio.wait_for(asyncio.gather(*waiting), 5)
    counting.cancel()
    per_turn = Counter(woken_in_turn)
    assert len(woken_in_turn) == 200  # every waiter heard of its job's change
    assert max(per_turn.values()) <= poller_module.WAKE_BATCH, per_turn
    assert len(per_turn) >= 200 / poller_module.WAKE_BATCH
    # ... and paced in real time, so that their log lines reach Airflow's supervisor spread out.
    batches = math.ceil(200 / poller_module.WAKE_BATCH)
    assert max(woken_at) - min(woken_at) >= 0.9 * (batches - 1) * poller_module.WAKE_PAUSE_SECONDS


# --- the server's clock ---------------------------------------------------------------------------
@pytest.mark.parametrize("local_ahead_minutes", [15, -15], ids=["triggerer-ahead", "server-ahead"])
async def test_list_windows_follow_the_servers_clock_whatever_the_local_one(
    autopilot_emulator_server, list_requests, local_ahead_minutes
):
    """#12 5b: with the triggerer's clock 15 minutes off, jobs that complete are still seen at once,
    and every list window starts a few seconds before the server's own time."""
    server = autopilot_emulator_server
    local = SYSTEM_CLOCK
    if local_ahead_minutes < 0:
        server.advance(-local_ahead_minutes * 60)  # the server ahead of this machine
    else:

        class SkewedClock(SystemClock):
            def now(self) -> datetime:
                return super().now() + timedelta(minutes=local_ahead_minutes)

        local = SkewedClock()  # this machine's clock (the triggers' and the poller's) ahead
    names = [f"poll-skew-{i}" for i in range(20)]
    create_jobs(server, names, QUICK)
    hand_offs = handed_off_all(server, names)
    handed_at = min(parse_timestamp(h["observed_at"]) for h in hand_offs.values())
    with clock_in_use(local):
        timeout_at = (local.now() + timedelta(seconds=30)).isoformat()
        triggers = [
            fast_trigger(
                AutopilotJobTrigger, n, last_seen=hand_offs[n], candidate_interval=0, timeout_at=timeout_at
            )
            for n in names
        ]
        events = await run_triggers(triggers, advance=lambda: server.advance(10), limit=15)
    assert {n: e["status"] for n, e in events.items()} == dict.fromkeys(names, "success")
    assert list_requests
    # Each window starts no earlier than the previous listing's server time less the 5 s overlap
    # (and the Date header's whole second) or than the hand-offs (for triggers registered since),
    # and never after the server's now.
    previous = handed_at
    for after, now in list_requests:
        if after is not None:
            assert min(previous - timedelta(seconds=6), handed_at - timedelta(seconds=1)) <= after <= now, (
                after,
                previous,
                now,
            )
        previous = now


# --- registration without describes ---------------------------------------------------------------
async def test_triggers_start_from_the_hand_off_without_a_describe(autopilot_emulator_server):
    """30 triggers start together: one list page, and a describe only for the jobs that ended
    between the hand-off and the start (as after a triggerer restart)."""
    server = autopilot_emulator_server
    idle = [f"poll-start-{i}" for i in range(25)]
    ended = [f"poll-ended-{i}" for i in range(5)]
    create_jobs(server, idle, IDLE)
    create_jobs(server, ended, QUICK)
    hand_offs = handed_off_all(server, idle + ended)
    server.advance(100)  # the QUICK jobs complete before their triggers start
    server.reset_request_counts()
    triggers = [
        fast_trigger(AutopilotJobTrigger, n, last_seen=hand_offs[n], poll_interval=1.0, candidate_interval=0)
        for n in idle + ended
    ]
    events = await run_triggers(triggers, until=lambda events: len(events) == len(ended), limit=10)
    assert {n: e["status"] for n, e in events.items()} == dict.fromkeys(ended, "success")
    counts = server.request_counts()
    assert counts.get("DescribeAutoMLJob", 0) == len(ended)
    assert counts["ListAutoMLJobs"] == math.ceil(len(idle + ended) / 100)


async def test_the_sensor_hands_its_describe_to_the_trigger(server, make_job):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from tests.helpers import sensor

    make_job("poll-sensor-hand", tags=IDLE)
    task = sensor("poll-sensor-hand", aws_conn_id="aws_default", deferrable=True, timeout=60)
    with pytest.raises(TaskDeferred) as info:
        task.execute({})
    trigger = info.value.trigger
    path, kwargs = trigger.serialize()
    kwargs = json.loads(json.dumps(kwargs))  # JSON-safe, as the triggerer stores it
    assert kwargs["last_seen"]["job"]["AutoMLJobStatus"] == "InProgress"
    assert kwargs["last_seen"]["observed_at"]  # the server's time of that describe
    server.reset_request_counts()
    rebuilt = AutopilotJobTrigger(**kwargs)
    events = await run_triggers([rebuilt], limit=0.5)
    assert events == {}  # still running
    assert server.request_counts().get("DescribeAutoMLJob", 0) == 0


# --- the safety net -------------------------------------------------------------------------------
class WindowsMissEverything:
    """A real client whose windowed ListAutoMLJobs pages show every job as the first window did
    (every later change missed, though the jobs are listed, so nothing looks gone); full listings
    are untouched."""

    def __init__(self, client) -> None:
        self._client = client
        self._first: dict[str, dict] = {}

    def __getattr__(self, name):
        return getattr(self._client, name)

    async def list_auto_ml_jobs(self, **kwargs):
        page = await self._client.list_auto_ml_jobs(**kwargs)
        if "LastModifiedTimeAfter" in kwargs:
            rows = page["AutoMLJobSummaries"]
            for row in rows:
                self._first.setdefault(row["AutoMLJobName"], row)
            page = {**page, "AutoMLJobSummaries": [self._first[r["AutoMLJobName"]] for r in rows]}
        return page


async def test_a_full_listing_catches_what_the_windows_missed(autopilot_emulator_server):
    server = autopilot_emulator_server
    names = [f"poll-missed-{i}" for i in range(3)]
    create_jobs(server, names, QUICK)
    seen = {n: from_hand_off(handed_off(server, n)) for n in names}
    poller = CoalescedPoller(run_loop=False)  # full listings every 540 s of server time
    step = 60
    async with emulator_client(server) as real, AsyncExitStack() as stack:
        client = WindowsMissEverything(real)
        watches = [
            await stack.enter_async_context(
                poller.watch(n, WaitCriteria(), step, client=client, seen=seen[n])
            )
            for n in names
        ]
        noticed_after = None
        for cycle in range(15):
            await poller.cycle(client)
            if all(w._items for w in watches):
                noticed_after = cycle * step
                break
            server.advance(step)
        results = [await w.next() for w in watches]
    assert all(job.status == "Completed" for job in results)
    # The jobs completed 80 s in; the full listing came within full_listing_seconds + one cycle.
    assert noticed_after is not None and noticed_after <= poller.full_listing.total_seconds() + step
    assert [r.kind for r in poller.stats.history].count("full") == 1


async def test_a_job_that_disappears_ends_the_wait_as_not_found(autopilot_emulator_server):
    """#12 5a: after an emulator restart the job is gone; the wait ends "not found", not timed out."""
    server = autopilot_emulator_server
    create_jobs(server, ["poll-gone"], IDLE)
    trigger = fast_trigger(
        AutopilotJobTrigger, "poll-gone", last_seen=handed_off(server, "poll-gone"), candidate_interval=0
    )
    state = {"ticks": 0}

    def restart_then_advance():
        state["ticks"] += 1
        if state["ticks"] == 3:
            server.reset()  # the emulator restarts: every job is gone
        elif state["ticks"] > 3:
            server.advance(120)

    events = await run_triggers([trigger], advance=restart_then_advance, limit=15)
    event = events["poll-gone"]
    assert event["status"] == "error"
    assert "not found" in event["message"] and "last seen InProgress/Starting" in event["message"]


async def test_a_job_lost_in_an_idle_restart_ends_not_found_within_the_grace(autopilot_emulator_server):
    """An instant restart no listing saw fail, of an idle job that no window lists any more: the
    full listing, one page here, comes every half grace instead of every full_listing_seconds."""
    server = autopilot_emulator_server
    create_jobs(server, ["poll-gone-idle"], IDLE)
    trigger = fast_trigger(
        AutopilotJobTrigger,
        "poll-gone-idle",
        last_seen=handed_off(server, "poll-gone-idle"),
        candidate_interval=0,
        not_found_grace_seconds=60,
    )
    state = {"ticks": 0, "after_restart": 0.0}

    def restart_then_advance():
        state["ticks"] += 1
        if state["ticks"] == 4:
            # Every job is gone, and no call saw the server down. The job's last change is 15 s
            # old: the windows since (which must show it) did, so none will miss it now.
            server.reset()
        else:
            server.advance(5)
            state["after_restart"] += 5 if state["ticks"] > 4 else 0

    events = await run_triggers([trigger], until=bool, advance=restart_then_advance, limit=15)
    event = events["poll-gone-idle"]
    assert event["status"] == "error"
    assert "not found" in event["message"] and "last seen InProgress/Starting" in event["message"]
    # Server seconds from the restart to the event (plus the tick that noticed it).
    assert state["after_restart"] <= 60 + 5, state


async def test_a_window_that_lacks_a_job_it_must_show_describes_it(autopilot_emulator_server):
    """The job's last known change falls inside the window, visible for over overlap_seconds: a
    window without it means it is gone. One describe tells, no full listing (no grace given here,
    so no presence listing either)."""
    from botocore.exceptions import ClientError

    server = autopilot_emulator_server
    create_jobs(server, ["poll-gone-window"], IDLE)
    seen = from_hand_off(handed_off(server, "poll-gone-window"))
    poller = CoalescedPoller(run_loop=False)
    async with emulator_client(server) as client:
        async with poller.watch("poll-gone-window", WaitCriteria(), 60, client=client, seen=seen) as watch:
            await poller.cycle(client)  # lists the job: nothing to describe
            assert poller.stats.describe_calls == 0 and not watch._items
            server.reset()  # every job is gone
            server.advance(6)
            await poller.cycle(client)
            assert watch._items, "the window without the job brought no describe"
            with pytest.raises(ClientError, match="ResourceNotFound|not found"):
                await watch.next()
    assert [r.kind for r in poller.stats.history] == ["window", "window"]
    assert poller.stats.describe_calls == 1


async def test_a_listing_that_fails_brings_the_check_for_lost_jobs_forward(
    autopilot_emulator_server, monkeypatch
):
    """The emulator is down for a second (refused connections) and comes back without its jobs:
    the first listing after the failure is a full one, and the wait ends "not found" at once, long
    before a grace that would otherwise be the bound."""
    from tests.network_faults import faulty_network

    server = autopilot_emulator_server
    create_jobs(server, ["poll-gone-down"], IDLE)
    proxy = faulty_network(server.port, [("refuse", 1.0, 1.0)], monkeypatch)
    trigger = fast_trigger(
        AutopilotJobTrigger,
        "poll-gone-down",
        aws_conn_id="faulty_network",
        last_seen=handed_off(server, "poll-gone-down"),
        candidate_interval=0,
        not_found_grace_seconds=3600,  # no presence listing within the test: only the failure tells
        timeout=20,
    )
    state = {"reset": False}

    def reset_while_down():
        if not state["reset"] and time.monotonic() - started > 1.3:
            server.reset()  # the server comes back empty
            state["reset"] = True

    proxy.start_clock()
    started = time.monotonic()
    try:
        events = await run_triggers([trigger], until=bool, advance=reset_while_down, limit=15)
    finally:
        proxy.close()
    elapsed = time.monotonic() - started
    event = events["poll-gone-down"]
    assert event["status"] == "error" and "not found" in event["message"], event
    assert elapsed < 6, f"{elapsed:.1f}s: the server was back after 2 s"


# --- error summaries: only what was observed -----------------------------------------------------
async def test_an_error_summary_shows_only_what_the_listing_showed(autopilot_emulator_server):
    """#29 3: the listing shows the job Completed, the describe that would give the verdict is
    denied: the error's summary says Completed as the listing did, and claims no best candidate."""
    server = autopilot_emulator_server
    create_jobs(server, ["poll-denied"], QUICK)
    trigger = fast_trigger(
        AutopilotJobTrigger, "poll-denied", last_seen=handed_off(server, "poll-denied"), candidate_interval=0
    )
    server.deny("DescribeAutoMLJob", "DescribeAutoMLJobV2")
    try:
        events = await run_triggers([trigger], until=bool, advance=lambda: server.advance(20), limit=15)
    finally:
        server.clear_faults()
    event = events["poll-denied"]
    assert event["status"] == "error" and "AccessDenied" in event["message"], event
    summary = event["summary"]
    assert summary["ObservedIn"] == "ListAutoMLJobs", summary
    assert (summary["AutoMLJobStatus"], summary["AutoMLJobSecondaryStatus"]) == ("Completed", "Completed")
    assert "BestCandidateName" not in summary and "BestCandidateObjectiveMetric" not in summary
    # The job had a best candidate all along: the summary did not deny it, it did not know.
    assert AutopilotJob.from_describe(
        server.client().describe_auto_ml_job(AutoMLJobName="poll-denied")
    ).best_candidate


async def test_an_error_before_the_job_was_read_says_its_status_is_unknown(autopilot_emulator_server):
    server = autopilot_emulator_server
    create_jobs(server, ["poll-never-read"], IDLE)
    trigger = fast_trigger(AutopilotJobTrigger, "poll-never-read", coalesce=False, candidate_interval=0)
    server.deny("DescribeAutoMLJob", "DescribeAutoMLJobV2")
    try:
        events = await run_triggers([trigger], until=bool, limit=15)
    finally:
        server.clear_faults()
    event = events["poll-never-read"]
    assert event["status"] == "error", event
    assert event["summary"] == {
        "AutoMLJobName": "poll-never-read",
        "AutoMLJobStatus": None,
        "ObservedIn": None,
    }


# --- without ListAutoMLJobs -----------------------------------------------------------------------
async def test_a_role_without_list_permission_gets_every_outcome_within_the_rate_ceiling(
    autopilot_emulator_server, describe_times, caplog
):
    server = autopilot_emulator_server
    names = [f"poll-denied-{i}" for i in range(24)] + ["emu-failed-denied"]
    create_jobs(server, names, QUICK)
    hand_offs = handed_off_all(server, names)
    server.deny("ListAutoMLJobs")
    rate = 20.0
    triggers = [
        fast_trigger(
            AutopilotJobTrigger,
            n,
            last_seen=hand_offs[n],
            poll_interval=0.25,
            candidate_interval=0,
            fallback_describes_per_second=rate,
        )
        for n in names
    ]
    server.advance(100)  # every job ends; only describes can tell
    describe_times.clear()
    with caplog.at_level(logging.WARNING, logger=poller_module.__name__):
        events = await run_triggers(triggers, limit=15)
    assert {n: e["status"] for n, e in events.items()} == {
        **dict.fromkeys(names[:-1], "success"),
        "emu-failed-denied": "failure",
    }
    # Never more than the ceiling (the emulator's clock of arrival jitters a little): at most
    # rate + 2 describes in any second.
    assert len(describe_times) >= len(names)
    busiest = max(sum(1 for t in describe_times if start <= t < start + 1.0) for start in describe_times)
    assert busiest <= rate + 2, busiest
    warnings = [r for r in caplog.records if LIST_PERMISSION in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


# --- the poll-interval floor ----------------------------------------------------------------------
async def test_poll_interval_zero_does_not_spin_the_shared_poller(autopilot_emulator_server, monkeypatch):
    """#12 10: ``poke_interval=0`` is raised to the floor; the poller lists once per floor interval."""
    server = autopilot_emulator_server
    monkeypatch.setenv(MIN_POLL_INTERVAL_ENV, "0.25")
    names = [f"poll-zero-{i}" for i in range(10)]
    create_jobs(server, names, IDLE)
    triggers = [
        fast_trigger(
            AutopilotJobTrigger, n, last_seen=handed_off(server, n), poll_interval=0, candidate_interval=0
        )
        for n in names
    ]
    server.reset_request_counts()
    started = time.monotonic()
    await run_triggers(triggers, limit=1.5)
    elapsed = time.monotonic() - started
    # one cycle per 0.25 s (the first after min(interval, 1 s))
    assert server.request_counts()["ListAutoMLJobs"] <= elapsed / 0.25 + 1

"""Coalesced polling against the emulator server: few calls, no lost or false outcome."""

from __future__ import annotations

import asyncio
import math
from contextlib import asynccontextmanager

import pytest

from airflow_autopilot.aio.poller import CoalescedPoller
from airflow_autopilot.core.job import WaitCriteria
from tests.helpers import client_error


@asynccontextmanager
async def emulator_client(server):
    from aiobotocore.config import AioConfig
    from aiobotocore.session import get_session

    session = get_session()
    async with session.create_client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=server.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=AioConfig(retries={"mode": "standard", "max_attempts": 1}),  # the poller sees every fault
    ) as client:
        yield client


async def _collect(watch, criteria, until):
    """Read describes until the criteria give a verdict; return (verdict, job)."""
    while True:
        try:
            job = await asyncio.wait_for(watch.next(), timeout=until)
        except Exception as err:  # a transient describe error: keep waiting, as the trigger does
            if isinstance(err, asyncio.TimeoutError):
                raise
            continue
        verdict = criteria.verdict(job)
        if verdict != "waiting":
            return verdict, job


def _run_watchers(server, names, poller, criteria, cycles, advance):
    async def main():
        async with emulator_client(server) as client:
            results = {}
            hints = {name: [] for name in names}

            async def watch_one(name):
                async with poller.watch(name, criteria, 3600.0, hints[name].append, client=client) as watch:
                    results[name] = await _collect(watch, criteria, until=30)

            tasks = [asyncio.create_task(watch_one(n)) for n in names]
            await asyncio.sleep(0)
            for _ in range(cycles):
                await poller.cycle(client)
                await asyncio.sleep(0)
                advance()
                if all(t.done() for t in tasks):
                    break
            await asyncio.gather(*tasks)
            return results, hints

    return asyncio.run(main())


def test_every_outcome_arrives_with_few_calls(autopilot_emulator_server, make_job):
    server = autopilot_emulator_server
    names = [f"poll-ok-{i}" for i in range(40)] + ["emu-failed-poll", "emu-stopped-poll"]
    for name in names:
        make_job(name, tags={"autopilot-emulator:stage-seconds": "10"})
    server.reset_request_counts()
    poller = CoalescedPoller()
    results, hints = _run_watchers(server, names, poller, WaitCriteria(), 60, lambda: server.advance(5))

    assert {n: v for n, (v, _) in results.items() if v != "success"} == {
        "emu-failed-poll": "failure",
        "emu-stopped-poll": "failure",
    }
    assert all(job.status == "Completed" for n, (v, job) in results.items() if v == "success")
    assert results["emu-failed-poll"][1].failure_reason
    # Progress came from list summaries, not describes.
    assert any(h.secondary_status == "ModelTuning" for h in hints["poll-ok-0"])
    counts = server.request_counts()
    n = len(names)
    # First cycle: one describe per new job. Then at most 2 + N/100 calls a cycle on average,
    # plus one describe per job that ended (the describe that carries its verdict).
    steady_calls = counts["DescribeAutoMLJob"] + counts.get("ListAutoMLJobs", 0) - n - n
    assert steady_calls <= (poller.stats.cycles - 1) * (2 + math.ceil(n / 100))
    assert counts["DescribeAutoMLJob"] < n * 3  # against about n per cycle for one describe per job


def test_list_throttling_loses_nothing(autopilot_emulator_server, make_job, instant_aws_retries):
    server = autopilot_emulator_server
    names = [f"poll-thr-{i}" for i in range(5)]
    for name in names:
        make_job(name, tags={"autopilot-emulator:stage-seconds": "10"})
    poller = CoalescedPoller()
    state = {"cycle": 0}

    def advance():
        state["cycle"] += 1
        server.advance(10)
        if state["cycle"] in (3, 4, 5):
            server.inject_faults(None, throttle=3, server_errors=1)  # the list and some describes fail

    results, _ = _run_watchers(server, names, poller, WaitCriteria(), 80, advance)
    assert all(v == "success" for v, _ in results.values())
    assert poller.stats.list_failures >= 1


def test_round_robin_finds_what_the_list_missed(autopilot_emulator_server, make_job, monkeypatch):
    """Correctness does not depend on the list: with it returning nothing, every job still ends."""
    server = autopilot_emulator_server
    names = [f"poll-rr-{i}" for i in range(4)]
    for name in names:
        make_job(name, tags={"autopilot-emulator:stage-seconds": "1"})
    poller = CoalescedPoller(round_robin_divisor=2, full_check_seconds=0)

    async def nothing(client, since):
        return []

    monkeypatch.setattr(poller, "_list_changed", nothing)
    results, _ = _run_watchers(server, names, poller, WaitCriteria(), 40, lambda: server.advance(30))
    assert all(v == "success" for v, _ in results.values())


@pytest.mark.parametrize("secondary", ["ModelTuning"])
def test_target_secondary_from_a_summary_triggers_a_describe(autopilot_emulator_server, make_job, secondary):
    server = autopilot_emulator_server
    make_job("poll-target", tags={"autopilot-emulator:stage-seconds": "10"})
    criteria = WaitCriteria.build(target_secondary_statuses=[secondary])
    poller = CoalescedPoller(round_robin_divisor=10_000)
    results, _ = _run_watchers(server, ["poll-target"], poller, criteria, 30, lambda: server.advance(5))
    verdict, job = results["poll-target"]
    assert verdict == "success" and job.secondary_status == secondary and job.status == "InProgress"


def test_a_role_that_cannot_list_jobs_still_gets_every_outcome(
    autopilot_emulator_server, make_job, monkeypatch
):
    """ListAutoMLJobs denied (AccessDenied): the poller falls back to describing each job."""
    server = autopilot_emulator_server
    names = ["poll-denied-ok", "emu-failed-poll-denied"]
    for name in names:
        make_job(name, tags={"autopilot-emulator:stage-seconds": "1"})
    poller = CoalescedPoller()

    async def denied(client, since):
        raise client_error("AccessDeniedException", 403, "ListAutoMLJobs")

    monkeypatch.setattr(poller, "_list_changed", denied)
    results, _ = _run_watchers(server, names, poller, WaitCriteria(), 40, lambda: server.advance(2))
    assert poller.list_disabled
    assert results["poll-denied-ok"][0] == "success"
    assert results["emu-failed-poll-denied"][0] == "failure"

"""
AutopilotJobCompletedTrigger against the emulator server: one event per finished job created by
"someone else" (plain boto3), across restarts after each event, a triggerer restart, two watchers
on one asset (failover) and downtime; the poller's calls stay at the floor with waits and watchers.

Job progress and the claim's settle pause run on the emulator clock (``emulated_clock``): no sleeping.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import suppress

import pytest

from airflow_autopilot.aio.clients import client_key
from airflow_autopilot.aio.poller import shared_poller
from airflow_autopilot.core.clock import SYSTEM_CLOCK
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
    kwargs.setdefault("lookback_seconds", 86400.0)
    return AutopilotJobCompletedTrigger(**kwargs)


def create(server, *names: str, **overrides) -> None:
    sagemaker = emulator_client("sagemaker", server.endpoint_url)
    for name in names:
        sagemaker.create_auto_ml_job(**job_request(name, **overrides))


async def collect(
    triggers,
    *,
    count: int,
    limit: float = 10.0,
    stop_after_each: Callable[[str], bool] | None = None,
    events: list | None = None,
) -> list[dict]:
    """Run the watchers in one loop (as one triggerer does) until ``count`` events (in ``events``, which
    several loops may share) or ``limit`` seconds, moving the emulator clock 5 s every 0.05 s; with
    ``stop_after_each``, each watcher is stopped after its first event, once ``stop_after_each(job)``
    says every job it reported is marked reported (a restart per event)."""
    from airflow_autopilot.emulator import settings

    events = [] if events is None else events
    reported: dict[int, list[str]] = {}

    async def consume(index, trigger):
        async for event in trigger.run():
            events.append(event.payload)
            reported.setdefault(index, []).append(event.payload["job_name"])

    tasks = [asyncio.create_task(consume(i, t)) for i, t in enumerate(triggers)]
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and len(events) < count and not all(t.done() for t in tasks):
        await asyncio.sleep(0.05)
        settings.advance_time(5)
        for index, jobs in reported.items():
            if stop_after_each is not None and all(stop_after_each(job) for job in jobs):
                tasks[index].cancel()
    # Let a late duplicate show up: a few more cycles.
    grace = time.monotonic() + 0.2
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


def create_v2(server, name: str, problem_type: str = "Regression") -> None:
    emulator_client("sagemaker", server.endpoint_url).create_auto_ml_job_v2(
        AutoMLJobName=name,
        AutoMLJobInputDataConfig=[
            {
                "ChannelType": "training",
                "ContentType": "text/csv;header=present",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://autopilot-test-data/train/"}
                },
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://autopilot-test-data/out"},
        AutoMLProblemTypeConfig={
            "TabularJobConfig": {
                "TargetAttributeName": "churn",
                "ProblemType": problem_type,
                "CompletionCriteria": {"MaxCandidates": 2},
            }
        },
        AutoMLJobObjective={"MetricName": "MSE"},
        RoleArn="arn:aws:iam::123456789012:role/r",
    )


def test_a_watcher_restarted_after_each_event_reports_each_job_once(server, emulated_clock):
    """Jobs that finish one after another; the triggerer stops the watcher after each event (once the
    event is stored and the job marked) and starts it again; a last run past every lease finds
    nothing new."""
    from airflow_autopilot.core.events import REPORTED, Ack

    for name, stage in (("evt-r1", "0.1"), ("evt-r2", "5"), ("evt-r3", "10")):
        create(server, name, tags={"autopilot-emulator:stage-seconds": stage})
    sagemaker = emulator_client("sagemaker", server.endpoint_url)
    key = ack_tag_key(watcher().watcher_id)

    def marked(job: str) -> bool:
        arn = sagemaker.describe_auto_ml_job(AutoMLJobName=job)["AutoMLJobArn"]
        tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
        ack = Ack.parse(tags.get(key))
        return ack is not None and ack.state == REPORTED

    runs: list[list[str]] = []
    while sum(map(len, runs)) < 3 and len(runs) < 3:
        events = asyncio.run(collect([watcher()], count=99, limit=8.0, stop_after_each=marked))
        runs.append([e["job_name"] for e in events])
    # Past the lease of any claim left behind: 0.6 s of turns moves the emulator clock 60 s.
    runs.append(
        [e["job_name"] for e in asyncio.run(collect([watcher(lease_seconds=30.0)], count=1, limit=0.6))]
    )
    assert runs == [["evt-r1"], ["evt-r2"], ["evt-r3"], []]


def test_triggerer_restart_and_downtime_report_only_the_jobs_not_reported(server, emulated_clock):
    create(server, "evt-d1", "evt-d2")
    first = asyncio.run(collect([watcher()], count=2))  # one triggerer process (one event loop)
    assert sorted(e["job_name"] for e in first) == ["evt-d1", "evt-d2"]
    # Down: jobs finish while no triggerer runs.
    create(server, "evt-d3", "evt-d4")
    server.advance(60)
    # A new triggerer (a new loop, a new poller): the reported jobs stay reported.
    second = asyncio.run(collect([watcher()], count=2))
    assert sorted(e["job_name"] for e in second) == ["evt-d3", "evt-d4"]


def fenced(**kwargs) -> AutopilotJobCompletedTrigger:
    """A watcher whose settle pause is real time: the fence is about claims racing in real time,
    which a clock that jumps when slept on cannot show."""
    return watcher(clock=SYSTEM_CLOCK, settle_seconds=0.4, confirm_seconds=0.2, lease_seconds=5.0, **kwargs)


def test_two_triggerers_on_one_asset_report_each_job_once(server, emulated_clock):
    """Failover: the same watcher in two triggerers (two event loops) at once; the claim's read-back
    after the settle pause leaves one owner per job."""
    import threading

    create(server, "evt-f1", "evt-f2", "evt-f3")
    shared: list[dict] = []

    def triggerer(slot: int) -> None:
        asyncio.run(collect([fenced()], count=3, limit=8.0, events=shared))

    threads = [threading.Thread(target=triggerer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = [e["job_name"] for e in shared]
    assert sorted(names) == ["evt-f1", "evt-f2", "evt-f3"]


def test_two_watchers_in_one_triggerer_share_the_claims_of_one_watcher_id(server, emulated_clock):
    create(server, "evt-s1", "evt-s2")
    events = asyncio.run(collect([fenced(), fenced()], count=2))
    assert sorted(e["job_name"] for e in events) == ["evt-s1", "evt-s2"]


def test_filters_on_tags_problem_type_api_version_and_status(server, emulated_clock):
    create(server, "evt-t1", tags={"team": "risk"})
    create(server, "evt-t2", tags={"team": "other"})
    create(server, "evt-t3", tags={"team": "risk", "autopilot-emulator:outcome": "failed"})
    create_v2(server, "evt-t4")
    tagged = watcher(tags={"team": "risk"}, statuses=["Completed", "Failed"], watcher_id="risk")
    v2 = watcher(api_version="v2", problem_types=["Regression"], watcher_id="v2-regression")
    events = asyncio.run(collect([tagged, v2], count=3))
    by_watcher = {(e["watcher_id"], e["job_name"], e["status"]) for e in events}
    assert by_watcher == {
        ("risk", "evt-t1", "Completed"),
        ("risk", "evt-t3", "Failed"),
        ("v2-regression", "evt-t4", "Completed"),
    }
    assert len(events) == 3


def test_watchers_and_waits_share_one_listing_per_cycle(server, emulated_clock):
    """Two watchers and a deferred wait in one triggerer: one ListAutoMLJobs call per cycle (the floor)."""
    create(server, "evt-p1", "evt-p2")

    async def scenario():
        wait = fast_trigger(AutopilotJobTrigger, "evt-p1", timeout=10**6)  # the emulated clock races
        watchers = [watcher(), watcher(name_prefix="evt-p", watcher_id="second")]
        events = await asyncio.wait_for(collect_with_wait(watchers, wait), timeout=20)
        poller = shared_poller(client_key(**watchers[0].connection()))
        return events, poller

    async def collect_with_wait(watchers, wait):
        done: dict = {}

        async def waiting():
            async for event in wait.run():
                done["wait"] = event.payload

        task = asyncio.create_task(waiting())
        events = await collect(watchers, count=4)
        await task
        return events, done

    (events, done), poller = asyncio.run(scenario())
    assert done["wait"]["status"] == "success"
    assert sorted((e["watcher_id"], e["job_name"]) for e in events) == sorted(
        [(w, j) for w in (watcher().watcher_id, "second") for j in ("evt-p1", "evt-p2")]
    )
    cycles = [c for c in poller.stats.history if c.kind in ("window", "full")]
    assert cycles and all(c.list_calls == 1 for c in cycles)


def test_the_high_water_mark_goes_to_the_asset_state_store(server, emulated_clock):
    """Airflow 3.3 injects ``asset_state_store``: the watcher keeps the server time up to which every
    change was decided there, and a restarted watcher starts from it."""
    from tests.unit.test_event_triggers import FakeStateStore

    create(server, "evt-w1")
    store = FakeStateStore()
    first = watcher()
    first.asset_state_store = store
    assert [e["job_name"] for e in asyncio.run(collect([first], count=1))] == ["evt-w1"]
    mark = store.values["autopilot_watermark"]
    again = watcher()
    again.asset_state_store = store
    assert asyncio.run(again.start_point(emulated_clock)).isoformat() == mark

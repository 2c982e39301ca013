"""
AutopilotJobCompletedTrigger killed at each point of a report (docs/events.md, Exactly once), then a
fresh watcher started on the same emulator state: a kill before the event is stored leaves a claim
that the next run reports once its lease ends; a kill after the mark leaves nothing to report; a
kill between the stored event and the mark is the one window of at least once (a redelivery).

"Stored" is what Airflow's triggerer does with a yielded event: here the consumer of ``run()`` keeps
it in a list, or drops it to stand for a triggerer that died before storing it. Kills are raised in
the event loop through the watcher's clock seam; time is the emulator's clock: no sleeping.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress

import pytest

from airflow_autopilot.core.events import Ack, ack_tag_key
from airflow_autopilot.emulator import settings
from airflow_autopilot.event_triggers import AutopilotJobCompletedTrigger
from tests.conftest import ONE_ATTEMPT, emulator_client, job_request

pytestmark = pytest.mark.skipif(
    not hasattr(__import__("airflow.triggers.base", fromlist=["x"]), "BaseEventTrigger"),
    reason="event-driven scheduling needs Airflow 3",
)

LEASE = 20.0
#: A hard cap in real seconds: a test that reaches it failed (nothing here waits on real time).
REAL_CAP = 20.0


class Killed(asyncio.CancelledError):
    """The triggerer dies here (a cancellation: what a stopping runner raises in its triggers)."""


class KillingClock:
    """The emulator clock, except that the watcher's ``kill_at``-th sleep (1: the settle pause between
    claim and read-back; 2: the pause between the yield and the mark) raises :class:`Killed`."""

    def __init__(self, kill_at: int) -> None:
        self.kill_at = kill_at
        self.sleeps = 0

    def now(self):
        return settings.CLOCK.now()

    def monotonic(self) -> float:
        return settings.CLOCK.monotonic()

    def sleep(self, seconds: float) -> None:
        settings.CLOCK.sleep(seconds)

    async def sleep_async(self, seconds: float) -> None:
        self.sleeps += 1
        if self.sleeps == self.kill_at:
            raise Killed(f"killed at sleep {self.sleeps}")
        await settings.CLOCK.sleep_async(seconds)


def watcher(**kwargs) -> AutopilotJobCompletedTrigger:
    kwargs.setdefault("name_prefix", "once-")
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("botocore_config", ONE_ATTEMPT)
    kwargs.setdefault("settle_seconds", 1.0)
    kwargs.setdefault("confirm_seconds", 2.0)
    kwargs.setdefault("lease_seconds", LEASE)
    kwargs.setdefault("lookback_seconds", 86400.0)
    return AutopilotJobCompletedTrigger(**kwargs)


def ack(server, job: str, trigger: AutopilotJobCompletedTrigger) -> Ack | None:
    sagemaker = emulator_client("sagemaker", server.endpoint_url)
    arn = sagemaker.describe_auto_ml_job(AutoMLJobName=job)["AutoMLJobArn"]
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    return Ack.parse(tags.get(ack_tag_key(trigger.watcher_id)))


async def triggerer(
    trigger, stored: list[dict], *, until, drop_first: bool = False, step=lambda: 5.0
) -> None:
    """One triggerer running ``trigger`` until ``until()`` holds or it is killed, moving the emulator
    clock ``step()`` seconds a turn; ``drop_first``: it dies right after the first yield, before
    storing the event."""

    async def consume() -> None:
        async for event in trigger.run():
            if drop_first:
                raise Killed("killed while handing the event on")
            stored.append(event.payload)

    task = asyncio.create_task(consume())
    deadline = time.monotonic() + REAL_CAP
    while not task.done() and not until():
        assert time.monotonic() < deadline, "the watcher neither finished nor got killed in time"
        await asyncio.sleep(0.02)
        settings.advance_time(step())
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task


def past_lease(stored: list[dict], count: int, marked=lambda: True):
    """Until ``count`` events are stored, the lease of any claim left has ended twice over, and
    ``marked()`` (the job is marked reported)."""
    start = settings.now()
    return lambda: len(stored) >= count and settings.now() > start + 2 * LEASE and marked()


def is_reported(server, job: str, trigger) -> bool:
    state = ack(server, job, trigger)
    return state is not None and state.state == "reported"


@pytest.mark.parametrize(
    ("kill", "expected"),
    [
        # between the claim and the yield: nothing stored, the claim is left; reported once, later
        ("settle", [True]),
        # yielded, but the triggerer died before storing it: the same from the watcher's side
        ("handing over", [True]),
        # stored, killed before the mark: the window of at least once (a flagged redelivery)
        ("before the mark", [False, True]),
        # stored and marked: never reported again
        ("after the mark", [False]),
    ],
)
def test_a_kill_at_each_point_then_a_fresh_watcher(server, emulated_clock, kill, expected):
    emulator_client("sagemaker", server.endpoint_url).create_auto_ml_job(**job_request("once-k1"))
    stored: list[dict] = []
    first = watcher(clock=KillingClock({"settle": 1, "before the mark": 2}.get(kill, 0)))

    def marked() -> bool:
        return is_reported(server, "once-k1", first)

    asyncio.run(
        triggerer(
            first,
            stored,
            until=marked if kill == "after the mark" else lambda: False,
            drop_first=kill == "handing over",
        )
    )
    state = ack(server, "once-k1", first)
    assert state is not None and state.state == ("reported" if kill == "after the mark" else "claimed")
    assert len(stored) == (0 if kill in ("settle", "handing over") else 1)

    second = watcher()  # a new triggerer: a new loop, poller and claim token
    asyncio.run(
        triggerer(
            second,
            stored,
            until=past_lease(stored, len(expected), lambda: is_reported(server, "once-k1", second)),
        )
    )
    assert [e["job_name"] for e in stored] == ["once-k1"] * len(expected)
    assert [e["redelivery"] for e in stored] == expected
    assert ack(server, "once-k1", second).state == "reported"


def test_failover_the_survivor_reports_a_dead_claimants_job_once_its_lease_ends(server, emulated_clock):
    """Two triggerers run the watcher; the one that claimed the job dies before its event was stored.
    The survivor respects the claim for the lease, then reports the job: once in all."""
    emulator_client("sagemaker", server.endpoint_url).create_auto_ml_job(**job_request("once-f1"))
    stored: list[dict] = []
    doomed, survivor = watcher(clock=KillingClock(1)), watcher()

    async def both() -> None:
        dying = asyncio.create_task(triggerer(doomed, stored, until=lambda: False))
        # The survivor starts once the doomed run has claimed the job (it waits for that claim).
        while ack(server, "once-f1", doomed) is None:
            await asyncio.sleep(0.02)
        claimed_at = settings.now()
        await triggerer(
            survivor, stored, until=past_lease(stored, 1, lambda: is_reported(server, "once-f1", survivor))
        )
        await dying
        assert settings.now() - claimed_at > LEASE

    asyncio.run(both())
    assert [(e["job_name"], e["redelivery"]) for e in stored] == [("once-f1", True)]
    assert ack(server, "once-f1", survivor).state == "reported"


def test_a_claim_within_its_lease_is_left_to_its_live_claimant(server, emulated_clock):
    """Two watchers of one id in one triggerer, one job: the second waits for the first's claim, which
    the first marks reported; the second then skips it. One event, no redelivery."""
    emulator_client("sagemaker", server.endpoint_url).create_auto_ml_job(**job_request("once-l1"))
    stored: list[dict] = []
    first, second = watcher(), watcher()

    def marked() -> bool:
        return is_reported(server, "once-l1", first)

    def step() -> float:
        # Slow turns while the claim is live, however slow the machine: the lease must not end
        # before the claimant's own calls do; then fast, past the lease.
        return 10.0 if marked() else 0.5

    async def both() -> None:
        start = settings.now()

        def done() -> bool:
            return bool(stored) and settings.now() > start + 2 * LEASE

        await asyncio.gather(
            triggerer(first, stored, until=done, step=step),
            triggerer(second, stored, until=done, step=step),
        )

    asyncio.run(both())
    assert [(e["job_name"], e["redelivery"]) for e in stored] == [("once-l1", False)]

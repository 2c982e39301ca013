"""
The triggerer's event loop is never blocked by our triggers: many triggers starting together in one
loop (a cold process: the service data not yet read), and a trigger cancelled while the shared
client is being created.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
import warnings
from concurrent.futures import ThreadPoolExecutor

import pytest

from airflow_autopilot.aio import clients
from airflow_autopilot.aio.heap import HeapFreezer
from airflow_autopilot.core.job import AutopilotJob, server_time
from airflow_autopilot.core.waits.job import hand_off
from airflow_autopilot.triggers import AutopilotJobTrigger
from tests.conftest import job_request, upload_training_data
from tests.helpers import fast_trigger

#: Airflow's triggerer warns when its watchdog's 0.1 s sleep takes more than 0.2 s: a callback that
#: holds the loop for more than 0.1 s can make it warn.
BLOCKED = 0.1
#: Jobs that never change on their own during the test.
IDLE = {"autopilot-emulator:stage-seconds": "100000"}


class LoopLag:
    """
    A loop-lag probe: how late a short sleep wakes up, counting only time the loop's own thread
    spent on the CPU meanwhile, i.e. running callbacks (a machine shared with other work
    deschedules the process now and then, and the worker thread reading the service model burns
    CPU of its own: neither is a callback holding the loop), minus the time the interpreter's
    garbage collector ran meanwhile (a full collection stops every thread, whoever allocated last;
    a triggerer freezes its heap so that those stay short, see airflow_autopilot.aio.heap).
    """

    def __init__(self, tick: float = 0.01) -> None:
        self.tick = tick
        self.worst = 0.0
        self.gc_seconds = 0.0
        self._gc_started = 0.0
        self._stop = asyncio.Event()

    def _on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            self.gc_seconds += time.perf_counter() - self._gc_started

    async def run(self) -> None:
        gc.callbacks.append(self._on_gc)
        try:
            while not self._stop.is_set():
                started, cpu, collected = time.perf_counter(), time.thread_time(), self.gc_seconds
                await asyncio.sleep(self.tick)
                late = time.perf_counter() - started - self.tick
                busy = time.thread_time() - cpu  # the loop's thread only: callbacks it ran
                self.worst = max(self.worst, min(late, busy) - (self.gc_seconds - collected))
        finally:
            gc.callbacks.remove(self._on_gc)

    def stop(self) -> None:
        self._stop.set()


def hand_offs(server, names) -> dict[str, dict]:
    """What each sensor hands its trigger (its last describe), from ListAutoMLJobs pages."""
    wanted, found = set(names), {}
    pages = server.client().get_paginator("list_auto_ml_jobs").paginate(PaginationConfig={"PageSize": 100})
    for page in pages:
        for row in page["AutoMLJobSummaries"]:
            if row["AutoMLJobName"] in wanted:
                job = AutopilotJob(raw=row, observed_at=server_time(page))
                found[row["AutoMLJobName"]] = json.loads(json.dumps(hand_off(job)))
    return found


async def test_many_triggers_starting_together_never_block_the_loop(server, monkeypatch):
    # 100 triggers on 10 jobs (ten tasks waiting on each): creating jobs is the emulator's slow part.
    names = [f"loop-{i}" for i in range(10)]
    upload_training_data(server.endpoint_url)
    sagemaker = server.client()
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda n: sagemaker.create_auto_ml_job(**job_request(n, tags=IDLE)), names))
    seen = hand_offs(server, names)
    # A fresh triggerer: the service data is read by the first shared client of the process.
    monkeypatch.setattr(clients, "_LOADER", None)
    # Its first trigger freezes the heap (recorded here: the test process stays as it is).
    froze: list[bool] = []
    freezer = HeapFreezer(argv=["airflow", "triggerer"], environ={}, freeze=lambda: froze.append(True))
    monkeypatch.setattr(clients, "PROCESS_HEAP", freezer)
    triggers = [
        fast_trigger(AutopilotJobTrigger, n, poll_interval=0.2, last_seen=seen[n])
        for n in names
        for _ in range(10)
    ]
    server.reset_request_counts()
    probe = LoopLag()
    probing = asyncio.create_task(probe.run())
    await asyncio.sleep(0.05)
    tasks = [asyncio.create_task(t.run().__anext__()) for t in triggers]
    # Long enough for the client to be created and the poller's first cycle to serve every trigger.
    deadline = time.monotonic() + 30
    while server.request_counts().get("ListAutoMLJobs", 0) < 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.3)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    probe.stop()
    await probing
    counts = server.request_counts()
    assert not any(task.done() and not task.cancelled() for task in tasks)  # all still waiting
    assert counts.get("ListAutoMLJobs", 0) >= 1  # the poller's first cycle served them all
    assert counts.get("DescribeAutoMLJob", 0) == 0  # hand-offs: no describe at start
    assert probe.worst < BLOCKED, f"the loop was blocked for {probe.worst:.3f} s"
    assert clients.open_client_count() == 0
    assert froze == [True]  # one freeze for the process, however many triggers started


async def test_a_trigger_cancelled_while_the_client_is_created_leaves_nothing_behind(server):
    settings = {"aws_conn_id": "aws_default", "botocore_config": None}
    entered = asyncio.Event()

    async def user() -> None:
        async with clients.shared_client(**settings):
            entered.set()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = asyncio.create_task(user())
        for _ in range(3):  # the creation has started (its worker thread is busy)
            await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not entered.is_set()
        # The creation goes on, shielded; nobody wants the client any more, so it is closed.
        for closing in list(clients._CLOSING):
            await closing
        assert clients.open_client_count() == 0 and not clients._CLOSING
        # A later user gets a client of its own, and it works.
        async with clients.shared_client(**settings) as client:
            assert clients.open_client_count() == 1
            response = await client.list_auto_ml_jobs(MaxResults=1)
            assert "AutoMLJobSummaries" in response
        assert clients.open_client_count() == 0
        del client, task
        gc.collect()
    leftovers = [w for w in caught if issubclass(w.category, (RuntimeWarning, ResourceWarning))]
    assert not leftovers, [str(w.message) for w in leftovers]

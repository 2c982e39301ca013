"""
Bench: N concurrent deferred waits (AutopilotJobTrigger.run() on one event loop) against the emulator.

Everything runs in this process: an emulator server on 127.0.0.1 and N trigger coroutines sharing
one event loop, as in a triggerer. Jobs last several poll intervals. Prints, for N=0 and N=200:

* DescribeAutoMLJob calls per job per poll interval (target <= 1): the most calls one job made in
  any window of one poll interval, the smallest gap between two calls for one job, and the mean
  (calls / poll intervals waited, counting the first check's interval);
* (RSS with N waiting - RSS at N=0) / N in KB (target <= 100 KB). Because the emulator shares
  this process, the server's own per-job memory is first allocated and released by a dry run of the
  same jobs without triggers (then the backend is reset), so the baseline heap already holds it.

Usage: ``python bench/deferred_waits.py [--jobs 200] [--poll 2.0] [--stage 2.0] [--quick]``. Bounded: loopback
only, about a minute at the defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import tempfile
import time
from collections import defaultdict

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="autopilot-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

from _common import create_jobs as _create_jobs
from _common import machine
from _common import rss_kib as rss_kb


def create_jobs(server, names: list[str]) -> None:
    # Stage length comes from the server's setting (--stage).
    _create_jobs(server, names, stage_seconds=server_stage_seconds[0])


server_stage_seconds = [2.0]


async def run_waits(names: list[str], poll: float, timeout_s: float) -> dict:
    from datetime import datetime, timedelta, timezone

    from airflow_autopilot import triggers
    from airflow_autopilot.aio import clients as shared_clients
    from airflow_autopilot.aio import poller
    from airflow_autopilot.triggers import AutopilotJobTrigger

    # Every DescribeAutoMLJob, by job: the trigger's own (its first check) and the shared poller's,
    # both through airflow_autopilot.aio.clients.describe_job.
    calls: dict[str, list[float]] = defaultdict(list)
    original = shared_clients.describe_job

    async def timed_describe(client, job_name, api_version="auto"):
        calls[job_name].append(time.monotonic())
        return await original(client, job_name, api_version)

    triggers.describe_job = timed_describe  # type: ignore[assignment]
    poller.describe_job = timed_describe  # type: ignore[assignment]
    deadline = (datetime.now(timezone.utc) + timedelta(seconds=timeout_s)).isoformat()
    durations: dict[str, float] = {}
    statuses: dict[str, str] = {}

    async def one(name: str) -> None:
        trigger = AutopilotJobTrigger(name, poll_interval=poll, timeout_at=deadline)
        start = time.monotonic()
        async for event in trigger.run():
            statuses[name] = event.payload["status"]
        durations[name] = time.monotonic() - start

    peak = [rss_kb()]
    clients = [0]

    async def sample() -> None:
        while True:
            peak[0] = max(peak[0], rss_kb())
            clients[0] = max(clients[0], shared_clients.open_client_count())
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    try:
        await asyncio.gather(*(one(n) for n in names))
    finally:
        sampler.cancel()
        triggers.describe_job = original  # type: ignore[assignment]
        poller.describe_job = original  # type: ignore[assignment]
    return {
        "calls": calls,
        "durations": durations,
        "statuses": statuses,
        "peak_rss": peak[0],
        "clients": clients[0],
    }


def report(n: int, poll: float, result: dict | None, rss_base: int, server_counts: dict[str, int]) -> None:
    print(f"--- N={n} ---")
    if not n or result is None:
        print("DescribeAutoMLJob calls per job per poll interval: n/a (no waits)")
        print(f"RSS: {rss_base} KB (baseline); per waiting job: n/a")
        return
    calls, durations = result["calls"], result["durations"]
    total = sum(len(v) for v in calls.values())
    intervals = sum(durations[name] / poll + 1 for name in durations)
    gaps = [b - a for times in calls.values() for a, b in zip(times, times[1:], strict=False)]
    max_in_window = 0
    for times in calls.values():
        j = 0
        for i, t in enumerate(times):
            while times[j] <= t - poll:
                j += 1
            max_in_window = max(max_in_window, i - j + 1)
    status_counts: dict[str, int] = defaultdict(int)
    for status in result["statuses"].values():
        status_counts[status] += 1
    print(f"jobs: {n}, outcomes: {dict(status_counts)}, poll interval: {poll:g} s")
    print(
        f"wait per job: mean {sum(durations.values()) / n:.1f} s "
        f"(= {sum(durations.values()) / n / poll:.1f} poll intervals), shared clients open at peak: {result['clients']}"
    )
    print(
        f"DescribeAutoMLJob calls per job per poll interval: max {max_in_window} in any {poll:g} s window "
        f"(target <= 1: {'met' if max_in_window <= 1 else 'NOT met'}); smallest gap {f'{min(gaps):.3f} s' if gaps else 'n/a (one call per job)'}; "
        f"mean {total / intervals:.3f} "
        f"({total} calls; server counted {server_counts.get('DescribeAutoMLJob', 0)})"
    )
    print(
        f"ListCandidatesForAutoMLJob calls per job: {server_counts.get('ListCandidatesForAutoMLJob', 0) / n:.2f}; "
        f"ListAutoMLJobs calls (shared poller): {server_counts.get('ListAutoMLJobs', 0)}"
    )
    per_job = (result["peak_rss"] - rss_base) / n
    print(
        f"RSS: baseline {rss_base} KB, peak with {n} waiting {result['peak_rss']} KB; "
        f"(RSS at N={n} - RSS at N=0) / {n} = {per_job:.1f} KB per waiting job"
        f" (target <= 100 KB: {'met' if per_job <= 100 else 'NOT met'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--poll", type=float, default=2.0, help="poll interval, seconds")
    parser.add_argument("--stage", type=float, default=2.0, help="emulator seconds per lifecycle stage")
    parser.add_argument("--verbose", action="store_true", help="keep the triggers' progress lines")
    parser.add_argument("--quick", action="store_true", help="50 jobs")
    args = parser.parse_args()
    if args.quick:
        args.jobs = 50
    if not args.verbose:
        import logging

        for name in ("airflow_autopilot", "werkzeug", "botocore", "airflow.providers.amazon"):
            logging.getLogger(name).setLevel(logging.WARNING)

    from airflow_autopilot.emulator import EmulatorServer

    server_stage_seconds[0] = args.stage
    with EmulatorServer(stage_seconds=args.stage, max_candidates=3) as server:
        os.environ.update(server.environment())
        os.environ.pop("AWS_ENDPOINT_URL", None)  # the trigger must get the endpoint from the connection

        # Warm-up: one full wait, so imports, botocore models and the connection path are loaded.
        create_jobs(server, ["bench-warmup"])
        server.advance(3600)
        asyncio.run(run_waits(["bench-warmup"], args.poll, 60))

        # Server-side dry run: the same number of jobs created, run to completion (artifacts and
        # candidates materialised) and dropped again, without any trigger. The emulator lives in this
        # process, so this puts the server's own per-job memory into the baseline's heap; what the
        # waits add on top is then the triggers' cost.
        dry = [f"bench-dry-{i:04d}" for i in range(args.jobs)]
        create_jobs(server, dry)
        server.advance(3600)
        sm = server.client("sagemaker")
        for name in dry:
            sm.describe_auto_ml_job(AutoMLJobName=name)
            sm.list_candidates_for_auto_ml_job(AutoMLJobName=name)
        server.reset()
        gc.collect()

        names = [f"bench-wait-{i:04d}" for i in range(args.jobs)]
        rss_base = rss_kb()
        t0 = time.monotonic()
        create_jobs(server, names)
        created_in = time.monotonic() - t0
        report(0, args.poll, None, rss_base, {})

        server.reset_request_counts()
        started = time.monotonic()
        result = asyncio.run(run_waits(names, args.poll, 120))
        elapsed = time.monotonic() - started
        report(args.jobs, args.poll, result, rss_base, server.request_counts())
        print(f"(created {args.jobs} jobs in {created_in:.1f} s; waits took {elapsed:.1f} s)")
        print(f"machine: {machine()}")


if __name__ == "__main__":
    main()

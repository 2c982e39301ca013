"""
Many concurrent jobs: N = 10, 100 and 500 running Autopilot jobs waited on, ours against the
Amazon provider, per poll cycle. Each run is a fresh process against a fresh emulator server in
another process (loopback, holding only that run's jobs); API calls are counted by the server.

* ours: N ``AutopilotJobTrigger`` coroutines on one event loop, as in a triggerer. Each trigger
  first checks its job once (one describe); then they wait through the shared coalesced poller.
  Their candidate-count progress lines are off (``candidate_interval=0``): the Amazon sensor has
  none, and this bench compares the calls that waiting needs. A cycle is one poll interval.
* Amazon provider: it has no trigger for AutoML jobs, so N ``SageMakerAutoMLSensor`` s, each with
  its own hook, session and client as N poke-mode tasks have. A cycle is one ``poke`` of every
  sensor, one after the other in one thread (in production each is a process of its own, holding
  a worker slot); cycles start one poll interval apart, or at once when a cycle takes longer. The
  sensors share nothing, so they run in shards of at most ``--shard`` (100) per process, one shard
  after the other, and their figures are added up: each session and client holds about 20 MiB, and
  500 of them in one process would need about 10 GiB at once.

Reported apart, before the measured cycles: the set-up (ours: building the triggers and every
trigger's first check; Amazon: building the N sensors' sessions and clients), its API calls, CPU
seconds and RSS growth per job. Measured: ``--cycles`` cycles; API calls per cycle and CPU seconds
(of the waiting process) per cycle, both per side, and their ratios. Jobs stay running through the
cycles (each sensor's poke returns False; the bench checks) and change secondary status a few times.
Target for ours: at most ``2 + ceil(N/100)`` calls per cycle, against N for one describe per job.

Each (N, side) run is repeated ``--repeats`` times; figures are median (min-max).

    python bench/many_jobs.py [--sizes 10 100 500] [--cycles 10] [--poll 3] [--repeats 2] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import cpu_seconds, create_jobs, fmt_spread, machine, rss_kib, run_child, verdict

HERE = Path(__file__).resolve()


def _counts(endpoint: str) -> dict[str, int]:
    """The server's API-call counts by operation, since it started."""
    url = f"{endpoint}/moto-api/autopilot-emulator/request-counts"
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read() or b"{}")


class _RemoteServer:
    """The bits of EmulatorServer that create_jobs needs, for a server in another process."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint_url = endpoint

    def client(self, service: str):
        import boto3

        return boto3.client(
            service,
            region_name="us-east-1",
            endpoint_url=self.endpoint_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


class _Phase:
    """API calls (counted by the server), CPU seconds and RSS growth of this process from now on."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.calls, self.cpu, self.rss = _counts(endpoint), cpu_seconds(), rss_kib()

    def end(self) -> dict:
        cpu, rss, calls = cpu_seconds() - self.cpu, rss_kib() - self.rss, _counts(self.endpoint)
        delta = {op: count - self.calls.get(op, 0) for op, count in calls.items()}
        return {"calls": {op: c for op, c in delta.items() if c}, "cpu": cpu, "rss_kib": rss}


def worker(side: str, n: int, cycles: int, poll: float, endpoint: str) -> dict:
    """Run in a fresh process: create N jobs, set up the waiters, then wait ``cycles`` cycles."""
    from airflow_autopilot.emulator import airflow_conn_value

    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = airflow_conn_value(endpoint)
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    names = [f"many-{side[:3]}-{n}-{os.getpid()}-{i}" for i in range(n)]

    if side == "ours":
        import asyncio

        from airflow_autopilot.triggers import AutopilotJobTrigger

        # Each job changes stage about three times during the cycles and stays running through them.
        create_jobs(_RemoteServer(endpoint), names, stage_seconds=cycles * poll / 3)

        async def run() -> dict:
            phase = _Phase(endpoint)
            triggers = [AutopilotJobTrigger(name, poll_interval=poll, candidate_interval=0) for name in names]

            async def consume(trigger):
                async for event in trigger.run():
                    raise RuntimeError(f"a job ended during the bench: {event.payload}")

            tasks = [asyncio.create_task(consume(t)) for t in triggers]
            describes = phase.calls.get("DescribeAutoMLJob", 0) + n
            while (await asyncio.to_thread(_counts, endpoint)).get("DescribeAutoMLJob", 0) < describes:
                await asyncio.sleep(0.1)  # until every trigger's first check is done
            setup = phase.end()
            phase = _Phase(endpoint)
            await asyncio.sleep(cycles * poll)
            measured = phase.end()
            for task in tasks:
                if task.done():
                    task.result()  # a failed wait fails the bench
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return {"setup": setup, "measured": measured, "cycles": cycles}

        return asyncio.run(run())

    from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerAutoMLSensor

    phase = _Phase(endpoint)
    sensors = [
        SageMakerAutoMLSensor(task_id=f"s{i}", job_name=name, poke_interval=poll)
        for i, name in enumerate(names)
    ]
    for sensor in sensors:  # each sensor's own session and client, as each poke-mode task builds
        _ = sensor.hook.conn
    setup = phase.end()
    # Created after the set-up, so that they are still running when the cycles start, however long
    # the set-up took; each changes stage at most about three times during cycles of ``poll``.
    create_jobs(_RemoteServer(endpoint), names, stage_seconds=cycles * poll / 3)
    phase = _Phase(endpoint)
    cycle_seconds = []
    for _ in range(cycles):
        started = time.monotonic()
        if any(sensor.poke({}) for sensor in sensors):
            raise RuntimeError("a job ended during the bench; its sensor would have stopped poking")
        cycle_seconds.append(time.monotonic() - started)
        time.sleep(max(0.0, poll - cycle_seconds[-1]))
    measured = phase.end()
    return {"setup": setup, "measured": measured, "cycles": cycles, "cycle_seconds": max(cycle_seconds)}


@contextmanager
def emulator() -> Iterator[str]:
    """A fresh emulator server in a process of its own on 127.0.0.1; yields its endpoint."""
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow_autopilot.emulator", "--port", "0", "--stage-seconds", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().rsplit(" ", 1)[1].strip()
    finally:
        server.terminate()  # by its process id
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def run_side(side: str, n: int, args: argparse.Namespace) -> dict:
    """
    One run of ``side`` with N jobs, on a fresh emulator server (no other run's jobs in its lists),
    in fresh processes: ours in one; Amazon's sensors in shards of at most ``--shard`` per process,
    one shard after the other (each on a fresh server too), their figures added up.

    Amazon sensors share nothing (each has its own session and client, ~20 MiB), so the costs of N
    of them are the sum of their shards'; sharding keeps N = 500 from needing ~10 GiB at once.
    """
    sizes = [n] if side == "ours" else [min(args.shard, n - i) for i in range(0, n, args.shard)]
    shards = []
    for size in sizes:
        with emulator() as endpoint:
            cmd = [sys.executable, str(HERE), "--poll", str(args.poll), "--worker", side]
            cmd += [str(size), str(args.cycles), endpoint]
            out, _ = run_child(cmd, timeout=900 + args.cycles * args.poll * 4)
        shards.append(json.loads(out.strip().splitlines()[-1]))
    total: dict = {"cycles": args.cycles, "shards": len(shards)}
    for phase in ("setup", "measured"):
        calls: dict[str, int] = {}
        for shard in shards:
            for op, count in shard[phase]["calls"].items():
                calls[op] = calls.get(op, 0) + count
        total[phase] = {
            "calls": calls,
            "cpu": sum(shard[phase]["cpu"] for shard in shards),
            "rss_kib": sum(shard[phase]["rss_kib"] for shard in shards),
        }
    if side == "amazon":
        total["cycle_seconds"] = max(shard["cycle_seconds"] for shard in shards)
    return total


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--cycles", type=int, default=10, help="measured poll cycles per run")
    parser.add_argument("--poll", type=float, default=3.0, help="poll interval of both sides")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each (N, side)")
    parser.add_argument("--shard", type=int, default=100, help="most Amazon sensors per process")
    parser.add_argument("--quick", action="store_true", help="N = 10 and 100, 5 cycles, 1 run each")
    parser.add_argument(
        "--worker", nargs=4, metavar=("SIDE", "N", "CYCLES", "ENDPOINT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        side, n, cycles, endpoint = args.worker
        print(json.dumps(worker(side, int(n), int(cycles), args.poll, endpoint)))
        return 0
    if args.quick:
        args.sizes, args.cycles, args.repeats = [10, 100], 5, 1

    results: dict[tuple[int, str], list[dict]] = {}
    args.machine = machine()
    for n in args.sizes:
        for repeat in range(args.repeats):
            # The order flips every repeat, so that neither side always runs later.
            for side in ("ours", "amazon")[:: 1 if repeat % 2 == 0 else -1]:
                started = time.monotonic()
                results.setdefault((n, side), []).append(run_side(side, n, args))
                print(f"  (N={n} {side}: {time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
    report(args, results)
    return 0


def report(args: argparse.Namespace, results: dict[tuple[int, str], list[dict]]) -> None:
    """Print the per-cycle table and the ratios."""
    print(
        f"Many jobs: {args.cycles} measured poll cycles per run, poll interval {args.poll:g} s,"
        f" {args.repeats} run(s) of each; median (min-max) over runs"
    )
    print(f"  machine: at start {args.machine}; at end {machine()}")
    print("  set-up (apart): ours = triggers built + every first check; amazon = N sessions + clients")
    for n in args.sizes:
        ratios_calls, ratios_cpu = [], []
        for side in ("ours", "amazon"):
            runs = results[(n, side)]
            setup_calls = [sum(r["setup"]["calls"].values()) for r in runs]
            setup_cpu = [r["setup"]["cpu"] for r in runs]
            setup_rss = [(r["setup"]["rss_kib"] + r["measured"]["rss_kib"]) / n for r in runs]
            per_cycle = [sum(r["measured"]["calls"].values()) / r["cycles"] for r in runs]
            cpu_cycle = [r["measured"]["cpu"] / r["cycles"] for r in runs]
            lists = [r["measured"]["calls"].get("ListAutoMLJobs", 0) / r["cycles"] for r in runs]
            print(f"  N={n:<4} {side}")
            print(
                f"    set-up: {fmt_spread(setup_calls, '.0f')} calls, {fmt_spread(setup_cpu, '.2f')} CPU-s,"
                f" RSS growth per job (to the end) {fmt_spread(setup_rss, '.1f')} KiB"
            )
            line = f"    per cycle: {fmt_spread(per_cycle, '.1f')} calls"
            if side == "ours":
                target = 2 + math.ceil(n / 100)
                line += f" (of which ListAutoMLJobs {fmt_spread(lists, '.1f')}; target <= {target}:"
                line += f" {verdict(max(per_cycle) <= target)})"
            else:
                line += f" (one describe per sensor: {n})"
            print(line)
            print(f"    per cycle: {fmt_spread(cpu_cycle, '.4f')} CPU-s")
            if side == "amazon":
                cycle_s = [r["cycle_seconds"] for r in runs]
                print(
                    f"    longest cycle of one shard {fmt_spread(cycle_s, '.2f')} s (poll interval"
                    f" {args.poll:g} s; {runs[0]['shards']} shard(s) of at most {args.shard} sensors)"
                )
        for ours, theirs in zip(results[(n, "ours")], results[(n, "amazon")], strict=True):
            ratios_calls.append(
                sum(ours["measured"]["calls"].values())
                / ours["cycles"]
                / max(1, sum(theirs["measured"]["calls"].values()) / theirs["cycles"])
            )
            ratios_cpu.append(
                (ours["measured"]["cpu"] / ours["cycles"]) / (theirs["measured"]["cpu"] / theirs["cycles"])
            )
        print(
            f"  N={n:<4} ratio ours/amazon per cycle: calls {fmt_spread(ratios_calls)},"
            f" CPU {fmt_spread(ratios_cpu)}"
        )


if __name__ == "__main__":
    raise SystemExit(main())

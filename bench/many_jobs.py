"""
Many concurrent jobs: N = 10, 100 and 500 Autopilot jobs waited in one process for the same wall
time, ours against the Amazon provider, in one run. Prints total SageMaker API calls, calls per
poll cycle, resident memory per waiting job and CPU seconds.

* ours: N ``AutopilotJobTrigger`` coroutines on one event loop, as in a triggerer. After each
  trigger's first describe, they wait through the shared coalesced poller. Their candidate-count
  progress lines are off (``candidate_interval=0``): the Amazon sensor has none, and this bench
  compares the calls that waiting needs.
* Amazon provider: it has no trigger for AutoML jobs, so its way to wait is
  ``SageMakerAutoMLSensor`` in poke mode: N sensors poked once per poll interval, from one process
  with a thread pool (in production each would hold a worker slot of its own). Their boto3
  clients are built just before the wall-clock window starts, so that building them does not eat
  into their polling; their memory and CPU are counted, as ours are.

The emulator runs as a separate loopback server process, so the measured process holds only the
waiters; its request counts are read over HTTP. Jobs are long enough to stay running for the whole
window, and change secondary status a few times during it. Target for ours with N = 500: at most
``2 + N/100`` calls per poll cycle after each job's first check, against N for one describe per job.

    python bench/many_jobs.py [--sizes 10 100 500] [--seconds 30] [--poll 3]
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
from pathlib import Path

from _common import cpu_seconds, create_jobs, rss_kib

HERE = Path(__file__).resolve()


def _counts(endpoint: str, reset: bool = False) -> dict[str, int]:
    url = f"{endpoint}/moto-api/autopilot-emulator/request-counts"
    request = urllib.request.Request(url, method="DELETE" if reset else "GET")
    with urllib.request.urlopen(request, timeout=30) as response:
        body = response.read()
    return json.loads(body) if body and not reset else {}


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


def worker(side: str, n: int, seconds: float, poll: float, endpoint: str) -> dict:
    """Run in a fresh process: create N jobs, then wait on them for ``seconds``; report the costs."""
    from airflow_autopilot.emulator import airflow_conn_value

    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = airflow_conn_value(endpoint)
    os.environ["AWS_ACCESS_KEY_ID"] = os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    names = [f"many-{side[:3]}-{n}-{i}" for i in range(n)]
    # Each job changes stage about three times in the window and stays running.
    create_jobs(_RemoteServer(endpoint), names, stage_seconds=seconds / 3)

    if side == "ours":
        import asyncio

        from airflow_autopilot.triggers import AutopilotJobTrigger

        async def run() -> tuple[float, float, dict]:
            triggers = [AutopilotJobTrigger(name, poll_interval=poll, candidate_interval=0) for name in names]
            gc_before, cpu_before = rss_kib(), cpu_seconds()
            _counts(endpoint, reset=True)

            async def consume(trigger):
                async for _ in trigger.run():
                    return

            tasks = [asyncio.create_task(consume(t)) for t in triggers]
            await asyncio.sleep(seconds)
            counts = _counts(endpoint)
            rss = rss_kib()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return rss - gc_before, cpu_seconds() - cpu_before, counts

        rss_delta, cpu, counts = asyncio.run(run())
    else:
        from concurrent.futures import ThreadPoolExecutor

        from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerAutoMLSensor

        sensors = [
            SageMakerAutoMLSensor(task_id=f"s{i}", job_name=name, poke_interval=poll)
            for i, name in enumerate(names)
        ]
        rss_before, cpu_before = rss_kib(), cpu_seconds()
        for sensor in sensors:  # each sensor's own boto3 client, built before the clock starts
            _ = sensor.hook.conn
        _counts(endpoint, reset=True)
        deadline = time.monotonic() + seconds
        with ThreadPoolExecutor(max_workers=16) as pool:
            while time.monotonic() < deadline:
                started = time.monotonic()
                list(pool.map(lambda s: s.poke({}), sensors))
                time.sleep(max(0.0, min(poll - (time.monotonic() - started), deadline - time.monotonic())))
        counts = _counts(endpoint)
        rss_delta, cpu = rss_kib() - rss_before, cpu_seconds() - cpu_before
    return {"rss_kib": rss_delta, "cpu": cpu, "counts": counts}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 500])
    parser.add_argument("--seconds", type=float, default=30.0, help="wall time each side waits")
    parser.add_argument("--poll", type=float, default=3.0, help="poll interval of both sides")
    parser.add_argument(
        "--worker", nargs=4, metavar=("SIDE", "N", "SECONDS", "ENDPOINT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        side, n, seconds, endpoint = args.worker
        print(json.dumps(worker(side, int(n), float(seconds), args.poll, endpoint)))
        return 0

    server = subprocess.Popen(
        [sys.executable, "-m", "airflow_autopilot.emulator", "--port", "0", "--stage-seconds", "10"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().rsplit(" ", 1)[1].strip()
        cycles = args.seconds / args.poll
        print(
            f"Many jobs: {args.seconds:g} s wall per run, poll interval {args.poll:g} s (~{cycles:.0f} cycles)"
        )
        print(
            f"{'N':>5} {'side':<8} {'API calls':>9} {'Describe':>9} {'List':>6} {'calls/cycle':>11}"
            f" {'steady/cycle':>12} {'target':>7} {'RSS KiB/job':>11} {'CPU s':>7}"
        )
        for n in args.sizes:
            results = {}
            for side in ("ours", "amazon"):
                out = subprocess.run(
                    [
                        sys.executable,
                        str(HERE),
                        "--poll",
                        str(args.poll),
                        "--worker",
                        side,
                        str(n),
                        str(args.seconds),
                        endpoint,
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=HERE.parent,
                )
                results[side] = json.loads(out.stdout.strip().splitlines()[-1])
            for side, result in results.items():
                counts = result["counts"]
                total = sum(counts.values())
                describes = counts.get("DescribeAutoMLJob", 0)
                lists = counts.get("ListAutoMLJobs", 0)
                # Steady state: beyond each job's first check (one describe per job, both sides).
                steady = (total - n) / max(cycles - 1, 1)
                target = f"{2 + math.ceil(n / 100)}" if side == "ours" else "-"
                print(
                    f"{n:>5} {side:<8} {total:>9} {describes:>9} {lists:>6} {total / cycles:>11.1f}"
                    f" {steady:>12.1f} {target:>7} {result['rss_kib'] / n:>11.1f} {result['cpu']:>7.2f}"
                )
            ours, theirs = results["ours"], results["amazon"]
            ratio_calls = sum(ours["counts"].values()) / max(1, sum(theirs["counts"].values()))
            ratio_cpu = ours["cpu"] / theirs["cpu"] if theirs["cpu"] else float("nan")
            ratio_rss = ours["rss_kib"] / theirs["rss_kib"] if theirs["rss_kib"] > 0 else float("nan")
            print(
                f"{n:>5} ratio ours/amazon: calls {ratio_calls:.3f}, CPU {ratio_cpu:.3f}, RSS {ratio_rss:.3f}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""
The coalesced poller at scale: N = 100, 500, 1,000 and 2,000 deferred waits
(``AutopilotJobTrigger.run()``, as a triggerer runs them) in one event loop against the emulator.

Workloads:

* ``batch``: N jobs launched together, then idle for the whole run;
* ``mixed``: three quarters idle, one quarter finishing at spread times during the run (one in
  ten of those fails), each passing through its eight stages.

Modes: ``coalesced`` (the default polling) and ``denied`` (ListAutoMLJobs answers AccessDenied:
the poller falls back to describes under its rate ceiling).

Each trigger starts from the hand-off its sensor would make (one describe per job before the
triggers start, not counted: the task makes it before deferring). After the run, the triggers
still waiting are started again in a fresh event loop from the same kwargs (a triggerer restart).

Per run it prints: API calls per poll cycle next to the floor computed from the emulator's OWN
change log (per cycle: ``max(1, ceil(jobs changed / 100))`` pages + one describe per job that
ended; with ListAutoMLJobs denied the ceiling is ``rate x poll``), the start and restart bursts
(calls in the first poll interval) against ``ceil(N/100) + jobs already ended``, cycle time,
client CPU per cycle, RSS per waiting job, notice latency (event time - the job's end in the
change log) p50/p95/max, missed events, and the warnings Airflow's triggerer watchdog ("async
thread was blocked") logs when run beside the triggers. Targets it checks: calls per cycle <= 1.2 x
floor (coalesced), bursts within their limit, latency <= poll + 2 s at N = 2,000 (coalesced), zero
missed events, zero blocked-loop warnings; with ListAutoMLJobs denied, calls per second <= the
ceiling and every end noticed within ``max(poll, N / rate) + poll + 2 s``.

The emulator runs as a separate loopback server process, each run in a worker process of its own
(fresh memory and CPU counters); every process is stopped by its pid.

    python bench/poller_scale.py --quick   # N = 100, 500 (about 10 minutes on 2 cores)
    python bench/poller_scale.py           # N = 100, 500, 1,000, 2,000 (about 30 minutes)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from _common import BUCKET, ROLE_ARN, BlockWatchdog, cpu_seconds, rss_kib

HERE = Path(__file__).resolve()
TERMINAL = {"Completed", "Failed", "Stopped"}
#: Jobs that never change during a run (a stage of 28 emulated hours).
IDLE_STAGE_SECONDS = 100_000
#: Notice latency target beyond one poll interval (coalesced).
LATENCY_SLACK_SECONDS = 2.0
MAX_RATIO = 1.2
#: The poller's list-window overlap (airflow_autopilot.aio.poller.DEFAULT_OVERLAP_SECONDS).
OVERLAP_SECONDS = 5.0


# --- talking to the emulator -----------------------------------------------------------------------
def _http(endpoint: str, path: str, method: str = "GET", body: dict | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{endpoint}{path}", data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        raw = response.read()
    return json.loads(raw) if raw else None


def _controls(endpoint: str, what: str, method: str = "GET", body: dict | None = None) -> Any:
    return _http(endpoint, f"/moto-api/autopilot-emulator/{what}", method, body)


def _reset(endpoint: str) -> None:
    _http(endpoint, "/moto-api/reset", "POST")
    _controls(endpoint, "deny", "DELETE")
    _controls(endpoint, "request-counts", "DELETE")


def _boto(endpoint: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "sagemaker",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=16, retries={"mode": "standard", "max_attempts": 5}),
    )


def _create(sagemaker: Any, name: str, stage_seconds: float) -> None:
    sagemaker.create_auto_ml_job(
        AutoMLJobName=name,
        InputDataConfig=[
            {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}},
                "TargetAttributeName": "churn",
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        # One candidate: the emulator's own work per finished job (artifacts) stays small.
        AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 1}},
        RoleArn=ROLE_ARN,
        Tags=[{"Key": "autopilot-emulator:stage-seconds", "Value": f"{stage_seconds:.3f}"}],
    )


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


# --- one run, in a worker process -----------------------------------------------------------------
def worker(mode: str, workload: str, n: int, endpoint: str, poll: float, cycles: int) -> dict:
    """Create the jobs, hand them to N triggers in one event loop, measure; return the figures."""
    import asyncio
    import logging
    from datetime import datetime, timedelta, timezone

    import boto3

    from airflow_autopilot.aio import poller as poller_module
    from airflow_autopilot.core.job import AutopilotJob
    from airflow_autopilot.core.waits.job import hand_off
    from airflow_autopilot.emulator import airflow_conn_value
    from airflow_autopilot.triggers import AutopilotJobTrigger

    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = airflow_conn_value(endpoint)
    # Progress lines off (as candidate counts are): the bench measures what waiting costs.
    logging.getLogger("airflow_autopilot.triggers").setLevel(logging.WARNING)
    run_seconds = poll * cycles
    rate = poller_module.DEFAULT_FALLBACK_DESCRIBES_PER_SECOND

    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    from airflow_autopilot.emulator.sample_data import churn_csv

    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="train/churn.csv", Body=churn_csv(200).encode())
    sagemaker = _boto(endpoint)
    tag = f"{mode[0]}{workload[0]}{n}"
    finishing = n // 4 if workload == "mixed" else 0
    idle = [f"ps-{tag}-{i}" for i in range(n - finishing)]
    ending = [f"{'emu-failed-' if i % 10 == 9 else ''}ps-{tag}-end-{i}" for i in range(finishing)]
    expected = {name: ("failure" if name.startswith("emu-failed-") else "success") for name in ending}
    hand_offs: dict[str, dict] = {}

    def describe(name: str) -> None:  # the sensor's check before it defers
        job = AutopilotJob.from_describe(sagemaker.describe_auto_ml_job(AutoMLJobName=name))
        hand_offs[name] = json.loads(json.dumps(hand_off(job)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        setup = time.monotonic()
        list(pool.map(lambda name: _create(sagemaker, name, IDLE_STAGE_SECONDS), idle))
        list(pool.map(describe, idle))
        # The finishing quarter ends at spread times 10 % to 70 % into the run (8 stages each),
        # counted from when the triggers should start: after these jobs' own creation and hand-off.
        margin = 3.0 + 2.0 * (time.monotonic() - setup) * finishing / max(1, len(idle))
        stages = [(margin + run_seconds * (0.1 + 0.6 * i / max(1, finishing))) / 8 for i in range(finishing)]
        list(pool.map(lambda pair: _create(sagemaker, *pair), zip(ending, stages, strict=True)))
        list(pool.map(describe, ending))
    if mode == "denied":
        _controls(endpoint, "deny", "POST", {"operations": ["ListAutoMLJobs"]})
    names = idle + ending
    deadline = (datetime.now(timezone.utc) + timedelta(hours=2)).isoformat()
    kwargs = {
        name: AutopilotJobTrigger(
            name, poll_interval=poll, candidate_interval=0, timeout_at=deadline, last_seen=hand_offs[name]
        ).serialize()[1]
        for name in names
    }
    handed_at = min(datetime.fromisoformat(h["observed_at"]).timestamp() for h in hand_offs.values())

    async def phase(run_names: list[str], seconds: float) -> dict:
        """Run one trigger per name for ``seconds``; the calls, events and the poller's cycles."""
        _controls(endpoint, "request-counts", "DELETE")
        rss_before, cpu_before = rss_kib(), cpu_seconds()
        events: dict[str, tuple[float, str]] = {}

        async def consume(trigger: AutopilotJobTrigger) -> None:
            async for event in trigger.run():
                events[trigger.job_name] = (time.time(), event.payload["status"])

        watchdog = BlockWatchdog()
        watching = asyncio.create_task(watchdog.run())
        started_wall, started = time.time(), time.monotonic()
        tasks = [asyncio.create_task(consume(AutopilotJobTrigger(**kwargs[name]))) for name in run_names]
        await asyncio.sleep(poll)
        burst = await asyncio.to_thread(_controls, endpoint, "request-counts")
        rss_peak = rss_kib()
        while time.monotonic() - started < seconds:
            await asyncio.sleep(min(poll, seconds - (time.monotonic() - started)))
            rss_peak = max(rss_peak, rss_kib())
        counts = await asyncio.to_thread(_controls, endpoint, "request-counts")
        cpu = cpu_seconds() - cpu_before
        pollers = list(poller_module._POLLERS.get(asyncio.get_running_loop(), {}).values())
        history = [
            {
                "started": r.started - started,
                "seconds": r.seconds,
                "kind": r.kind,
                "calls": r.list_calls + r.describe_calls,
                "date": r.server_date.timestamp() if r.server_date else None,
            }
            for p in pollers
            for r in p.stats.history
        ]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        watchdog.stopped = True
        await watching
        return {
            "blocked": watchdog.warnings,
            "blocked_worst": watchdog.worst,
            "started_wall": started_wall,
            "ended_wall": time.time(),
            "burst": sum(burst.values()),
            "counts": counts,
            "events": events,
            "history": history,
            "cpu": cpu,
            "rss_per_job": (rss_peak - rss_before) / max(1, len(run_names)),
        }

    main = asyncio.run(phase(names, run_seconds))
    waiting = [name for name in names if name not in main["events"]]
    restart = asyncio.run(phase(waiting, 2 * poll))
    log = _controls(endpoint, "change-log")["jobs"]
    return analyse(mode, workload, n, poll, rate, names, expected, handed_at, log, main, restart)


def analyse(
    mode: str,
    workload: str,
    n: int,
    poll: float,
    rate: float,
    names: list[str],
    expected: dict[str, str],
    handed_at: float,
    log: dict[str, list[list[Any]]],
    main: dict,
    restart: dict,
) -> dict:
    """The figures of one run from the worker's measurements and the emulator's change log."""
    changes = {name: [t for t, _, _ in log.get(name, [])] for name in names}
    ended_at = {
        name: next((t for t, status, _ in log.get(name, []) if status in TERMINAL), None) for name in names
    }
    # Cycles of the main phase, with the floor of each from the change log (server time).
    # Steady state: the cycles whose window starts after the triggers started. The ones before
    # reach back to the hand-offs (and a job changed less than the overlap before the first
    # listing is listed once more by the next): the start, whose first poll interval is the burst.
    cycles = sorted(main["history"], key=lambda c: c["started"])
    steady = [
        c
        for before, c in zip(cycles, cycles[1:], strict=False)
        if before["date"] is not None and before["date"] - OVERLAP_SECONDS >= main["started_wall"]
    ]
    if mode == "denied":
        steady = cycles  # no listing: every cycle is the same
    floor_total = 0
    previous = handed_at
    for cycle in cycles:
        date = cycle["date"]
        if date is None:
            continue
        changed = sum(1 for name in names if any(previous < t <= date for t in changes[name]))
        ended = sum(1 for name in names if ended_at[name] is not None and previous < ended_at[name] <= date)
        if cycle in steady:
            floor_total += max(1, math.ceil(changed / 100)) + ended
        previous = date
    calls = sum(c["calls"] for c in steady)
    n_cycles = max(1, len(steady))
    run_seconds = main["ended_wall"] - main["started_wall"]
    # Start bursts: calls in the first poll interval against ceil(N/100) + jobs already ended.
    ended_before = sum(1 for t in ended_at.values() if t is not None and t <= main["started_wall"])
    burst_limit = math.ceil(n / 100) + ended_before
    restarted = [name for name in names if name not in main["events"]]
    ended_before_restart = sum(
        1 for name in restarted if ended_at[name] is not None and ended_at[name] <= restart["started_wall"]
    )
    # The restart lists what changed since the hand-offs: the jobs whose waits already ended too.
    restart_limit = math.ceil(n / 100) + ended_before_restart
    # Notice latency and missed events over both phases.
    events = {**restart["events"], **main["events"]}
    bound = poll + LATENCY_SLACK_SECONDS
    if mode == "denied":
        bound = max(poll, n / rate) + poll + LATENCY_SLACK_SECONDS
    latencies, missed, wrong = [], 0, 0
    for name in names:
        end = ended_at[name]
        event = events.get(name)
        if event is not None:
            if end is None or event[1] != expected.get(name):
                wrong += 1
            else:
                latencies.append(event[0] - end)
        elif end is not None:
            phase_end = restart["ended_wall"] if name in restarted else main["ended_wall"]
            if end + bound <= phase_end:
                missed += 1
    return {
        "mode": mode,
        "workload": workload,
        "n": n,
        "cycles": len(steady),
        "start_cycles": len(cycles) - len(steady),
        "start_calls": sum(c["calls"] for c in cycles) - calls,
        "calls": calls,
        "total_calls": sum(main["counts"].values()),
        "floor": floor_total,
        "calls_per_cycle": calls / n_cycles,
        "floor_per_cycle": floor_total / n_cycles if floor_total else math.nan,
        "calls_per_second": sum(main["counts"].values()) / run_seconds,
        "ceiling_per_second": rate,
        "burst": main["burst"],
        "burst_limit": burst_limit,
        "restart_burst": restart["burst"],
        "restart_limit": restart_limit,
        "restarted": len(restarted),
        "cycle_seconds_mean": statistics.fmean(c["seconds"] for c in cycles) if cycles else math.nan,
        "cycle_seconds_max": max((c["seconds"] for c in cycles), default=math.nan),
        "cpu_ms_per_cycle": 1000 * main["cpu"] / max(1, len(cycles)),
        "rss_kib_per_job": main["rss_per_job"],
        "latency_p50": _percentile(latencies, 0.5),
        "latency_p95": _percentile(latencies, 0.95),
        "latency_max": max(latencies, default=math.nan),
        "noticed": len(latencies),
        "missed": missed,
        "wrong": wrong,
        "bound": bound,
        "describes": main["counts"].get("DescribeAutoMLJob", 0),
        # Airflow's watchdog in both phases (the first process's start reads the service data).
        "blocked": main["blocked"] + restart["blocked"],
        "blocked_worst": max(main["blocked_worst"], restart["blocked_worst"]),
        "lists": main["counts"].get("ListAutoMLJobs", 0),
        "history": [(round(c["started"], 2), c["kind"], c["calls"], round(c["seconds"], 2)) for c in cycles],
    }


# --- the driver ------------------------------------------------------------------------------------
def checks(row: dict, poll: float) -> list[str]:
    """The targets a run misses (empty when it meets them all)."""
    failed = []
    if row["mode"] == "coalesced":
        if row["calls"] > MAX_RATIO * row["floor"]:
            failed.append(f"calls {row['calls']} > {MAX_RATIO} x floor {row['floor']}")
        if row["n"] >= 2000 and row["noticed"] and not row["latency_max"] <= poll + LATENCY_SLACK_SECONDS:
            failed.append(f"latency max {row['latency_max']:.1f} s > poll + {LATENCY_SLACK_SECONDS:g} s")
    elif row["calls_per_second"] > row["ceiling_per_second"] * 1.05:
        failed.append(f"{row['calls_per_second']:.2f} calls/s > ceiling {row['ceiling_per_second']:g}")
    if row["mode"] == "coalesced" and row["burst"] > row["burst_limit"]:
        failed.append(f"start burst {row['burst']} > {row['burst_limit']}")
    if row["mode"] == "coalesced" and row["restart_burst"] > row["restart_limit"]:
        failed.append(f"restart burst {row['restart_burst']} > {row['restart_limit']}")
    if row["blocked"]:
        failed.append(f"{row['blocked']} blocked-loop warnings (worst block {row['blocked_worst']:.2f} s)")
    if row["missed"] or row["wrong"]:
        failed.append(f"{row['missed']} missed, {row['wrong']} wrong events")
    return failed


def _fmt(value: float, spec: str = ".1f") -> str:
    return "-" if value != value else format(value, spec)  # NaN


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="N = 100 and 500 only")
    parser.add_argument("--sizes", type=int, nargs="+", help="override the sizes")
    parser.add_argument("--poll", type=float, default=5.0, help="poll interval of every trigger (s)")
    parser.add_argument("--cycles", type=int, default=10, help="poll intervals per run")
    parser.add_argument("--modes", nargs="+", default=["coalesced", "denied"])
    parser.add_argument("--workloads", nargs="+", default=["batch", "mixed"])
    parser.add_argument("--verbose", action="store_true", help="print every cycle of every run")
    parser.add_argument(
        "--worker", nargs=4, metavar=("MODE", "WORKLOAD", "N", "ENDPOINT"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        mode, workload, n, endpoint = args.worker
        print(json.dumps(worker(mode, workload, int(n), endpoint, args.poll, args.cycles)))
        return 0

    sizes = args.sizes or ([100, 500] if args.quick else [100, 500, 1000, 2000])
    env = {
        **os.environ,
        "AIRFLOW_HOME": os.environ.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="autopilot-bench-"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("AWS_ENDPOINT_URL", None)
    server = subprocess.Popen(
        [sys.executable, "-m", "airflow_autopilot.emulator", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    rows, failures = [], []
    try:
        assert server.stdout is not None
        endpoint = server.stdout.readline().rsplit(" ", 1)[1].strip()
        print(
            f"Coalesced poller at scale: poll {args.poll:g} s, {args.cycles} cycles a run, emulator {endpoint}"
        )
        header = (
            f"{'mode':<9} {'work':<5} {'N':>5} {'cyc':>3} {'c/cyc':>6} {'f/cyc':>6} {'ratio':>5} {'start':>7}"
            f" {'burst':>9} {'restart':>9} {'cycle s':>11} {'CPU ms/c':>8} {'KiB/job':>7}"
            f" {'latency p50/p95/max s':>21} {'missed':>6} {'blocked':>7}"
        )
        print(header)
        for workload in args.workloads:
            for mode in args.modes:
                for n in sizes:
                    _reset(endpoint)
                    command = [
                        sys.executable, str(HERE), "--poll", str(args.poll), "--cycles", str(args.cycles),
                        "--worker", mode, workload, str(n), endpoint,
                    ]  # fmt: skip
                    child = subprocess.Popen(
                        command,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                        cwd=HERE.parent,
                        env=env,
                    )
                    try:
                        out, err = child.communicate(timeout=600 + 2 * n)
                    except subprocess.TimeoutExpired:
                        os.kill(child.pid, signal.SIGKILL)
                        child.wait()
                        raise
                    if child.returncode != 0:
                        print(err[-3000:], file=sys.stderr)
                        raise RuntimeError(f"worker {mode} {workload} {n} failed ({child.returncode})")
                    row = json.loads(out.strip().splitlines()[-1])
                    rows.append(row)
                    missed = checks(row, args.poll)
                    failures.extend(f"{mode} {workload} N={n}: {m}" for m in missed)
                    if mode == "coalesced":
                        per_cycle, floor_cell = row["calls_per_cycle"], _fmt(row["floor_per_cycle"])
                        ratio = row["calls"] / row["floor"] if row["floor"] else math.nan
                        bursts = f"{row['burst']:>4}/{row['burst_limit']:<4} {row['restart_burst']:>4}/{row['restart_limit']:<4}"
                    else:  # against the ceiling: rate x poll a cycle
                        per_cycle = row["calls_per_second"] * args.poll
                        floor_cell = f"{row['ceiling_per_second'] * args.poll:g}"
                        ratio = row["calls_per_second"] / row["ceiling_per_second"]
                        bursts = f"{row['burst']:>4}/{'-':<4} {row['restart_burst']:>4}/{'-':<4}"
                    print(
                        f"{mode:<9} {workload:<5} {n:>5} {row['cycles']:>3} {per_cycle:>6.1f} {floor_cell:>6}"
                        f" {_fmt(ratio, '.2f'):>5} {row['start_calls']:>3}/{row['start_cycles']:<3} {bursts}"
                        f" {_fmt(row['cycle_seconds_mean'], '.2f'):>5}/{_fmt(row['cycle_seconds_max'], '.2f'):<5}"
                        f" {row['cpu_ms_per_cycle']:>8.1f} {row['rss_kib_per_job']:>7.1f}"
                        f" {_fmt(row['latency_p50']):>6}/{_fmt(row['latency_p95']):>6}/{_fmt(row['latency_max']):>6}"
                        f" {row['missed']:>6} {row['blocked']:>7}" + ("  FAIL" if missed else ""),
                        flush=True,
                    )
                    if args.verbose:
                        for started, kind, calls, seconds in row["history"]:
                            print(
                                f"    cycle at {started:6.2f} s: {kind:<8} {calls:>4} calls, {seconds:.2f} s"
                            )
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
    print(
        "\nc/cyc, f/cyc: steady-state calls per cycle (windows that start after the triggers did) and the floor: per"
        " cycle max(1, ceil(jobs changed / 100)) ListAutoMLJobs pages + one describe per job that ended,"
        " from the emulator's change log. denied: calls per poll interval against the ceiling rate x poll."
    )
    print(
        "burst, restart: calls in the first poll interval / ceil(N/100) + jobs already ended (a restart"
        " starts the triggers still waiting; what changed since their hand-offs is listed again)."
    )
    print(
        "start: calls/cycles before the steady state. cycle s: mean/max wall time of a cycle's calls;"
        " CPU ms/c: client CPU per cycle, start included. blocked: Airflow's triggerer watchdog"
        ' ("Triggerer\'s async thread was blocked") run beside the triggers: warnings over both phases.'
    )
    if failures:
        print("\nTargets missed:\n  " + "\n  ".join(failures))
        return 1
    print(
        f"\nAll targets met: calls <= {MAX_RATIO} x floor, bursts within their limit, latency <= poll +"
        f" {LATENCY_SLACK_SECONDS:g} s at N = 2,000, no missed events, no blocked-loop warning; denied: within"
        " the rate ceiling."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

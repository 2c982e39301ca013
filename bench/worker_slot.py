"""
Worker-slot time for one emulated Autopilot job: our deferrable ``AutopilotJobSensor`` against the
Amazon provider's ``SageMakerAutoMLSensor`` in both of its modes, ``poke`` and ``reschedule``, all
three waiting on the same job on a loopback emulator server at the same time (the poke start
first; then ours and reschedule's starts, one at a time, so that they do not slow each other down).

A worker slot is held while a task runs. Every task start here is a fresh Python process (as the
Airflow 3 task runner starts one per try), which has ``import airflow.sdk`` done, then imports the
sensor's module, builds the sensor and runs it. Its slot time is measured inside it, from that
import to the end of the call:

* Amazon, poke: one start, ``execute`` polls every ``poke_interval`` until the job ends;
* Amazon, reschedule: one start per check; ``execute`` checks once and raises
  ``AirflowRescheduleException``; the next start comes ``poke_interval`` later, until it succeeds;
* ours, deferrable: one start checks once and defers (``TaskDeferred``); the serialized trigger
  runs on an event loop in this process (the triggerer, no slot); one more start resumes with its
  event through ``resume_execution`` (``execute_complete``).

Not counted, for any side: what the task runner itself costs per start (process start, DAG-file
parse, the API-server calls around a try) and the scheduler's latency between tries. Every start
pays them, so the "starts" column tells how often each side pays. The scheduler's record of the
first reschedule and XCom are stood in for by a small in-process object (``_TaskRecord``).

The ratio ours/reschedule depends on how many checks the job needs (job length / poke interval):
ours costs about two starts whatever the job length; reschedule costs one start per check. The
bench prints the job length from which ours holds less slot time than reschedule. No target is set
for these ratios.

    python bench/worker_slot.py [--job-seconds 120] [--poke-interval 10] [--rounds 2] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import statistics
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from _common import STAGES, create_jobs, fmt_spread, machine, point_airflow_at, run_child

HERE = Path(__file__).resolve()
#: Seconds the poke start gets before the others start (its process start-up and first check).
POKE_HEAD_START = 5.0


class _TaskRecord:
    """The bits of a task instance the sensors read: the first reschedule date and XCom pushes."""

    def __init__(self, first_reschedule: str | None) -> None:
        self.first = datetime.fromisoformat(first_reschedule) if first_reschedule else None

    def get_first_reschedule_date(self, context: Any) -> datetime | None:
        return self.first

    def xcom_push(self, key: str, value: Any) -> None:
        pass


def start(side: str, job: str, poke_interval: float, state: dict[str, Any]) -> dict[str, Any]:
    """One task start, in a fresh process: import, build and run the sensor; time it."""
    import airflow.sdk  # noqa: F401  (a forked task runner has it loaded; not counted)
    from airflow.sdk.exceptions import AirflowRescheduleException, TaskDeferred

    context: dict[str, Any] = {"ti": _TaskRecord(state.get("first_reschedule"))}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if side.startswith("amazon"):
        from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerAutoMLSensor

        imported = time.perf_counter() - wall0
        sensor: Any = SageMakerAutoMLSensor(
            task_id="amazon",
            job_name=job,
            poke_interval=poke_interval,
            mode="reschedule" if side == "amazon-reschedule" else "poke",
        )
    else:
        from airflow_autopilot.sensors import AutopilotJobSensor

        imported = time.perf_counter() - wall0
        sensor = AutopilotJobSensor(
            task_id="ours", job_name=job, deferrable=True, poke_interval=poke_interval
        )
    result: dict[str, Any] = {"outcome": "done"}
    try:
        if side == "ours-resume":
            sensor.resume_execution(state["next_method"], state["next_kwargs"], context)
        else:
            sensor.execute(context)
    except AirflowRescheduleException as reschedule:
        result = {"outcome": "reschedule", "at": reschedule.reschedule_date.isoformat()}
    except TaskDeferred as deferral:
        classpath, kwargs = deferral.trigger.serialize()
        result = {
            "outcome": "defer",
            "trigger": [classpath, kwargs],
            "next_method": deferral.method_name,
            "next_kwargs": deferral.kwargs or {},
        }
    result["slot"] = time.perf_counter() - wall0
    result["cpu"] = time.process_time() - cpu0
    result["import"] = imported
    return result


def run_start(side: str, job: str, poke_interval: float, state: dict[str, Any], timeout: float) -> dict:
    """:func:`start` in a fresh process (killed by pid after ``timeout`` seconds)."""
    cmd = [sys.executable, str(HERE), "--start", side, job, str(poke_interval), json.dumps(state)]
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW__LOGGING__LOGGING_LEVEL"}
    out, _ = run_child(cmd, timeout=timeout, env=env)
    return json.loads(out.strip().splitlines()[-1])


async def triggerer(classpath: str, kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """Rebuild the serialized trigger as a triggerer does and run it to its one event."""
    module, _, name = classpath.rpartition(".")
    trigger = getattr(importlib.import_module(module), name)(**kwargs)
    async for event in trigger.run():
        return event.payload
    return None


def one_round(job: str, poke_interval: float, timeout: float) -> dict[str, list[dict[str, Any]]]:
    """All three sides on one job at once; every task start's measurements, by side."""
    starts: dict[str, list[dict[str, Any]]] = {"amazon-poke": [], "amazon-reschedule": [], "ours": []}
    errors: list[BaseException] = []
    # One short start at a time (ours and reschedule's), so that two of them starting together on
    # a small machine do not slow each other down; waiting for the lock is outside the slot time.
    one_at_a_time = threading.Lock()

    def guarded(fn):
        def run() -> None:
            try:
                fn()
            except BaseException as error:  # reported by the main thread
                errors.append(error)

        return run

    @guarded
    def poke() -> None:
        starts["amazon-poke"].append(run_start("amazon-poke", job, poke_interval, {}, timeout))

    @guarded
    def reschedule() -> None:
        first = datetime.now(timezone.utc).isoformat()
        while True:
            with one_at_a_time:
                result = run_start(
                    "amazon-reschedule", job, poke_interval, {"first_reschedule": first}, timeout
                )
            starts["amazon-reschedule"].append(result)
            if result["outcome"] != "reschedule":
                return
            due = datetime.fromisoformat(result["at"]) - datetime.now(timezone.utc)
            time.sleep(max(0.0, due.total_seconds()))

    threads = [threading.Thread(target=poke), threading.Thread(target=reschedule)]
    threads[0].start()
    time.sleep(POKE_HEAD_START)  # the poke start's own start-up, out of the others' way
    with one_at_a_time:
        threads[1].start()
        first = run_start("ours-defer", job, poke_interval, {}, timeout)
    starts["ours"].append(first)
    if first["outcome"] != "defer":
        raise SystemExit("the job ended before our sensor could defer; use a longer --job-seconds")
    event = asyncio.run(asyncio.wait_for(triggerer(*first["trigger"]), timeout))
    state = {"next_method": first["next_method"], "next_kwargs": {**first["next_kwargs"], "event": event}}
    with one_at_a_time:
        starts["ours"].append(run_start("ours-resume", job, poke_interval, state, timeout))
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    for side, results in starts.items():
        if results[-1]["outcome"] != "done":
            raise SystemExit(f"{side} did not finish: {results[-1]}")
    return starts


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--job-seconds", type=float, default=120.0, help="emulated job length")
    parser.add_argument("--poke-interval", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=2, help="jobs waited one after the other")
    parser.add_argument("--quick", action="store_true", help="one round of a 60 s job")
    parser.add_argument("--start", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.start:
        side, job, interval, state = args.start
        print(json.dumps(start(side, job, float(interval), json.loads(state))))
        return 0
    if args.quick:
        args.job_seconds, args.rounds = 60.0, 1

    import logging

    from airflow_autopilot.emulator import EmulatorServer

    # Quiet here (the server's request lines, the trigger's progress lines); the task starts keep
    # Airflow's default log level, as in a worker.
    logging.disable(logging.INFO)
    os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "WARNING"

    stage = args.job_seconds / STAGES
    timeout = args.job_seconds * 3 + 120
    rounds = []
    before = machine()
    with EmulatorServer(port=0, stage_seconds=stage) as server:
        point_airflow_at(server)
        for i in range(args.rounds):
            job = f"worker-slot-bench-{i}"
            create_jobs(server, [job], stage)
            started = time.monotonic()
            rounds.append(one_round(job, args.poke_interval, timeout))
            print(f"round {i + 1}: job waited {time.monotonic() - started:.0f} s", flush=True)

    def total(results: list[dict[str, Any]], key: str = "slot") -> float:
        return sum(r[key] for r in results)

    print(
        f"Worker-slot time, one emulated job of {args.job_seconds:g} s, poke interval"
        f" {args.poke_interval:g} s, {args.rounds} round(s); median (min-max) over rounds"
    )
    print(f"  machine: at start {before}; at end {machine()}")
    print("  slot-s = time inside the task starts (import of the sensor module .. end of the call)")
    labels = {
        "amazon-poke": "Amazon SageMakerAutoMLSensor, poke",
        "amazon-reschedule": "Amazon SageMakerAutoMLSensor, reschedule",
        "ours": "airflow_autopilot sensor, deferrable",
    }
    for side, label in labels.items():
        per_round = [r[side] for r in rounds]
        print(f"  {label}")
        print(f"    starts {fmt_spread([len(s) for s in per_round], '.0f')}")
        print(f"    slot-s {fmt_spread([total(s) for s in per_round], '.2f')}")
        print(f"    CPU-s  {fmt_spread([total(s, 'cpu') for s in per_round], '.2f')}")
        if side != "amazon-poke":
            every = [one["slot"] for s in per_round for one in s]
            print(f"    slot-s per start {fmt_spread(every, '.2f')}")
    for side in ("amazon-poke", "amazon-reschedule"):
        ratios = [total(r["ours"]) / total(r[side]) for r in rounds]
        cpu = [total(r["ours"], "cpu") / total(r[side], "cpu") for r in rounds]
        print(
            f"  ratio ours/{side.split('-')[1]}: slot-s {fmt_spread(ratios, '.4f')},"
            f" CPU-s {fmt_spread(cpu, '.3f')}  (no target)"
        )
    per_check = statistics.median(one["slot"] for r in rounds for one in r["amazon-reschedule"])
    ours = statistics.median(total(r["ours"]) for r in rounds)
    print(
        f"  break-even: ours holds {ours:.2f} slot-s per job; reschedule {per_check:.2f} per check, so ours"
        f" holds less once a job needs more than {ours / per_check:.1f} checks"
        f" (~{ours / per_check * args.poke_interval:.0f} s at this poke interval)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""
Worker-slot time for one emulated Autopilot job of several minutes: our deferrable
``AutopilotJobSensor`` against the Amazon provider's ``SageMakerAutoMLSensor`` in poke mode, both
waiting on the same job on the emulator server, at the same time, in one run.

A worker slot is held while a task's ``execute`` (or ``execute_complete``) runs. The Amazon sensor
holds it for the whole job; ours holds it for one check before deferring and for the resume, while
the trigger waits on an event loop (the triggerer), which holds no slot.

    python bench/worker_slot.py [--job-seconds 180] [--poke-interval 5]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time

from _common import STAGES, create_jobs, point_airflow_at


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--job-seconds", type=float, default=180.0, help="emulated job length (wall clock)")
    parser.add_argument("--poke-interval", type=float, default=5.0)
    args = parser.parse_args()

    from airflow.providers.amazon.aws.sensors.sagemaker import SageMakerAutoMLSensor
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_autopilot.emulator import EmulatorServer
    from airflow_autopilot.sensors import AutopilotJobSensor

    stage = args.job_seconds / STAGES
    with EmulatorServer(port=0, stage_seconds=stage) as server:
        point_airflow_at(server)
        create_jobs(server, ["worker-slot-bench"], stage)
        started = time.monotonic()

        theirs: dict[str, float] = {}

        def amazon() -> None:
            sensor = SageMakerAutoMLSensor(
                task_id="amazon", job_name="worker-slot-bench", poke_interval=args.poke_interval
            )
            t0 = time.monotonic()
            sensor.execute({})
            theirs["slot"] = time.monotonic() - t0

        thread = threading.Thread(target=amazon, name="amazon-poke-sensor")
        thread.start()

        ours = AutopilotJobSensor(
            task_id="ours", job_name="worker-slot-bench", deferrable=True, poke_interval=args.poke_interval
        )
        t0 = time.monotonic()
        try:
            ours.execute({})
            raise SystemExit("the job ended before our sensor could defer; use a longer --job-seconds")
        except TaskDeferred as deferral:
            trigger = deferral.trigger
        slot = time.monotonic() - t0

        async def triggerer():
            async for event in trigger.run():
                return event.payload
            return None

        event = asyncio.run(triggerer())
        t1 = time.monotonic()
        summary = ours.execute_complete({}, event)
        slot += time.monotonic() - t1
        thread.join()
        wall = time.monotonic() - started

    print(f"Worker-slot time for one emulated job of {wall:.0f} s (poke interval {args.poke_interval:g} s)")
    print(f"  job ended: {summary['AutoMLJobStatus']}/{summary['AutoMLJobSecondaryStatus']}")
    print(f"  Amazon SageMakerAutoMLSensor (poke):   {theirs['slot']:8.2f} slot-seconds")
    print(f"  airflow_autopilot sensor (deferrable): {slot:8.2f} slot-seconds")
    print(f"  ratio ours/theirs: {slot / theirs['slot']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

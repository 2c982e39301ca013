"""
Promotes each Autopilot job that finishes anywhere (SageMaker Studio, a notebook, the SDK, another
Airflow) once: finished job -> best candidate -> gate -> register (or reject).

Scheduled on an Asset watched by :class:`~airflow_autopilot.event_triggers.AutopilotJobCompletedTrigger`
(Airflow 3): each Completed job whose name starts with ``AUTOPILOT_EXAMPLE_WATCH_PREFIX`` (default
``studio-``) becomes one asset event carrying the job's summary. Airflow folds the events that arrive
before the scheduler creates the next run into one run, so the promotion is a task group mapped over
every job of the run's events. Idempotent, keyed by the job name: a second promotion of the same job (a
redelivered event after a triggerer died in the at-least-once window of docs/events.md, a manual re-run,
a cleared task) registers nothing new: the register step's ClientToken comes from the job and the
candidate. On Airflow 2.11 (no AssetWatcher) the DAG is defined unscheduled; docs/events.md shows
the scheduled alternative. No AWS call happens at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, AirflowSkipException, Asset, XComArg, task, task_group

from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS
from airflow_autopilot.assets import triggering_extras
from airflow_autopilot.operators import AutopilotBestCandidateOperator
from airflow_autopilot.operators.promotion import (
    DECISION_XCOM_KEY,
    AutopilotPromotionBranchOperator,
    AutopilotRegisterCandidateOperator,
)

PREFIX = os.environ.get("AUTOPILOT_EXAMPLE_WATCH_PREFIX", "studio-")
POLL_SECONDS = float(os.environ.get("AUTOPILOT_EXAMPLE_POLL_SECONDS", "60"))
#: How long a claim whose watcher run stopped before its event was known stored is respected before
#: the job is reported again (docs/events.md, Exactly once).
LEASE_SECONDS = float(os.environ.get("AUTOPILOT_EXAMPLE_WATCH_LEASE_SECONDS", "300"))
URI = "sagemaker://autopilot/finished-jobs/" + PREFIX.rstrip("-")

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import AssetWatcher

    from airflow_autopilot.event_triggers import AutopilotJobCompletedTrigger

    FINISHED_JOBS = Asset(
        name="autopilot-finished-jobs",
        uri=URI,
        watchers=[
            AssetWatcher(
                name="autopilot-finished-jobs",
                trigger=AutopilotJobCompletedTrigger(
                    name_prefix=PREFIX, poll_interval=POLL_SECONDS, lease_seconds=LEASE_SECONDS
                ),
            )
        ],
    )
    SCHEDULE: list | None = [FINISHED_JOBS]
else:  # Airflow 2.11: no event-driven scheduling (docs/events.md, On Airflow 2.11)
    FINISHED_JOBS = Asset(uri=URI)
    SCHEDULE = None

GROUP = "autopilot-studio-models"

with DAG(
    dag_id="example_autopilot_event_driven",
    description="Every Autopilot job finished anywhere: gate and register its best candidate",
    schedule=SCHEDULE,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=4,
    render_template_as_native_obj=True,
    tags=["autopilot", "example", "event-driven"],
) as dag:

    @task
    def finished_jobs(**context) -> list[dict]:
        """The finished jobs this run is for (its asset events' payloads, one per job); skip a manual run."""
        jobs: dict[str, dict] = {}
        for extra in triggering_extras(context, FINISHED_JOBS):
            job = extra.get("payload")
            if not job:
                continue
            if job.get("redelivery"):
                # The watcher may have reported this job before (docs/events.md, Exactly once): its
                # promotion is safe all the same, keyed by the job name (the register's ClientToken).
                print(f"Redelivered: {job['job_name']} may have started a run already")
            jobs.setdefault(job["job_name"], job)
        if not jobs:
            raise AirflowSkipException("Not triggered by a finished job (a manual run)")
        # The scheduler folds the events that arrive before it creates the next run into one run:
        # every job here gets its own mapped promotion below.
        print(f"{len(jobs)} finished job(s) in this run: {', '.join(jobs)}")
        return list(jobs.values())

    @task_group
    def promote(job: dict) -> None:
        """One job's promotion: best candidate -> gate -> register (or reject)."""

        @task
        def finished_job(job: dict) -> str:
            """The job this mapped promotion is for; its name keys every step."""
            print(
                f"Finished: {job['job_name']} {job['status']}, best {job['best_candidate']} "
                f"{job['objective_metric']}={job['objective_value']}"
            )
            return job["job_name"]

        job_name = finished_job(job)
        best_candidate = AutopilotBestCandidateOperator(task_id="best_candidate", job_name=job_name)
        gate = AutopilotPromotionBranchOperator(
            task_id="gate",
            best_candidate=best_candidate.output,
            threshold=0.6,
            model_package_group_name=GROUP,
            # Inside the group, task ids carry its prefix.
            promote_task_ids="promote.promoted",
            reject_task_ids="promote.reject",
        )
        # This job's decision (the gate's XCom at this map index).
        decision = XComArg(gate, key=DECISION_XCOM_KEY)

        @task
        def promoted(decision: dict) -> None:
            """Go on to register only when the gate promoted this job's candidate. Checked here, not
            left to the branch alone: the scheduler creates a mapped group's downstream task instances
            after the gate ran, so the branch's skip of this map index may find nothing to skip."""
            if not decision["promote"]:
                raise AirflowSkipException(f"Not promoted: {decision['reason']}")

        register = AutopilotRegisterCandidateOperator(
            task_id="register",
            best_candidate=best_candidate.output,
            job_name=job_name,
            model_package_group_name=GROUP,
            model_package_group_description="Autopilot models finished outside Airflow",
            approval_status="PendingManualApproval",
        )

        @task
        def reject(job_name: str, decision: dict) -> None:
            """The candidate did not pass the gate (skipped when it did, for the reason above)."""
            if decision["promote"]:
                raise AirflowSkipException(f"Promoted: {job_name}")
            print(f"Not promoted: {job_name}: {decision['reason']}")

        best_candidate >> gate
        promoted(decision) >> register
        reject(job_name, decision)

    promote.expand(job=finished_jobs())

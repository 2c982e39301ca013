"""
Watch an Autopilot job started elsewhere (console, SDK, another DAG) and collect its results.

Trigger with the job's name in the run's conf: ``{"job_name": "my-autopilot-job"}``.

wait_for_job (deferrable) -> best_candidate + leaderboard

No AWS call happens at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_autopilot.operators import AutopilotBestCandidateOperator, AutopilotCandidatesOperator
from airflow_autopilot.sensors import AutopilotJobSensor

POLL_SECONDS = float(os.environ.get("AUTOPILOT_EXAMPLE_POLL_SECONDS", "60"))

with DAG(
    dag_id="example_autopilot_watch_existing_job",
    description="Wait for an existing Autopilot job named in the run's conf, then read its results",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["autopilot", "example"],
    params={
        "job_name": Param(None, type=["null", "string"], description="the AutoMLJobName to watch (required)"),
        "top_k": Param(5, type="integer", minimum=1),
    },
) as dag:
    wait_for_job = AutopilotJobSensor(
        task_id="wait_for_job",
        job_name="{{ params.job_name }}",
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=24 * 3600,
    )
    best_candidate = AutopilotBestCandidateOperator(
        task_id="best_candidate", job_name="{{ params.job_name }}"
    )
    leaderboard = AutopilotCandidatesOperator(
        task_id="leaderboard", job_name="{{ params.job_name }}", top_k="{{ params.top_k }}"
    )
    wait_for_job >> [best_candidate, leaderboard]

"""AutopilotJobLink in a real ``dag.test()`` run: the console URL Airflow shows for the finished task."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.providers.common.compat.sdk import DAG

from airflow_autopilot.links import AutopilotJobLink
from airflow_autopilot.sensors import AutopilotJobSensor
from tests.airflow_versions import extra_link_url


def test_airflow_stores_the_console_url_after_the_task(run_dag, autopilot_emulator, make_job):
    autopilot_emulator.configure(stage_seconds=0.05)
    make_job("link-job")
    with DAG("links_console_url", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:
        AutopilotJobSensor(
            task_id="wait_link",
            job_name="link-job",
            aws_conn_id=None,
            region_name="us-east-1",
            poke_interval=0.05,
        )
    dag_run, _ = run_dag(dag)
    assert extra_link_url(dag, dag_run, "wait_link", AutopilotJobLink()) == (
        "https://console.aws.amazon.com/sagemaker/home?region=us-east-1#/automl-jobs/link-job"
    )

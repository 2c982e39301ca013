"""AutopilotJobSensor in real ``dag.test()`` runs: poke, reschedule and deferrable modes."""

from __future__ import annotations

from datetime import datetime, timezone

from airflow.providers.common.compat.sdk import DAG

from tests.helpers import sensor

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_dag_poke_mode_pushes_summary_and_link(run_dag, autopilot_emulator, make_job):
    autopilot_emulator.configure(stage_seconds=0.1)
    make_job("sensor-dag-poke")
    with DAG("sensor_dag_poke", schedule=None, start_date=START) as dag:
        sensor("sensor-dag-poke", task_id="wait_poke")
    dag_run, xcoms = run_dag(dag)
    assert task_states(dag_run) == {"wait_poke": "success"}
    assert xcoms["wait_poke"]["AutoMLJobName"] == "sensor-dag-poke"
    assert xcoms["wait_poke"]["BestCandidateName"]
    assert xcoms["wait_poke:autopilot_job_details"] == {
        "job_name": "sensor-dag-poke",
        "region_name": "us-east-1",
        "partition": "aws",
        "aws_domain": "aws.amazon.com",
    }


def test_dag_reschedule_mode(run_dag, autopilot_emulator, make_job):
    autopilot_emulator.configure(stage_seconds=0.1)
    make_job("sensor-dag-resched")
    with DAG("sensor_dag_reschedule", schedule=None, start_date=START) as dag:
        sensor("sensor-dag-resched", task_id="wait_resched", mode="reschedule", poke_interval=0.2)
    dag_run, xcoms = run_dag(dag)
    assert task_states(dag_run) == {"wait_resched": "success"}
    assert xcoms["wait_resched"]["AutoMLJobStatus"] == "Completed"


def test_dag_failed_job_fails_without_retry_and_soft_fail_skips(run_dag, autopilot_emulator, make_job):
    autopilot_emulator.configure(stage_seconds=0.05)
    make_job("emu-failed-dag")
    with DAG("sensor_dag_failed", schedule=None, start_date=START) as dag:
        sensor("emu-failed-dag", task_id="hard", retries=3)
        sensor("emu-failed-dag", task_id="soft", soft_fail=True)
    dag_run, _ = run_dag(dag)
    assert task_states(dag_run) == {"hard": "failed", "soft": "skipped"}
    hard = dag_run.get_task_instance("hard")
    assert hard.try_number == 1  # AutopilotJobFailed burns no retry


def test_dag_deferrable_mode_against_the_emulator_server(run_dag, server, make_job):
    make_job("sensor-dag-defer")
    make_job("emu-stopped-dag-defer")
    with DAG("sensor_dag_deferrable", schedule=None, start_date=START) as dag:
        sensor("sensor-dag-defer", task_id="defer_ok", aws_conn_id="aws_default", deferrable=True)
        sensor("emu-stopped-dag-defer", task_id="defer_stopped", aws_conn_id="aws_default", deferrable=True)
    server.reset_request_counts()
    dag_run, xcoms = run_dag(dag)
    assert task_states(dag_run) == {"defer_ok": "success", "defer_stopped": "failed"}
    assert xcoms["defer_ok"]["AutoMLJobStatus"] == "Completed"
    assert xcoms["defer_ok"]["BestCandidateName"]
    assert xcoms["defer_ok:autopilot_job_details"]["job_name"] == "sensor-dag-defer"

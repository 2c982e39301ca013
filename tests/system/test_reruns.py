"""
Retries and re-runs in real ``dag.test()`` runs against the emulator server: a retry after the
task's own ``execution_timeout`` kill starts a new job; a DAG run deleted and triggered again with
the same run id does not inherit the old run's job.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from airflow_autopilot.core.naming import STOPPED_BY_TAG_KEY
from airflow_autopilot.operators import AutopilotCreateJobOperator
from tests.helpers import create_kwargs, sagemaker


class SlowFirstTry(AutopilotCreateJobOperator):
    """Try 1's job runs 100 s per stage (it outlives the task's execution_timeout); later tries' run fast."""

    def execute(self, context):
        seconds = "100" if context["ti"].try_number == 1 else "0.05"
        self.tags = {"autopilot-emulator:stage-seconds": seconds}
        return super().execute(context)


@pytest.mark.slow  # a real 4 s execution_timeout; the fast case is in tests/integration/test_operators_create.py
def test_retry_after_execution_timeout_starts_a_new_job(server, run_dag, capfd):
    from airflow.providers.common.compat.sdk import DAG

    with DAG(f"rerun_kill_{uuid.uuid4().hex[:8]}", schedule=None) as dag:
        SlowFirstTry(
            task_id="create",
            retries=1,
            retry_delay=timedelta(seconds=0),
            execution_timeout=timedelta(seconds=4),
            deferrable=False,
            **create_kwargs(),
        )
    dag_run, xcoms = run_dag(dag)
    assert dag_run.state == "success"
    assert dag_run.get_task_instance("create").try_number == 2
    sm = sagemaker(server)
    jobs = {j["AutoMLJobName"]: j for j in sm.list_auto_ml_jobs()["AutoMLJobSummaries"]}
    assert len(jobs) == 2 and server.request_counts()["CreateAutoMLJob"] == 2
    killed = next(name for name in jobs if name != xcoms["create"]["AutoMLJobName"])
    assert jobs[killed]["AutoMLJobStatus"] in ("Stopping", "Stopped")  # on_kill stopped it
    tags = sm.list_tags(ResourceArn=jobs[killed]["AutoMLJobArn"])["Tags"]
    assert {"Key": STOPPED_BY_TAG_KEY, "Value": "on_kill of try 1"} in tags
    assert jobs[xcoms["create"]["AutoMLJobName"]]["AutoMLJobStatus"] == "Completed"
    out = capfd.readouterr()
    assert "stopped by an earlier try of this task (on_kill)" in out.out + out.err


def test_a_deleted_run_triggered_again_with_the_same_run_id_gets_a_new_job(server, run_dag, monkeypatch):
    """
    ``dag.test()`` deletes the run of the same logical date and creates it again with the same run
    id, which is the situation; but it dates the run's start at its logical date, where the
    scheduler records the time the run starts. The patch restores the scheduler's start date.
    """
    from airflow.providers.common.compat.sdk import DAG

    from tests.airflow_versions import dag_test_run_creator

    module, name = dag_test_run_creator()
    original = getattr(module, name)

    def started_now(**kwargs):
        return original(**{**kwargs, "start_date": datetime.now(timezone.utc)})

    monkeypatch.setattr(module, name, started_now)
    with DAG(f"rerun_same_id_{uuid.uuid4().hex[:8]}", schedule=None) as dag:
        AutopilotCreateJobOperator(task_id="create", deferrable=False, **create_kwargs())
    when = datetime(2024, 6, 1, tzinfo=timezone.utc)
    first_run, first = run_dag(dag, logical_date=when, run_after=when)
    second_run, second = run_dag(dag, logical_date=when, run_after=when)  # the first run is deleted
    assert second_run.run_id == first_run.run_id and second_run.start_date != first_run.start_date
    assert (first_run.state, second_run.state) == ("success", "success")
    assert second["create"]["AutoMLJobName"] != first["create"]["AutoMLJobName"]
    assert server.request_counts()["CreateAutoMLJob"] == 2

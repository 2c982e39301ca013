"""
One retry rule in every waiting mode, in real ``dag.test()`` runs against the emulator server: a
permission or credential error while waiting (AccessDeniedException, ExpiredTokenException) fails the
try and keeps Airflow's retries, so the next try finishes the wait; the job's own failure uses none.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from airflow.providers.common.compat.sdk import DAG

from tests.helpers import create_kwargs, sensor

START = datetime(2026, 1, 1, tzinfo=timezone.utc)
RETRY = {"retries": 1, "retry_delay": timedelta(0)}


def tries(dag_run) -> dict[str, tuple[str, int]]:
    return {ti.task_id: (str(ti.state), ti.try_number) for ti in dag_run.get_task_instances()}


def test_a_credential_error_keeps_retries_in_every_mode(run_dag, server, make_job):
    from airflow_autopilot.operators import AutopilotCreateJobOperator

    denied, expired = {"access_denied": 1}, {"expired_token": 1}
    for mode in ("poke", "resched", "defer"):
        make_job(f"retry-{mode}")
    # poke and reschedule: the first check meets the error.
    server.inject_faults("retry-poke", **denied)
    server.inject_faults("retry-resched", **expired)
    # deferrable: the task's own first check sees the job "not yet visible", the trigger the error.
    # (With candidate counting on, the trigger's ListCandidatesForAutoMLJob could meet the per-job
    # fault before its describe, depending on timing; a failed count is only a missing progress
    # line, so counting is off here: candidate_interval=0.)
    server.inject_faults("retry-defer", not_found=1, **expired)
    # the create operator: its look-up before creating finds nothing, the wait meets the error.
    # (Its deferred wait is the deferrable case's trigger; a per-job fault there could be met by the
    # trigger's ListCandidatesForAutoMLJob count instead, depending on timing, so it is not here.)
    server.inject_faults("retry-create", not_found=1, **expired)
    conn = {"aws_conn_id": "aws_default", "botocore_config": None}
    with DAG("retry_rule", schedule=None, start_date=START) as dag:
        sensor("retry-poke", task_id="poke", **conn, **RETRY)
        sensor("retry-resched", task_id="reschedule", mode="reschedule", poke_interval=0.2, **conn, **RETRY)
        sensor(
            "retry-defer",
            task_id="deferrable",
            deferrable=True,
            poke_interval=0.2,
            candidate_interval=0,
            **conn,
            **RETRY,
        )
        AutopilotCreateJobOperator(
            task_id="create_wait",
            **create_kwargs(job_name="retry-create", deferrable=False, max_candidates=1),
            **conn,
            **RETRY,
        )
    dag_run, xcoms = run_dag(dag)
    assert tries(dag_run) == {
        "poke": ("success", 2),
        "reschedule": ("success", 2),
        "deferrable": ("success", 2),
        "create_wait": ("success", 2),
    }
    # The retries re-attached to the jobs the first tries created: one job each.
    names = [j["AutoMLJobName"] for j in server.client("sagemaker").list_auto_ml_jobs()["AutoMLJobSummaries"]]
    assert sorted(n for n in names if "create" in n) == ["retry-create"]
    assert xcoms["deferrable"]["AutoMLJobStatus"] == "Completed"

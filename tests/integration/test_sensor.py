"""AutopilotJobSensor in poke, reschedule and deferrable modes, against the emulator."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from airflow.sdk import DAG, PokeReturnValue
from airflow.sdk.exceptions import AirflowFailException

from airflow_autopilot.core.waiting import make_event
from airflow_autopilot.exceptions import AutopilotJobFailed, AutopilotValidationError
from airflow_autopilot.links import AutopilotJobLink
from airflow_autopilot.sensors import AutopilotJobSensor

ONE_ATTEMPT = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def sensor(job_name: str, **kwargs) -> AutopilotJobSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("aws_conn_id", None)
    kwargs.setdefault("region_name", "us-east-1")
    kwargs.setdefault("botocore_config", ONE_ATTEMPT)
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("timeout", 60)
    return AutopilotJobSensor(job_name=job_name, **kwargs)


def task_states(dag_run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


# --- input checks ---------------------------------------------------------------------------------
def test_init_keeps_templates_verbatim_and_touches_nothing():
    s = sensor("{{ params.job }}", failure_secondary_statuses=["NotAStatus"])
    assert s.job_name == "{{ params.job }}"  # validated in execute, not __init__
    assert "hook" not in s.__dict__
    assert s.template_fields == ("job_name",)
    assert isinstance(s.operator_extra_links[0], AutopilotJobLink)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"failure_secondary_statuses": ["ModelDeployError"]}, "failure_secondary_statuses"),
        ({"target_secondary_statuses": ["Tuning"]}, "target_secondary_statuses"),
        ({"success_statuses": ["Done"]}, "success_statuses"),
        ({"failure_statuses": ["Completed"]}, "success_statuses and failure_statuses overlap"),
    ],
)
def test_bad_criteria_fail_in_execute_naming_the_parameter(kwargs, param):
    s = sensor("good-name", **kwargs)
    with pytest.raises(ValueError, match=param):
        s.execute({})
    assert "hook" not in s.__dict__  # no AWS call was attempted


def test_bad_job_name_fails_before_any_aws_call():
    s = sensor("bad_name!")
    with pytest.raises(AutopilotValidationError, match="AutoMLJobName"):
        s.execute({})
    assert "hook" not in s.__dict__


# --- poke, one check at a time (in-process emulator) -----------------------------------------------
@pytest.fixture
def emulator(autopilot_emulator):
    autopilot_emulator.configure(stage_seconds=100)  # the test moves the clock itself
    return autopilot_emulator


def test_poke_follows_a_slow_job_through_its_statuses(emulator, make_job, capsys):
    make_job("sensor-steps", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 4}})
    s = sensor("sensor-steps", candidate_interval=0.0001)
    seen = []
    for _ in range(12):
        result = s.poke({})
        seen.append(s.hook.get_job("sensor-steps").secondary_status)
        if result:
            break
        assert result is False
        emulator.advance(100)
    assert isinstance(result, PokeReturnValue) and result.is_done
    summary = result.xcom_value
    assert summary["AutoMLJobStatus"] == "Completed" and summary["BestCandidateName"]
    assert summary["EndTime"].endswith("+00:00")  # JSON-safe
    assert seen[0] == "Starting" and "ModelTuning" in seen
    out = capsys.readouterr().out  # the task logger writes through structlog
    assert "of 4 candidates completed" in out
    assert out.count("is InProgress/ModelTuning") == 1  # one line per change


def test_poke_target_secondary_status_succeeds_early(emulator, make_job):
    make_job("sensor-early")
    s = sensor("sensor-early", target_secondary_statuses=["ModelTuning"])
    assert s.poke({}) is False
    emulator.advance(350)
    result = s.poke({})
    assert result and result.xcom_value["AutoMLJobSecondaryStatus"] == "ModelTuning"


def test_poke_transient_errors_never_fail_the_sensor(emulator, make_job):
    make_job("sensor-faults")
    emulator.advance(3600)
    emulator.inject_faults("sensor-faults", throttle=2, server_errors=2, not_found=1)
    s = sensor("sensor-faults")
    results = [s.poke({}) for _ in range(6)]
    assert results[:5] == [False] * 5
    assert results[5].xcom_value["AutoMLJobStatus"] == "Completed"


@pytest.mark.parametrize(
    ("outcome", "texts"),
    [
        (
            "failed",
            [
                "'sensor-failed'",
                "ended Failed/Failed",
                "FailureReason: ClientError",
                "PartialFailure: Candidate",
            ],
        ),
        ("stopped", ["ended Stopped/Stopped"]),
        ("runtime-limit-no-candidate", ["Completed/MaxAutoMLJobRuntimeReached", "no BestCandidate"]),
    ],
)
def test_poke_terminal_failure_raises_the_jobs_reason(emulator, make_job, outcome, texts):
    name = f"sensor-{outcome}"[:32]
    make_job(name, outcome=outcome)
    emulator.advance(3600)
    s = sensor(name)
    with pytest.raises(AutopilotJobFailed) as info:
        s.poke({})
    assert isinstance(info.value, AirflowFailException)
    for text in texts:
        assert text.replace("'sensor-failed'", f"'{name}'") in str(info.value)


def test_execute_complete_rejects_missing_and_non_success_events():
    s = sensor("j1")
    with pytest.raises(AutopilotJobFailed, match="no usable event"):
        s.execute_complete({}, None)
    with pytest.raises(AutopilotJobFailed, match="boom"):
        s.execute_complete({}, make_event("failure", "j1", "FailureReason: boom"))
    assert s.execute_complete({}, {"status": "success", "summary": {"AutoMLJobStatus": "Completed"}}) == {
        "AutoMLJobStatus": "Completed"
    }


# --- whole DAG runs (real dag.test()) -------------------------------------------------------------
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


@pytest.fixture
def server(autopilot_emulator_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", autopilot_emulator_server.endpoint_url)
    autopilot_emulator_server.configure(stage_seconds=0.1)
    return autopilot_emulator_server


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


def test_deferrable_finishes_at_once_when_already_terminal(server, make_job):
    make_job("sensor-done")
    server.advance(3600)
    s = sensor("sensor-done", aws_conn_id="aws_default", deferrable=True)
    summary = s.execute({})  # no TaskDeferred raised
    assert summary["AutoMLJobStatus"] == "Completed"


def test_deferrable_defers_with_the_sensors_settings(server, make_job):
    from airflow.sdk.exceptions import TaskDeferred

    make_job("emu-slow-defer-args")
    s = sensor(
        "emu-slow-defer-args",
        aws_conn_id="aws_default",
        deferrable=True,
        timeout=600,
        poke_interval=30,
        target_secondary_statuses=["CandidateDefinitionsGenerated"],
    )
    with pytest.raises(TaskDeferred) as info:
        s.execute({})
    trigger = info.value.trigger
    _, kwargs = trigger.serialize()
    assert kwargs["poll_interval"] == 30 and kwargs["criteria"]["target_secondary_statuses"] == [
        "CandidateDefinitionsGenerated"
    ]
    deadline = datetime.fromisoformat(kwargs["timeout_at"])
    assert 590 < (deadline - datetime.now(timezone.utc)).total_seconds() <= 600
    assert info.value.method_name == "execute_complete"
    assert info.value.timeout.total_seconds() > 600

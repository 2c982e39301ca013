"""AutopilotJobSensor against the emulator: pokes one check at a time, and deferrable ``execute``."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, PokeReturnValue

from airflow_autopilot.exceptions import AutopilotJobFailed
from tests.helpers import sensor

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")


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


# --- deferrable execute, against the emulator server --------------------------------------------
def test_deferrable_finishes_at_once_when_already_terminal(server, make_job):
    make_job("sensor-done")
    server.advance(3600)
    s = sensor("sensor-done", aws_conn_id="aws_default", deferrable=True)
    summary = s.execute({})  # no TaskDeferred raised
    assert summary["AutoMLJobStatus"] == "Completed"


def test_deferrable_defers_with_the_sensors_settings(server, make_job):
    from airflow.providers.common.compat.sdk import TaskDeferred

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

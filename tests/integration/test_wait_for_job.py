"""``AutopilotHook.wait_for_job`` (the create operator's blocking wait) against the in-process emulator."""

from __future__ import annotations

import logging

import pytest

from airflow_autopilot.core.job import WaitCriteria
from airflow_autopilot.exceptions import AutopilotJobFailed, AutopilotJobNotFound, AutopilotWaitTimeout
from airflow_autopilot.hooks import AutopilotHook
from tests.conftest import ONE_ATTEMPT

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")


@pytest.fixture
def fast_hook(autopilot_emulator, emulated_clock):
    """A hook whose botocore makes one attempt, so this package's own retry logic is what is tested."""
    autopilot_emulator.configure(stage_seconds=0.1)
    hook = AutopilotHook(
        aws_conn_id=None,
        region_name="us-east-1",
        config=ONE_ATTEMPT,
    )
    _ = hook.client  # build the client before any job starts its clock
    return hook


def wait(hook, name: str, **kwargs):
    """``hook.wait_for_job`` with the default criteria, logging to the root logger unless ``log`` is given."""
    kwargs.setdefault("log", logging.getLogger())
    return hook.wait_for_job(name, WaitCriteria(), **kwargs)


def test_wait_for_job_follows_the_job_to_success_and_logs_each_change(
    fast_hook, autopilot_emulator, make_job, caplog
):
    # Stages of 5 s on the emulator's clock, polled every second: a poll that takes long on a loaded
    # machine (real time moves that clock too) cannot skip a stage, as it could with 0.1 s stages.
    autopilot_emulator.configure(stage_seconds=5.0)
    make_job("wait-ok", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 3}})
    log = logging.getLogger("test.wait")
    with caplog.at_level(logging.INFO, logger="test.wait"):
        job = wait(fast_hook, "wait-ok", poll_interval=1.0, timeout=600, log=log, candidate_interval=1.0)
    assert (job.status, job.secondary_status) == ("Completed", "Completed")
    assert job.best_candidate
    lines = [r.getMessage() for r in caplog.records]
    changes = [line for line in lines if " is " in line and " after " in line]
    assert len(changes) == len(set(changes))  # one line per change
    assert any("ModelTuning" in line for line in changes) and "Completed/Completed" in changes[-1]
    assert any("of 3 candidates completed" in line for line in lines)


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (
            "failed",
            [
                "ended Failed/Failed",
                "FailureReason: ClientError: Autopilot could not train",
                "PartialFailure: ",
            ],
        ),
        ("stopped", ["ended Stopped/Stopped", "SageMaker gave no FailureReason"]),
        ("runtime-limit-no-candidate", ["Completed/MaxAutoMLJobRuntimeReached", "no BestCandidate"]),
    ],
)
def test_wait_for_job_raises_the_jobs_own_reason(fast_hook, make_job, outcome, expected):
    make_job(f"wait-{outcome}", outcome=outcome)
    with pytest.raises(AutopilotJobFailed) as info:
        wait(fast_hook, f"wait-{outcome}", poll_interval=0.02, timeout=30)
    for text in expected:
        assert text in str(info.value)


def test_wait_for_job_survives_throttling_5xx_and_not_found_after_create(
    fast_hook, make_job, autopilot_emulator
):
    make_job("wait-faults")
    autopilot_emulator.inject_faults("wait-faults", throttle=3, server_errors=2, not_found=2)
    autopilot_emulator.reset_request_counts()
    job = wait(fast_hook, "wait-faults", poll_interval=0.01, timeout=30, max_backoff=0.05)
    assert job.status == "Completed"
    assert autopilot_emulator.request_counts()["DescribeAutoMLJob"] > 7  # 7 faults, then real answers


def test_wait_for_job_not_found_after_grace_is_an_error(fast_hook):
    with pytest.raises(AutopilotJobNotFound, match="no-such-job"):
        wait(fast_hook, "no-such-job", poll_interval=0.01, timeout=5, not_found_grace=0)


def test_wait_for_job_times_out_with_last_state(fast_hook, make_job):
    make_job("emu-slow-wait")
    with pytest.raises(AutopilotWaitTimeout, match=r"Timed out after 0.2s .*last seen InProgress/"):
        wait(fast_hook, "emu-slow-wait", poll_interval=0.05, timeout=0.2)

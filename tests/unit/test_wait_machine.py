"""The one wait state machine (JobWait, EndpointWait) and its sync and async drivers, without I/O."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from airflow_autopilot.core.clock import ManualClock
from airflow_autopilot.core.job import AutopilotJob, WaitCriteria
from airflow_autopilot.core.waits.endpoint import EndpointWait
from airflow_autopilot.core.waits.job import JobWait
from airflow_autopilot.core.waits.loop import drive, drive_async
from airflow_autopilot.core.waits.machine import Finished, Sleep
from airflow_autopilot.exceptions import AutopilotError, AutopilotJobFailed, AutopilotWaitTimeout

LOG = logging.getLogger("test-wait-machine")
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def job(status: str, secondary: str, **extra) -> AutopilotJob:
    raw = {"AutoMLJobName": "j1", "AutoMLJobStatus": status, "AutoMLJobSecondaryStatus": secondary}
    if status == "Completed":
        raw["BestCandidate"] = {"CandidateName": "c1"}
    raw.update(extra)
    return AutopilotJob.from_describe(raw)


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
    )


def job_wait(clock: ManualClock, **kwargs) -> JobWait:
    kwargs.setdefault("poll_interval", 10.0)
    kwargs.setdefault("created_at", START)
    return JobWait("j1", WaitCriteria(), log=LOG, clock=clock, **kwargs)


def test_running_job_sleeps_one_poll_interval_with_upward_jitter():
    wait = job_wait(ManualClock(START))
    step = wait.on_result(job("InProgress", "ModelTuning"))
    assert isinstance(step, Sleep) and 10.0 <= step.seconds <= 11.0


def test_success_and_failure_verdicts_finish_with_the_jobs_own_words():
    wait = job_wait(ManualClock(START))
    done = wait.on_result(job("Completed", "Completed"))
    assert isinstance(done, Finished) and done.status == "success" and done.outcome().name == "j1"

    failed = job_wait(ManualClock(START)).on_result(
        job("Failed", "Failed", FailureReason="ClientError: bad data")
    )
    assert isinstance(failed, Finished) and failed.status == "failure"
    assert "ClientError: bad data" in failed.message
    with pytest.raises(AutopilotJobFailed, match="bad data"):
        failed.outcome()


def test_transient_errors_back_off_exponentially_and_never_faster_than_a_poll():
    wait = job_wait(ManualClock(START), max_backoff=1000)
    delays = [wait.on_error(client_error("ThrottlingException")).seconds for _ in range(4)]
    for n, delay in enumerate(delays):
        assert 10 * 2**n <= delay <= 15 * 2**n
    # a success resets the backoff
    wait.on_result(job("InProgress", "ModelTuning"))
    assert wait.on_error(client_error("ThrottlingException")).seconds <= 15


def test_not_found_is_tolerated_only_within_the_grace_period():
    clock = ManualClock(START)
    wait = job_wait(clock, not_found_grace=60)
    assert isinstance(wait.on_error(client_error("ResourceNotFound")), Sleep)
    clock.advance(61)
    step = wait.on_error(client_error("ResourceNotFound"))
    assert isinstance(step, Finished) and step.status == "error"
    with pytest.raises(ClientError):
        step.outcome()


def test_a_permanent_error_ends_the_wait_with_that_error():
    step = job_wait(ManualClock(START)).on_error(client_error("AccessDeniedException"))
    assert isinstance(step, Finished) and step.status == "error"
    assert "AccessDeniedException" in step.message


def test_the_deadline_ends_the_wait_naming_the_last_state_and_never_oversleeps():
    clock = ManualClock(START)
    wait = job_wait(clock, timeout=25)
    assert wait.on_result(job("InProgress", "AnalyzingData")).seconds <= 11
    clock.advance(20)
    assert wait.on_result(job("InProgress", "ModelTuning")).seconds == pytest.approx(5)
    clock.advance(5)
    step = wait.on_error(client_error("ThrottlingException"))
    assert isinstance(step, Finished) and step.status == "timeout"
    assert "after 25s" in step.message and "last seen InProgress/ModelTuning" in step.message
    with pytest.raises(AutopilotWaitTimeout):
        step.outcome()


def test_a_deadline_given_as_iso_text_is_used_as_such():
    clock = ManualClock(START)
    wait = job_wait(clock, deadline=(START + timedelta(seconds=5)).isoformat())
    clock.advance(6)
    step = wait.on_result(job("InProgress", "Starting"))
    assert (
        isinstance(step, Finished) and step.status == "timeout" and "at 2026-01-01T00:00:05" in step.message
    )


def test_api_version_follows_the_last_describe():
    wait = job_wait(ManualClock(START))
    assert wait.api_version == "auto"
    wait.on_result(AutopilotJob.from_describe({"AutoMLJobStatus": "InProgress"}, "v2"))
    assert wait.api_version == "v2"


def test_job_event_is_the_documented_payload():
    wait = job_wait(ManualClock(START))
    event = wait.event(wait.on_result(job("Completed", "Completed")))
    assert event["status"] == "success" and event["job_name"] == "j1"
    assert event["summary"]["BestCandidateName"] == "c1"


def test_candidate_counts_are_rate_limited_and_survive_listing_errors(caplog):
    wait = job_wait(ManualClock(START), candidate_interval=300)
    training = job("InProgress", "ModelTuning", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 10}})
    request = wait.reporter.candidates_request(training)
    assert request == {"AutoMLJobName": "j1", "StatusEquals": "Completed", "MaxResults": 100}
    with caplog.at_level(logging.INFO, logger=LOG.name):
        wait.reporter.report_listing(training, {"Candidates": [{}, {}, {}]})
    assert "3 of 10 candidates completed" in caplog.text
    assert wait.reporter.candidates_request(training) is None  # not again within the interval
    assert (
        job_wait(ManualClock(START)).reporter.candidates_request(job("InProgress", "AnalyzingData")) is None
    )
    other = job_wait(ManualClock(START))
    other.reporter.report_listing(training, client_error("ThrottlingException"))  # logged, not raised


# --- endpoints -----------------------------------------------------------------------------------
def endpoint(status: str, config: str = "cfg-new", **extra) -> dict:
    return {"EndpointName": "ep", "EndpointStatus": status, "EndpointConfigName": config, **extra}


def test_endpoint_in_service_on_another_config_is_not_done():
    wait = EndpointWait("ep", "cfg-new", poll_interval=5, log=LOG)
    assert isinstance(wait.on_result(endpoint("InService", "cfg-old")), Sleep)
    assert wait.on_result(endpoint("InService")).status == "success"
    assert (
        EndpointWait("ep", None, poll_interval=5, log=LOG).on_result(endpoint("InService", "x")).status
        == "success"
    )


@pytest.mark.parametrize("status", ["Failed", "OutOfService", "Deleting"])
def test_endpoint_failure_carries_the_failure_reason(status):
    wait = EndpointWait("ep", "cfg-new", poll_interval=5, log=LOG)
    step = wait.on_result(endpoint(status, FailureReason="image not found"))
    assert isinstance(step, Finished) and step.status == "failure"
    assert "image not found" in step.message and status in step.message
    assert wait.event(step)["endpoint"]["FailureReason"] == "image not found"


def test_endpoint_timeout_is_retryable_not_a_job_failure():
    clock = ManualClock(START)
    wait = EndpointWait("ep", None, poll_interval=5, timeout=10, log=LOG, clock=clock)
    wait.on_result(endpoint("Creating"))
    clock.advance(10)
    step = wait.on_result(endpoint("Creating"))
    with pytest.raises(AutopilotError, match="Timed out after 10s waiting for endpoint 'ep'") as info:
        step.outcome()
    assert not isinstance(info.value, AutopilotJobFailed)


# --- drivers -------------------------------------------------------------------------------------
def test_drive_polls_until_done_sleeping_what_the_machine_says():
    answers = iter(
        [
            client_error("ThrottlingException", 400),
            job("InProgress", "ModelTuning"),
            job("Completed", "Completed"),
        ]
    )
    sleeps: list[float] = []
    seen: list[str] = []

    def poll():
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    result = drive(
        job_wait(ManualClock(START)),
        poll,
        between=lambda j: seen.append(j.secondary_status),
        sleep=sleeps.append,
    )
    assert result.status == "Completed"
    assert len(sleeps) == 2 and all(s >= 10 for s in sleeps)
    assert seen == ["ModelTuning"]  # ``between`` only runs while the wait goes on


def test_drive_raises_the_failure():
    with pytest.raises(AutopilotJobFailed):
        drive(job_wait(ManualClock(START)), lambda: job("Stopped", "Stopped"), sleep=lambda s: None)


def test_drive_async_returns_errors_as_a_finished_step():
    async def poll():
        raise client_error("AccessDeniedException")

    async def main():
        return await drive_async(job_wait(ManualClock(START)), poll)

    step = asyncio.run(main())
    assert step.status == "error" and isinstance(step.error, ClientError)


def test_many_machines_in_one_event_loop_keep_their_own_state():
    """Each wait's backoff, last state and verdict are its own, however many run together."""

    async def one(n: int) -> Finished:
        answers = [job("InProgress", "ModelTuning")] * (n % 3) + [
            job("Completed" if n % 2 else "Failed", "Completed")
        ]
        it = iter(answers)

        async def poll():
            await asyncio.sleep(0)
            return next(it)

        async def sleep(seconds: float) -> None:
            await asyncio.sleep(0)

        return await drive_async(job_wait(ManualClock(START)), poll, sleep=sleep)

    async def main():
        return await asyncio.gather(*(one(n) for n in range(200)))

    results = asyncio.run(main())
    assert [r.status for r in results] == ["success" if n % 2 else "failure" for n in range(200)]


# --- call budgets: every call of a wait ends by the deadline --------------------------------------
@pytest.mark.parametrize("budget", [0.0, 0.3, 1.0, 4.9, 15.0, 59.0, 300.0])
def test_call_limits_fit_the_budget(budget):
    from airflow_autopilot.core.waits.pace import call_limits, call_worst_case

    limits = call_limits(budget, connect_timeout=60, read_timeout=60, attempts=9)
    assert limits is not None
    worst = call_worst_case(limits.connect_timeout, limits.read_timeout, limits.attempts)
    # A budget too small for one attempt still gets one, as short as the shortest step allows.
    assert worst <= max(budget, 0.1)
    assert 1 <= limits.attempts <= 9


def test_call_limits_keep_the_configured_settings_when_they_fit():
    from airflow_autopilot.core.waits.pace import call_limits

    assert call_limits(None, connect_timeout=60, read_timeout=60, attempts=9) is None
    assert call_limits(3600, connect_timeout=60, read_timeout=60, attempts=9) is None
    # Never above the configured timeouts, and more attempts as the budget allows.
    assert call_limits(30, connect_timeout=1, read_timeout=2, attempts=5) is None  # 5 x 3 s + 15 s of backoff
    limits = call_limits(20, connect_timeout=1, read_timeout=2, attempts=5)
    assert limits is not None and (limits.connect_timeout, limits.read_timeout) == (1, 2)
    assert limits.attempts == 4  # 4 x 3 s + 1 + 2 + 4 s of backoff = 19 s


def test_call_budget_is_the_time_left_with_a_short_last_look(monkeypatch):
    monkeypatch.setenv("AUTOPILOT_MIN_POLL_INTERVAL", "0.01")  # the 0.2 s poll below, not the 1 s floor
    clock = ManualClock(START)
    wait = job_wait(clock, poll_interval=10.0, timeout=30.0)
    assert wait.call_budget() == 30.0
    clock.advance(29.5)
    assert wait.call_budget() == 1.0  # at least MIN_CALL_SECONDS, even at the deadline
    clock.advance(100)
    assert wait.call_budget() == 1.0
    fast = job_wait(clock, poll_interval=0.2, timeout=0.1)
    assert fast.call_budget() == pytest.approx(0.2)  # never more than one poll interval past it
    assert job_wait(clock).call_budget() is None  # no deadline, no bound


async def test_async_driver_gives_up_a_hanging_poll_at_the_deadline():
    wait = JobWait("j1", WaitCriteria(), poll_interval=0.05, timeout=0.3, log=LOG)

    async def hang() -> AutopilotJob:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    loop = asyncio.get_running_loop()
    started = loop.time()
    step = await drive_async(wait, hang)
    assert step.status == "timeout"
    assert loop.time() - started < 2.0


def test_the_drivers_sleep_on_the_machines_clock_unless_told_otherwise():
    answers = iter(
        [job("InProgress", "ModelTuning"), job("InProgress", "ModelTuning"), job("Completed", "Completed")]
    )
    clock = ManualClock(START)
    assert drive(job_wait(clock), lambda: next(answers)).status == "Completed"
    assert len(clock.slept) == 2 and all(10 <= s <= 11 for s in clock.slept)

    async def poll():
        return job("InProgress", "ModelTuning")

    timed = ManualClock(START)
    step = asyncio.run(drive_async(job_wait(timed, timeout=35), poll))
    # The wait's own clock moved by each sleep, so the deadline passed without real time passing.
    assert step.status == "timeout" and sum(timed.slept) == pytest.approx(35, abs=1e-3)
    assert (timed.now() - START).total_seconds() == pytest.approx(35, abs=1e-3)


def test_a_wait_built_without_a_clock_takes_the_default_one():
    from airflow_autopilot.core.clock import clock_in_use

    clock = ManualClock(START)
    with clock_in_use(clock):
        wait = EndpointWait("ep", None, poll_interval=5, timeout=10, log=LOG)
    assert wait.clock is clock and wait.deadline == START + timedelta(seconds=10)

"""The shared waiting logic's pure helpers: transient errors, backoff, verdicts, progress, events."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
    SSLError,
)

from airflow_autopilot.core.clock import ManualClock
from airflow_autopilot.core.job import AutopilotJob, WaitCriteria
from airflow_autopilot.core.waits.job import make_event
from airflow_autopilot.core.waits.pace import backoff_delay, poll_delay
from airflow_autopilot.core.waits.progress import ProgressReporter
from airflow_autopilot.exceptions import AutopilotJobFailed, AutopilotJobNotFound, AutopilotWaitTimeout
from airflow_autopilot.operators.base import resolve_event
from tests.helpers import client_error


@pytest.mark.parametrize(
    "error",
    [
        client_error("ThrottlingException"),
        client_error("Throttling"),
        client_error("TooManyRequestsException", 429),
        client_error("RequestLimitExceeded"),
        client_error("InternalFailure", 500),
        client_error("ServiceUnavailable", 503),
        EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
        ReadTimeoutError(endpoint_url="http://127.0.0.1:1"),
        ConnectionClosedError(endpoint_url="http://127.0.0.1:1"),
        aiohttp.ServerDisconnectedError(),
        aiohttp.ClientConnectionError("reset"),
        asyncio.TimeoutError(),
        ConnectionResetError(),
    ],
    ids=lambda e: (
        type(e).__name__ + (f"-{e.response['Error']['Code']}" if isinstance(e, ClientError) else "")
    ),
)
def test_transient_errors(error):
    from airflow_autopilot.core.errors import is_transient

    assert is_transient(error)


@pytest.mark.parametrize(
    "error",
    [
        client_error("ValidationException"),
        client_error("AccessDeniedException", 403),
        client_error("ResourceNotFound"),
        SSLError(endpoint_url="https://x", error="bad cert"),
        ValueError("nope"),
        AutopilotJobNotFound("j", "us-east-1"),
    ],
    ids=lambda e: (
        type(e).__name__ + (f"-{e.response['Error']['Code']}" if isinstance(e, ClientError) else "")
    ),
)
def test_permanent_errors(error):
    from airflow_autopilot.core.errors import is_transient

    assert not is_transient(error)


def test_backoff_grows_with_jitter_is_capped_and_never_beats_the_poll_interval():
    for failures in range(1, 30):
        base = min(60.0 * 2 ** (failures - 1), 300.0)
        delays = {backoff_delay(failures, 60.0, 300.0) for _ in range(20)}
        assert all(base <= d <= 1.5 * base for d in delays)
        assert len(delays) > 1  # jittered
    assert 600.0 <= backoff_delay(50, 600.0, 300.0) <= 900.0  # the cap never undercuts the interval


def test_poll_delay_never_polls_faster_than_the_interval():
    delays = [poll_delay(30.0) for _ in range(200)]
    assert min(delays) >= 30.0 and max(delays) <= 33.0


def _job(**fields) -> AutopilotJob:
    base = {"AutoMLJobName": "j1", "AutoMLJobArn": "arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1"}
    return AutopilotJob.from_describe({**base, **fields})


def test_completed_without_best_candidate_is_a_failure():
    crit = WaitCriteria()
    no_model = _job(AutoMLJobStatus="Completed", AutoMLJobSecondaryStatus="MaxAutoMLJobRuntimeReached")
    assert crit.verdict(no_model) == "failure"
    with_model = _job(
        AutoMLJobStatus="Completed",
        AutoMLJobSecondaryStatus="Completed",
        BestCandidate={"CandidateName": "c"},
    )
    assert crit.verdict(with_model) == "success"
    definitions = _job(
        AutoMLJobStatus="Completed",
        AutoMLJobSecondaryStatus="CandidateDefinitionsGenerated",
        GenerateCandidateDefinitionsOnly=True,
    )
    assert crit.verdict(definitions) == "success"
    early = WaitCriteria.build(target_secondary_statuses=["ModelTuning"])
    assert (
        early.verdict(_job(AutoMLJobStatus="InProgress", AutoMLJobSecondaryStatus="ModelTuning")) == "success"
    )


def test_resolve_event_success_returns_summary():
    job = _job(
        AutoMLJobStatus="Completed",
        AutoMLJobSecondaryStatus="Completed",
        BestCandidate={"CandidateName": "c"},
    )
    event = make_event("success", "j1", "done", job)
    assert resolve_event(event, soft_fail=False)["BestCandidateName"] == "c"


@pytest.mark.parametrize(
    ("event", "error", "text"),
    [
        (None, AutopilotJobFailed, "no usable event"),
        ({}, AutopilotJobFailed, "Unexpected trigger event status None"),
        ("success", AutopilotJobFailed, "no usable event"),
        ({"status": "weird", "job_name": "j1", "message": "m"}, AutopilotJobFailed, "weird"),
        (make_event("failure", "j1", "FailureReason: boom"), AutopilotJobFailed, "FailureReason: boom"),
        (make_event("timeout", "j1", "Timed out at"), AutopilotWaitTimeout, "Timed out at"),
    ],
)
def test_resolve_event_rejects_everything_but_success(event, error, text):
    with pytest.raises(error, match=text) as info:
        resolve_event(event, soft_fail=False)
    assert isinstance(info.value, AirflowFailException)  # no retries burned
    with pytest.raises(AirflowSkipException, match=text):
        resolve_event(event, soft_fail=True)


@pytest.mark.parametrize("soft_fail", [False, True])
def test_an_error_event_keeps_retries_and_is_not_skipped(soft_fail):
    from airflow_autopilot.exceptions import AutopilotWaitError

    with pytest.raises(AutopilotWaitError, match="AccessDenied") as info:
        resolve_event(make_event("error", "j1", "AccessDenied"), soft_fail=soft_fail)
    assert not isinstance(info.value, AirflowFailException)  # Airflow retries it


def test_make_event_rejects_unknown_status():
    with pytest.raises(ValueError, match="status"):
        make_event("done", "j1", "m")  # type: ignore[arg-type]


class ListLog:
    def __init__(self):
        self.lines: list[str] = []

    def info(self, msg, *args):
        self.lines.append(msg % args)

    warning = info


def test_progress_reporter_one_line_per_change_and_rate_limited_counts():
    clock = ManualClock()
    log = ListLog()
    rep = ProgressReporter("j1", log, candidate_interval=300, clock=clock)
    tuning = _job(
        AutoMLJobStatus="InProgress",
        AutoMLJobSecondaryStatus="ModelTuning",
        AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 10}},
    )
    starting = _job(AutoMLJobStatus="InProgress", AutoMLJobSecondaryStatus="Starting")
    assert rep.update(starting) and not rep.update(starting)
    assert not rep.candidate_count_due(starting)  # not training
    assert rep.update(tuning)
    assert rep.candidate_count_due(tuning)
    rep.report_candidates(tuning, 3)
    clock.advance(299.0)
    assert not rep.candidate_count_due(tuning)
    clock.advance(1.0)
    assert rep.candidate_count_due(tuning)
    rep.report_candidates(tuning, 100, more=True)
    assert log.lines[0].startswith(
        "Autopilot job j1 is InProgress/Starting (starting the AutoML job) after 0.0s"
    )
    assert "InProgress/ModelTuning" in log.lines[1]
    assert "3 of 10 candidates completed" in log.lines[2]
    assert "at least 100 of 10 candidates" in log.lines[3]
    assert len(log.lines) == 4

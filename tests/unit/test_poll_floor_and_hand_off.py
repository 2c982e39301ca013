"""The poll-interval floor, the task-to-trigger hand-off, the server time of a response, and
ResourceNotFound after a job was described (core rules behind the coalesced poller)."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from airflow_autopilot.core.job import AutopilotJob, WaitCriteria, server_time
from airflow_autopilot.core.waits.endpoint import EndpointWait
from airflow_autopilot.core.waits.job import JobWait, from_hand_off, hand_off
from airflow_autopilot.core.waits.machine import Finished, Sleep
from airflow_autopilot.core.waits.pace import (
    MIN_POLL_INTERVAL_ENV,
    MIN_POLL_INTERVAL_SECONDS,
    floor_poll_interval,
)
from airflow_autopilot.triggers import AutopilotJobTrigger

LOG = logging.getLogger("test-poll-floor")
CREATED = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def production_floor(monkeypatch):
    monkeypatch.delenv(MIN_POLL_INTERVAL_ENV, raising=False)


def describe(**extra) -> dict:
    response = {
        "AutoMLJobName": "j1",
        "AutoMLJobArn": "arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1",
        "AutoMLJobStatus": "InProgress",
        "AutoMLJobSecondaryStatus": "ModelTuning",
        "CreationTime": CREATED,
        "LastModifiedTime": CREATED.replace(minute=5),
        "RoleArn": "arn:aws:iam::123456789012:role/r",
        "InputDataConfig": [{"DataSource": {"S3DataSource": {"S3Uri": "s3://b/k"}}}],
        "AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 7}},
        "ResponseMetadata": {"HTTPHeaders": {"date": "Sun, 01 Mar 2026 12:06:30 GMT"}},
    }
    response.update(extra)
    return response


# --- the floor ------------------------------------------------------------------------------------
@pytest.mark.parametrize("requested", [0, 0.0, 0.2, -1])
def test_a_poll_interval_below_the_floor_is_raised_with_a_warning(requested, caplog):
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        assert floor_poll_interval(requested, LOG, "job j1") == MIN_POLL_INTERVAL_SECONDS == 1.0
    assert f"Poll interval {requested}s for job j1 is below the floor of 1s" in caplog.text
    assert MIN_POLL_INTERVAL_ENV in caplog.text


def test_a_poll_interval_at_or_above_the_floor_is_kept_silently(caplog):
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        assert floor_poll_interval(1.0, LOG) == 1.0
        assert floor_poll_interval(60, LOG) == 60.0
    assert not caplog.records


def test_every_wait_keeps_to_the_floor_and_the_environment_moves_it(monkeypatch):
    assert JobWait("j1", WaitCriteria(), poll_interval=0, log=LOG).poll_interval == 1.0
    assert EndpointWait("ep", poll_interval=0, log=LOG).poll_interval == 1.0
    assert AutopilotJobTrigger("j1", poll_interval=0).poll_interval == 0  # kwargs stay verbatim
    monkeypatch.setenv(MIN_POLL_INTERVAL_ENV, "0.05")
    assert JobWait("j1", WaitCriteria(), poll_interval=0, log=LOG).poll_interval == 0.05
    monkeypatch.setenv(MIN_POLL_INTERVAL_ENV, "nonsense")
    assert JobWait("j1", WaitCriteria(), poll_interval=0, log=LOG).poll_interval == 1.0


def test_the_sensor_pokes_no_faster_than_the_floor():
    from airflow_autopilot.sensors import AutopilotJobSensor

    sensor = AutopilotJobSensor(task_id="s", job_name="j1", poke_interval=0)
    assert sensor.poke_interval == 0  # Airflow allows it ...
    sensor._prepare({})
    assert sensor.poke_interval == 1.0  # ... the wait does not


# --- server time and the hand-off -----------------------------------------------------------------
def test_server_time_is_the_date_header_in_utc():
    assert server_time(describe()) == datetime(2026, 3, 1, 12, 6, 30, tzinfo=timezone.utc)
    assert server_time({"ResponseMetadata": {"HTTPHeaders": {"date": "garbage"}}}) is None
    assert server_time({"AutoMLJobName": "j1"}) is None
    assert AutopilotJob.from_describe(describe()).observed_at == datetime(
        2026, 3, 1, 12, 6, 30, tzinfo=timezone.utc
    )


def test_the_hand_off_is_small_json_and_round_trips_what_the_trigger_needs():
    job = AutopilotJob.from_describe(describe())
    data = json.loads(json.dumps(hand_off(job)))
    assert "RoleArn" not in data["job"] and "InputDataConfig" not in data["job"]
    back = from_hand_off(data)
    assert (back.name, back.status, back.secondary_status) == ("j1", "InProgress", "ModelTuning")
    assert back.creation_time == CREATED and back.last_modified_time == CREATED.replace(minute=5)
    assert back.observed_at == job.observed_at
    assert back.max_candidates == 7 and back.api_version == "v1"
    assert WaitCriteria().verdict(back) == "waiting"


def test_a_malformed_hand_off_names_the_kwarg():
    with pytest.raises(ValueError, match="last_seen"):
        from_hand_off({"job": {"AutoMLJobName": "j1"}})


def test_the_trigger_serializes_its_hand_off_and_rate():
    job = AutopilotJob.from_describe(describe())
    trigger = AutopilotJobTrigger("j1", last_seen=hand_off(job), fallback_describes_per_second=2.5)
    path, kwargs = trigger.serialize()
    rebuilt = AutopilotJobTrigger(**json.loads(json.dumps(kwargs)))
    assert rebuilt.serialize() == (path, kwargs)
    assert kwargs["fallback_describes_per_second"] == 2.5
    assert kwargs["last_seen"]["job"]["AutoMLJobStatus"] == "InProgress"


# --- a job that disappears ------------------------------------------------------------------------
def not_found() -> ClientError:
    return ClientError(
        {"Error": {"Code": "ResourceNotFound", "Message": "Could not find AutoML job with name j1."}},
        "DescribeAutoMLJob",
    )


def test_not_found_after_a_describe_ends_the_wait_naming_the_last_state():
    wait = JobWait("j1", WaitCriteria(), poll_interval=10, log=LOG, not_found_grace=3600)
    assert isinstance(wait.on_error(not_found()), Sleep)  # never described: maybe not visible yet
    wait.on_result(AutopilotJob.from_describe(describe()))
    step = wait.on_error(not_found())
    assert isinstance(step, Finished) and step.status == "error"
    assert step.message.startswith("Autopilot job 'j1' not found (ClientError:")
    assert "last seen InProgress/ModelTuning" in step.message


def test_a_stale_hand_off_leaves_the_candidate_count_due():
    """After a triggerer restart the task's hand-off is old: the restarted trigger counts at once."""

    from airflow_autopilot.triggers import handed_off_recently

    now = datetime.now(timezone.utc)
    fresh = AutopilotJob.from_describe({"AutoMLJobName": "j1"})
    assert handed_off_recently(fresh, 60, now=now)  # no Date header: taken as recent
    fresh = replace(fresh, observed_at=now - timedelta(seconds=5))
    assert handed_off_recently(fresh, 60, now=now)
    assert not handed_off_recently(replace(fresh, observed_at=now - timedelta(seconds=600)), 60, now=now)


def test_without_a_date_header_the_poller_dates_its_window_by_its_own_clock():
    """A server without a Date header: the next window reaches a generous minute (plus the overlap)
    back from the poller's clock, the one it was given."""
    import asyncio

    from airflow_autopilot.aio.poller import DEFAULT_OVERLAP_SECONDS, CoalescedPoller
    from airflow_autopilot.core.clock import ManualClock
    from airflow_autopilot.core.job import WaitCriteria

    start = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    listed: list[dict] = []

    class NoDateClient:
        async def list_auto_ml_jobs(self, **kwargs):
            listed.append(kwargs)
            return {"AutoMLJobSummaries": []}  # no ResponseMetadata, so no Date header

    async def main():
        client = NoDateClient()
        poller = CoalescedPoller(clock=ManualClock(start), run_loop=False)
        async with poller.watch("no-date", WaitCriteria(), 60.0, client=client):
            await poller.cycle(client)  # the first listing: every watched job
            await poller.cycle(client)  # then a window

    asyncio.run(main())
    assert "LastModifiedTimeAfter" not in listed[0]
    assert listed[1]["LastModifiedTimeAfter"] == start - timedelta(seconds=60 + DEFAULT_OVERLAP_SECONDS)

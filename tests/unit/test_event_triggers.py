"""The event watcher's parse-time contract: bad filters fail naming the parameter, serialize()
round-trips, the SQS stand-in serializes as the Amazon trigger, and Airflow 2.11 gets a clear error."""

from __future__ import annotations

import pytest

from airflow_autopilot import event_triggers
from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS
from airflow_autopilot.core.events import (
    Ack,
    EventFilterError,
    JobEventFilter,
    ack_tag_key,
    claim_owner,
    claim_value,
    decide,
    finished_order,
    reported_value,
    tag_dict,
)
from airflow_autopilot.core.job import AutopilotJob

needs_airflow_3 = pytest.mark.skipif(not AIRFLOW_V_3_0_PLUS, reason="AssetWatcher needs Airflow 3")


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({}, "match_all=True"),
        ({"statuses": []}, "statuses"),
        ({"name_prefix": "x", "statuses": ["Done"]}, "statuses: ['Done'] unknown"),
        ({"name_prefix": "x", "statuses": ["InProgress"]}, "statuses: ['InProgress'] not terminal"),
        ({"name_pattern": "churn-[0-9"}, "name_pattern"),
        ({"problem_types": ["Clustering"]}, "problem_types"),
        ({"api_version": "v3", "name_prefix": "x"}, "api_version"),
        ({"tags": {"team": 1}}, "tags"),
    ],
)
def test_bad_filters_fail_naming_the_parameter(kwargs, parameter):
    with pytest.raises(EventFilterError, match=parameter.replace("[", r"\[").replace("]", r"\]")):
        JobEventFilter.build(**kwargs)


def test_match_all_allows_an_empty_filter_and_the_default_status_is_completed():
    assert JobEventFilter.build(match_all=True).statuses == ("Completed",)


def test_summary_matching_by_status_prefix_and_pattern():
    f = JobEventFilter.build(
        name_prefix="churn-", name_pattern=r"churn-\d+", statuses=["Completed", "Failed"]
    )
    assert f.matches_summary({"AutoMLJobName": "churn-12", "AutoMLJobStatus": "Failed"})
    assert not f.matches_summary({"AutoMLJobName": "churn-12", "AutoMLJobStatus": "Stopped"})
    assert not f.matches_summary({"AutoMLJobName": "churn-x", "AutoMLJobStatus": "Completed"})
    assert not f.matches_summary({"AutoMLJobName": "risk-1", "AutoMLJobStatus": "Completed"})


def test_job_matching_by_tags_problem_type_and_api_version():
    f = JobEventFilter.build(tags={"team": "risk"}, problem_types="Regression", api_version="v2")
    job = AutopilotJob(raw={"AutoMLJobStatus": "Completed", "ProblemType": "Regression"}, api_version="v2")
    assert f.matches_job(job, {"team": "risk", "other": "x"})
    assert not f.matches_job(job, {"team": "ops"})
    assert not f.matches_job(AutopilotJob(raw=dict(job.raw), api_version="v1"), {"team": "risk"})


def test_claims_and_tags():
    assert claim_owner(claim_value("abc", "2026-01-01T00:00:00Z")) == "abc"
    assert claim_owner(None) is None
    # moto appends a re-written key where SageMaker overwrites it: the last value is what counts
    assert tag_dict([{"Key": "k", "Value": "1"}, {"Key": "k", "Value": "2"}]) == {"k": "2"}
    assert ack_tag_key("w") == "airflow-autopilot:reported:w"
    rows = [
        {"AutoMLJobName": "b", "EndTime": "2026-01-01T00:02:00Z"},
        {"AutoMLJobName": "a", "EndTime": "2026-01-01T00:01:00Z"},
    ]
    assert [r["AutoMLJobName"] for r in finished_order(rows)] == ["a", "b"]


def test_an_acknowledgement_is_claimed_then_reported_and_anything_else_counts_as_reported():
    from datetime import datetime, timezone

    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert Ack.parse(claim_value("abc", at)) == Ack("claimed", "abc", at)
    assert Ack.parse(reported_value("abc", "2026-01-01T00:00:00Z")) == Ack("reported", "abc", at)
    assert Ack.parse(None) is None
    # The tag's presence is what keeps a job from being reported again: a hand-written value counts.
    assert Ack.parse("done").state == "reported"
    assert Ack.parse("claimed:abc@not-a-time") == Ack("claimed", "abc", None)


def test_the_decision_claims_skips_waits_for_a_live_claim_and_redelivers_a_stale_one():
    from datetime import datetime, timedelta, timezone

    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    claim = claim_value("other", at)
    assert decide(None, at, 60).action == "claim"
    assert decide(reported_value("other", at), at + timedelta(days=9), 60).action == "skip"
    waiting = decide(claim, at + timedelta(seconds=59), 60)
    assert (waiting.action, waiting.until) == ("wait", at + timedelta(seconds=60))
    stale = decide(claim, at + timedelta(seconds=60), 60)
    assert (stale.action, stale.redelivery) == ("claim", True)
    # A claim with no readable time cannot be waited for: taken over at once.
    assert decide("claimed:other@", at, 60).redelivery is True
    # The run's own claim (a transient error before its read-back): claimed again, no redelivery.
    own = decide(claim, at + timedelta(seconds=1), 60, token="other")
    assert (own.action, own.redelivery) == ("claim", False)


@needs_airflow_3
def test_serialize_round_trips_and_the_watcher_id_is_stable():
    trigger = event_triggers.AutopilotJobCompletedTrigger(
        name_prefix="churn-", tags={"team": "risk"}, statuses=["Failed", "Completed"], poll_interval=30
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_autopilot.event_triggers.AutopilotJobCompletedTrigger"
    again = event_triggers.AutopilotJobCompletedTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
    assert kwargs["watcher_id"] == trigger.filter.default_watcher_id()
    assert kwargs["statuses"] == ["Completed", "Failed"]
    assert "clock" not in kwargs


@needs_airflow_3
@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"watcher_id": "has space"}, "watcher_id"),
        ({"poll_interval": -1}, "poll_interval"),
        ({"settle_seconds": -1}, "settle_seconds"),
        ({"confirm_seconds": "soon"}, "confirm_seconds"),
        ({"lease_seconds": 10, "confirm_seconds": 10}, "lease_seconds: must exceed"),
        ({"finished_after": "yesterday"}, "finished_after"),
    ],
)
def test_bad_watcher_arguments_fail_naming_the_parameter(kwargs, parameter):
    with pytest.raises(ValueError, match=parameter):
        event_triggers.AutopilotJobCompletedTrigger(name_prefix="x", **kwargs)


@needs_airflow_3
def test_the_sqs_stand_in_serializes_as_the_amazon_trigger_and_fits_an_asset_watcher():
    from airflow.sdk import Asset, AssetWatcher

    trigger = event_triggers.SqsQueueWatcher("http://127.0.0.1:5000/123456789012/approvals", waiter_delay=5)
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow.providers.amazon.aws.triggers.sqs.SqsSensorTrigger"
    from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

    amazon = SqsSensorTrigger(**kwargs)  # the triggerer builds the Amazon class from these kwargs
    assert amazon.sqs_queue == kwargs["sqs_queue"]
    assert amazon.waiter_delay == 5
    Asset("approvals", watchers=[AssetWatcher(name="approvals", trigger=trigger)])
    assert amazon.wait_time_seconds == 20  # long polling by default
    with pytest.raises(ValueError, match="wait_time_seconds"):
        event_triggers.SqsQueueWatcher("https://q", wait_time_seconds=21)
    with pytest.raises(ValueError, match="max_messages"):
        event_triggers.SqsQueueWatcher("https://q", max_messages=11)
    with pytest.raises(ValueError, match="sqs_queue"):
        event_triggers.SqsQueueWatcher("approvals")


@pytest.mark.skipif(AIRFLOW_V_3_0_PLUS, reason="Airflow 2.11 only")
def test_on_airflow_2_the_watchers_refuse_with_a_pointer_to_the_alternative():
    with pytest.raises(RuntimeError, match="needs Airflow 3.0 or later.*docs/events.md"):
        event_triggers.AutopilotJobCompletedTrigger(name_prefix="x")


class FakeStateStore:
    """Airflow 3.3's asset state store accessors, as the triggerer injects them (``aget``/``aset``)."""

    def __init__(self, values=None, fail=False):
        self.values = dict(values or {})
        self.fail = fail

    async def aget(self, key, default=None):
        if self.fail:
            raise ValueError("Task has 2 concrete inlets and outlets")
        return self.values.get(key, default)

    async def aset(self, key, value):
        self.values[key] = value


@needs_airflow_3
def test_the_start_point_is_the_stored_mark_else_the_lookback_never_before_finished_after():
    import asyncio
    from datetime import datetime, timezone

    from airflow_autopilot.core.clock import ManualClock

    clock = ManualClock(datetime(2026, 3, 1, tzinfo=timezone.utc))

    def start(store=None, **kwargs):
        trigger = event_triggers.AutopilotJobCompletedTrigger(
            name_prefix="x", lookback_seconds=3600, **kwargs
        )
        trigger.asset_state_store = store
        return asyncio.run(trigger.start_point(clock)).isoformat()

    assert start() == "2026-02-28T23:00:00+00:00"
    mark = {event_triggers.WATERMARK_KEY: "2026-02-20T10:00:00+00:00"}
    assert start(FakeStateStore(mark)) == "2026-02-20T10:00:00+00:00"
    assert start(FakeStateStore(mark), finished_after="2026-02-25T00:00:00Z") == "2026-02-25T00:00:00+00:00"
    assert start(FakeStateStore(fail=True)) == "2026-02-28T23:00:00+00:00"  # a store it cannot use

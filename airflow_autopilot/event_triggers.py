"""Event-driven scheduling (Airflow 3 ``AssetWatcher``): a watcher for Autopilot jobs that finish anywhere,
and a parse-time stand-in for the Amazon provider's SQS trigger (docs/events.md)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS
from airflow_autopilot.aio.clients import ClientConnection
from airflow_autopilot.core.clock import Clock, default_clock, parse_timestamp
from airflow_autopilot.core.events import (
    DEFAULT_CONFIRM_SECONDS,
    DEFAULT_LEASE_SECONDS,
    DEFAULT_LOOKBACK_SECONDS,
    DEFAULT_SETTLE_SECONDS,
    REPORTED,
    Ack,
    EventFilterError,
    JobEventFilter,
    ack_tag_key,
    check_watcher_id,
    claim_value,
    decide,
    finished_order,
    job_event,
    reported_value,
    tag_dict,
)
from airflow_autopilot.core.job import AutopilotJob
from airflow_autopilot.core.waits.pace import poll_interval_errors

if AIRFLOW_V_3_0_PLUS:
    from airflow.triggers.base import BaseEventTrigger, TriggerEvent
else:  # Airflow 2.11: no event-driven scheduling; the classes refuse to be built (see _require_airflow_3)
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]
    from airflow.triggers.base import TriggerEvent

__all__ = ["AutopilotJobCompletedTrigger", "SqsQueueWatcher", "WATERMARK_KEY"]

#: The asset state store key of a watcher's high-water mark (Airflow 3.3 and later).
WATERMARK_KEY = "autopilot_watermark"
#: The Amazon provider's SQS trigger, which a :class:`SqsQueueWatcher` serializes as.
SQS_TRIGGER_CLASSPATH = "airflow.providers.amazon.aws.triggers.sqs.SqsSensorTrigger"


def _require_airflow_3(what: str) -> None:
    if not AIRFLOW_V_3_0_PLUS:
        raise RuntimeError(
            f"{what} needs Airflow 3.0 or later (AssetWatcher, event-driven scheduling). On Airflow "
            "2.11, schedule a DAG every few minutes whose sensor applies the same filter and "
            "acknowledgement tag: see docs/events.md, 'On Airflow 2.11'."
        )


class AutopilotJobCompletedTrigger(ClientConnection, BaseEventTrigger):
    """
    An ``AssetWatcher`` trigger that fires one event per finished Autopilot job matching its filter,
    wherever the job was started (Studio, a notebook, the SDK, another Airflow).

    It shares the triggerer's coalesced poller: every cycle's ListAutoMLJobs window serves the
    deferred waits and every watcher of the same connection at once. A job that matches by name and
    status is then read once (ListTags, DescribeAutoMLJob) and reported in two phases on an
    acknowledgement tag on the job: ``claimed`` (fenced) before the event is yielded, ``reported``
    once the event is known stored. A claim whose run stopped before that is reported again when its
    lease ends, so each job is reported once per ``watcher_id`` across restarts, kills, failover and
    downtime, with one stated window of at least once (docs/events.md, Exactly once).

    Each event's payload (the asset event's ``extra["payload"]``):
    ``{"watcher_id", "job_name", "job_arn", "status", "secondary_status", "api_version",
    "problem_type", "end_time", "failure_reason", "best_candidate", "objective_metric",
    "objective_value", "redelivery"}``; ``redelivery`` is true when an earlier report of the job may
    have been stored too (the DAG must be idempotent on ``job_name``).

    :param name_prefix: report only jobs whose name starts with this.
    :param name_pattern: report only jobs whose name matches this regular expression (full match).
    :param tags: report only jobs carrying all these tags.
    :param problem_types: report only jobs of these problem types.
    :param api_version: ``"v1"`` or ``"v2"``: only jobs created with that API.
    :param statuses: the terminal statuses that count (default ``["Completed"]``; also ``Failed``,
        ``Stopped``).
    :param match_all: allow a filter with no criterion (every finished job in the account).
    :param watcher_id: names the acknowledgement tag (``airflow-autopilot:reported:<watcher_id>``);
        default: derived from the filter. Two watchers with one id share their reports.
    :param aws_conn_id: the Airflow AWS connection id (credentials stay in the connection).
    :param region_name: AWS region override.
    :param verify: SSL verification override.
    :param botocore_config: botocore ``Config`` arguments as a JSON-safe dict.
    :param poll_interval: seconds between list cycles (the shared poller uses the smallest).
    :param finished_after: ISO 8601 time: never report jobs that finished before it.
    :param lookback_seconds: without a high-water mark (a first start; Airflow before 3.3), look
        this far back for finished jobs not reported yet.
    :param settle_seconds: pause between writing a claim and reading it back (the failover fence).
    :param confirm_seconds: pause between yielding an event and marking the job reported (the
        triggerer stores a yielded event within a second or two).
    :param lease_seconds: how long another run's claim not yet marked reported is respected; after
        it, the job is reported again. Must exceed ``settle_seconds + confirm_seconds``.
    :param clock: the clock to read and sleep on (default:
        :func:`~airflow_autopilot.core.clock.default_clock`); not serialized.
    :raises EventFilterError: (a ``ValueError``) for a bad filter, naming the parameter.
    """

    def __init__(
        self,
        *,
        name_prefix: str | None = None,
        name_pattern: str | None = None,
        tags: Mapping[str, str] | None = None,
        problem_types: Collection[str] | str | None = None,
        api_version: str | None = None,
        statuses: Collection[str] | str | None = None,
        match_all: bool = False,
        watcher_id: str | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        poll_interval: float = 60.0,
        finished_after: str | None = None,
        lookback_seconds: float = DEFAULT_LOOKBACK_SECONDS,
        settle_seconds: float = DEFAULT_SETTLE_SECONDS,
        confirm_seconds: float = DEFAULT_CONFIRM_SECONDS,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        _require_airflow_3(type(self).__name__)
        super().__init__()
        self.filter = JobEventFilter.build(
            name_prefix=name_prefix,
            name_pattern=name_pattern,
            tags=tags,
            problem_types=problem_types,
            api_version=api_version,
            statuses=statuses,
            match_all=match_all,
        )
        self.watcher_id = check_watcher_id(watcher_id) if watcher_id else self.filter.default_watcher_id()
        errors = poll_interval_errors(poll_interval)
        if errors:
            raise EventFilterError("; ".join(errors))
        for field_name, seconds in (
            ("lookback_seconds", lookback_seconds),
            ("settle_seconds", settle_seconds),
            ("confirm_seconds", confirm_seconds),
            ("lease_seconds", lease_seconds),
        ):
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds >= 0:
                raise EventFilterError(
                    f"{field_name}: must be a number of seconds, 0 or more; got {seconds!r}"
                )
        if not lease_seconds > settle_seconds + confirm_seconds:
            raise EventFilterError(
                f"lease_seconds: must exceed settle_seconds + confirm_seconds ({settle_seconds:g} + "
                f"{confirm_seconds:g}), or a live claimant's claim would be taken over; got {lease_seconds:g}"
            )
        try:
            parsed = parse_timestamp(finished_after)
        except ValueError as err:
            raise EventFilterError(f"finished_after: {err}") from None
        self.finished_after = parsed.isoformat() if parsed else None
        self.hold_connection(aws_conn_id, region_name, verify, botocore_config)
        self.poll_interval = float(poll_interval)
        self.lookback_seconds = float(lookback_seconds)
        self.settle_seconds = float(settle_seconds)
        self.confirm_seconds = float(confirm_seconds)
        self.lease_seconds = float(lease_seconds)
        #: Not serialized: a triggerer always runs on the default clock.
        self.clock = clock

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.filter.to_dict(),
                "watcher_id": self.watcher_id,
                **self.connection(),
                "poll_interval": self.poll_interval,
                "finished_after": self.finished_after,
                "lookback_seconds": self.lookback_seconds,
                "settle_seconds": self.settle_seconds,
                "confirm_seconds": self.confirm_seconds,
                "lease_seconds": self.lease_seconds,
            },
        )

    # --- the high-water mark ------------------------------------------------------------------------
    async def start_point(self, clock: Clock) -> datetime:
        """Where the watch starts (server time): the stored high-water mark (Airflow 3.3's asset state
        store), else ``lookback_seconds`` ago; never before ``finished_after``."""
        start = clock.now() - timedelta(seconds=self.lookback_seconds)
        mark = await self._stored_mark()
        if mark is not None:
            start = mark
        floor = parse_timestamp(self.finished_after)
        return max(start, floor) if floor is not None else start

    async def _stored_mark(self) -> datetime | None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return None
        try:
            return parse_timestamp(await store.aget(WATERMARK_KEY))
        except Exception as err:  # several assets on one watcher, an API hiccup: the lookback covers it
            self.log.warning("No high-water mark from the asset state store (%s): looking back instead", err)
            return None

    async def _store_mark(self, mark: datetime) -> None:
        store = getattr(self, "asset_state_store", None)
        if store is None:
            return
        try:
            await store.aset(WATERMARK_KEY, mark.isoformat())
        except Exception as err:
            self.log.warning("Could not store the high-water mark %s: %s", mark.isoformat(), err)

    # --- the watch ------------------------------------------------------------------------------------
    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield one event per finished matching job, for as long as the triggerer runs the watcher."""
        from airflow_autopilot.aio.clients import client_key, shared_client
        from airflow_autopilot.aio.poller import shared_poller

        clock = self.clock or default_clock()
        token = uuid.uuid4().hex[:16]  # this run's claims (not a kwarg: the trigger's hash stays put)
        async with shared_client(**self.connection()) as client:
            poller = shared_poller(client_key(**self.connection()))
            since = await self.start_point(clock)
            self.log.info(
                "Watching for finished Autopilot jobs (%s) since %s as %s",
                self.filter.to_dict(),
                since.isoformat(),
                ack_tag_key(self.watcher_id),
            )
            decided: set[str] = set()
            #: Jobs to look at again and when: another run's claim (until its lease ends), or a
            #: transient error (next cycle). Not decided, so the high-water mark stays before them.
            later: dict[str, tuple[Mapping[str, Any], datetime]] = {}
            #: ARNs of jobs whose events this run yielded and a transient error kept unmarked.
            unmarked: list[str] = []
            async with poller.subscribe(since, self.poll_interval, client=client) as subscription:
                while True:
                    rows = await subscription.next()
                    now = clock.now()
                    fresh = {
                        str(r.get("AutoMLJobName")): r
                        for r in rows
                        if self.filter.matches_summary(r) and r.get("AutoMLJobName") not in decided
                    }
                    due = {name: row for name, (row, when) in later.items() if when <= now}
                    for name in {**due, **fresh}:
                        later.pop(name, None)
                    candidates = finished_order({**due, **fresh}.values())
                    yielded: list[str] = []
                    for row, outcome in zip(
                        candidates, await self.claim(client, candidates, token, clock), strict=True
                    ):
                        name = str(row.get("AutoMLJobName"))
                        if outcome.again_at is not None:
                            later[name] = (row, outcome.again_at)
                            continue
                        decided.add(name)
                        if outcome.payload is not None:
                            yield TriggerEvent(outcome.payload)
                            yielded.append(str(row.get("AutoMLJobArn")))
                    if yielded:
                        # Phase two. The triggerer hands events on at its next loop turn (about a
                        # second) and its supervisor stores them at its next: only then mark them.
                        await clock.sleep_async(self.confirm_seconds)
                    unmarked = await self._mark_reported(client, unmarked + yielded, token, clock)
                    if candidates and not later and not unmarked and subscription.needs_from is not None:
                        await self._store_mark(subscription.needs_from)

    async def claim(
        self, client: Any, rows: list[Mapping[str, Any]], token: str, clock: Clock
    ) -> list[_Outcome]:
        """
        Phase one for the finished jobs of a cycle, together: read each job's tags and decide
        (:func:`~airflow_autopilot.core.events.decide`), claim those to report, pause
        ``settle_seconds`` once, and read the claims back. For each row, in order: the event's
        payload when this run holds the claim; when to look again when another run holds one (or a
        transient error hit); else nothing (the filter does not match, or it was reported already).

        :param client: the aiobotocore SageMaker client.
        :param rows: the jobs' ListAutoMLJobs summaries.
        :param token: this run's claim token.
        :param clock: the clock to read, and to sleep on between the claims and their read-back.
        """
        from airflow_autopilot.aio.clients import describe_job

        key = ack_tag_key(self.watcher_id)
        outcomes = [_Outcome() for _ in rows]
        claimed: dict[int, tuple[AutopilotJob, str, bool]] = {}
        for index, row in enumerate(rows):
            name, arn = str(row.get("AutoMLJobName")), str(row.get("AutoMLJobArn"))
            try:
                tags = await _tags(client, arn)
                decision = decide(tags.get(key), clock.now(), self.lease_seconds, token=token)
                if decision.action == "skip":
                    continue  # reported already (by this watcher id, in any run)
                if decision.action == "wait":
                    outcomes[index] = _Outcome(again_at=decision.until)  # another run reports it
                    continue
                if any(tags.get(k) != v for k, v in self.filter.tags.items()):
                    continue
                job: AutopilotJob = await describe_job(client, name)
                if not self.filter.matches_job(job, tags):
                    continue
                value = claim_value(token, clock.now())
                await client.add_tags(ResourceArn=arn, Tags=[{"Key": key, "Value": value}])
            except Exception as err:
                outcomes[index] = self._again(err, name, clock)
                continue
            claimed[index] = (job, arn, decision.redelivery)
        if not claimed:
            return outcomes
        # The fence: the last writer of a claim wins; one that read the tags after another's claim
        # waits for that claimant above (docs/events.md, Exactly once).
        await clock.sleep_async(self.settle_seconds)
        for index, (job, arn, redelivery) in claimed.items():
            try:
                ack = Ack.parse((await _tags(client, arn)).get(key))
            except Exception as err:
                outcomes[index] = self._again(err, job.name, clock)
                continue
            if ack is not None and ack.state == REPORTED:
                continue
            if ack is None or ack.token != token:
                self.log.info("Job %s was claimed by another watcher run: not reported here", job.name)
                at = ack.at if ack is not None and ack.at is not None else clock.now()
                outcomes[index] = _Outcome(again_at=at + timedelta(seconds=self.lease_seconds))
                continue
            if redelivery:
                self.log.warning(
                    "Finished job %s was claimed by a watcher run that stopped before its report was "
                    "known stored: reporting it again (a redelivery)",
                    job.name,
                )
            self.log.info("Finished job %s (%s): reporting it", job.name, job.status)
            outcomes[index] = _Outcome(payload=job_event(job, self.watcher_id, redelivery=redelivery))
        return outcomes

    def _again(self, err: Exception, name: str, clock: Clock) -> _Outcome:
        """A transient AWS error: the job again next cycle; any other error stops the watcher."""
        from airflow_autopilot.core.errors import is_transient

        if not is_transient(err):
            raise err
        self.log.warning("Checking finished job %s failed (%s): again next cycle", name, err)
        return _Outcome(again_at=clock.now())

    async def _mark_reported(self, client: Any, arns: list[str], token: str, clock: Clock) -> list[str]:
        """Phase two: mark the jobs whose events were yielded reported; return those a transient
        error kept unmarked, to try again next cycle."""
        from airflow_autopilot.core.errors import is_transient

        left = []
        for arn in arns:
            value = reported_value(token, clock.now())
            try:
                await client.add_tags(
                    ResourceArn=arn, Tags=[{"Key": ack_tag_key(self.watcher_id), "Value": value}]
                )
            except Exception as err:
                if not is_transient(err):
                    raise
                self.log.warning("Marking %s reported failed (%s): again next cycle", arn, err)
                left.append(arn)
        return left


class _Outcome(NamedTuple):
    """What :meth:`AutopilotJobCompletedTrigger.claim` decided about one job."""

    #: The event to yield, if this run holds the claim.
    payload: dict[str, Any] | None = None
    #: When to look at the job again, if it is not decided yet.
    again_at: datetime | None = None


async def _tags(client: Any, arn: str) -> dict[str, str]:
    """Every tag of a resource (ListTags, all pages)."""
    tags: list[Mapping[str, str]] = []
    kwargs: dict[str, Any] = {"ResourceArn": arn, "MaxResults": 100}
    while True:
        page = await client.list_tags(**kwargs)
        tags.extend(page.get("Tags", []))
        token = page.get("NextToken")
        if not token:
            return tag_dict(tags)
        kwargs["NextToken"] = token


class SqsQueueWatcher(BaseEventTrigger):
    """
    A parse-time stand-in for the Amazon provider's ``SqsSensorTrigger`` in an ``AssetWatcher``: it
    serializes as that trigger (the triggerer builds and runs the Amazon class), so a DAG file can
    declare the watcher without importing the Amazon provider (and boto3) when it is parsed.

    The defaults long-poll: each ReceiveMessage waits up to ``wait_time_seconds`` for a message and
    returns as soon as one arrives, so an approval is read within a second or two while the Amazon
    trigger (which opens a new client for every receive) opens one every 20 s, not every few seconds,
    in a triggerer it shares with the deferred waits.

    :param sqs_queue: the queue URL.
    :param aws_conn_id: the Airflow AWS connection id.
    :param region_name: AWS region override.
    :param wait_time_seconds: how long each receive waits for a message (SQS long polling, 0 to 20).
    :param waiter_delay: seconds between receives that found nothing.
    :param max_messages: messages per receive (1 to 10).
    :param kwargs: any other ``SqsSensorTrigger`` argument (``message_filtering``...).
    """

    def __init__(
        self,
        sqs_queue: str,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        wait_time_seconds: int = 20,
        waiter_delay: int = 0,
        max_messages: int = 10,
        **kwargs: Any,
    ) -> None:
        _require_airflow_3(type(self).__name__)
        super().__init__()
        if not isinstance(sqs_queue, str) or not sqs_queue.startswith(("https://", "http://")):
            raise ValueError(f"sqs_queue: must be the queue's URL (https://...), got {sqs_queue!r}")
        if not isinstance(wait_time_seconds, int) or not 0 <= wait_time_seconds <= 20:
            raise ValueError(
                f"wait_time_seconds: must be 0 to 20 (SQS long polling), got {wait_time_seconds!r}"
            )
        if not isinstance(max_messages, int) or not 1 <= max_messages <= 10:
            raise ValueError(f"max_messages: must be 1 to 10 (SQS ReceiveMessage), got {max_messages!r}")
        self.kwargs = {
            "sqs_queue": sqs_queue,
            "aws_conn_id": aws_conn_id,
            "region_name": region_name,
            "wait_time_seconds": wait_time_seconds,
            "waiter_delay": int(waiter_delay),
            "max_messages": max_messages,
            **kwargs,
        }

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return SQS_TRIGGER_CLASSPATH, dict(self.kwargs)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Run the Amazon trigger it stands for (the triggerer runs that class itself)."""
        from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

        async for event in SqsSensorTrigger(**self.kwargs).run():
            yield event

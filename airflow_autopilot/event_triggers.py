"""Event-driven scheduling (Airflow 3 ``AssetWatcher``): a watcher for Autopilot jobs that finish anywhere,
and a parse-time stand-in for the Amazon provider's SQS trigger (docs/events.md)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any

from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS
from airflow_autopilot.aio.clients import ClientConnection
from airflow_autopilot.core.clock import Clock, default_clock, parse_timestamp
from airflow_autopilot.core.events import (
    DEFAULT_LOOKBACK_SECONDS,
    DEFAULT_SETTLE_SECONDS,
    EventFilterError,
    JobEventFilter,
    ack_tag_key,
    check_watcher_id,
    claim_owner,
    claim_value,
    finished_order,
    job_event,
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
    status is then read once (ListTags, DescribeAutoMLJob) and claimed with an acknowledgement tag
    written on the job before the event is yielded, so it is reported once per ``watcher_id`` across
    restarts, failover and downtime (docs/events.md, Exactly once).

    Each event's payload (the asset event's ``extra["payload"]``):
    ``{"watcher_id", "job_name", "job_arn", "status", "secondary_status", "api_version",
    "problem_type", "end_time", "failure_reason", "best_candidate", "objective_metric",
    "objective_value"}``.

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
        ):
            if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not seconds >= 0:
                raise EventFilterError(
                    f"{field_name}: must be a number of seconds, 0 or more; got {seconds!r}"
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
        from airflow_autopilot.core.errors import is_transient

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
            retry: dict[str, Mapping[str, Any]] = {}
            async with poller.subscribe(since, self.poll_interval, client=client) as subscription:
                while True:
                    rows = await subscription.next()
                    fresh = {
                        str(r.get("AutoMLJobName")): r
                        for r in rows
                        if self.filter.matches_summary(r) and r.get("AutoMLJobName") not in decided
                    }
                    candidates = finished_order({**retry, **fresh}.values())
                    retry = {}
                    for row in candidates:
                        name = str(row.get("AutoMLJobName"))
                        try:
                            payload = await self.report(client, row, token, clock)
                        except Exception as err:
                            if not is_transient(err):
                                raise
                            self.log.warning(
                                "Checking finished job %s failed (%s): again next cycle", name, err
                            )
                            retry[name] = row
                            continue
                        decided.add(name)
                        if payload is not None:
                            yield TriggerEvent(payload)
                    if not retry and candidates and subscription.needs_from is not None:
                        await self._store_mark(subscription.needs_from)

    async def report(
        self, client: Any, row: Mapping[str, Any], token: str, clock: Clock
    ) -> dict[str, Any] | None:
        """
        Decide one finished job: the event's payload when this run claimed it, else ``None`` (the
        filter does not match, or it was reported already, or another watcher's claim won).

        :param client: the aiobotocore SageMaker client.
        :param row: the job's ListAutoMLJobs summary.
        :param token: this run's claim token.
        :param clock: the clock to sleep on between claim and read-back.
        """
        from airflow_autopilot.aio.clients import describe_job

        name, arn = str(row.get("AutoMLJobName")), str(row.get("AutoMLJobArn"))
        key = ack_tag_key(self.watcher_id)
        tags = await _tags(client, arn)
        if key in tags:
            return None  # reported already (by this watcher id, in any run)
        if any(tags.get(k) != v for k, v in self.filter.tags.items()):
            return None
        job: AutopilotJob = await describe_job(client, name)
        if not self.filter.matches_job(job, tags):
            return None
        # The claim: check, write, settle, read back. The last writer wins; one that checked after
        # another's claim skips it above (docs/events.md, Exactly once).
        await client.add_tags(ResourceArn=arn, Tags=[{"Key": key, "Value": claim_value(token, clock.now())}])
        await clock.sleep_async(self.settle_seconds)
        owner = claim_owner((await _tags(client, arn)).get(key))
        if owner != token:
            self.log.info("Job %s was claimed by another watcher run (%s): not reported here", name, owner)
            return None
        self.log.info("Finished job %s (%s): reporting it", name, job.status)
        return job_event(job, self.watcher_id)


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

"""Triggers: the wait on an Autopilot job and the wait until an endpoint is InService, in the triggerer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from datetime import datetime
from typing import Any, TypeVar

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_autopilot.aio.clients import ClientConnection, client_key, describe_job, shared_client
from airflow_autopilot.aio.poller import DEFAULT_FALLBACK_DESCRIBES_PER_SECOND, Watch, shared_poller
from airflow_autopilot.core.clock import Clock
from airflow_autopilot.core.defaults import DEFAULT_CANDIDATE_COUNT_INTERVAL, DEFAULT_NOT_FOUND_GRACE_SECONDS
from airflow_autopilot.core.errors import is_missing
from airflow_autopilot.core.job import AutopilotJob, WaitCriteria
from airflow_autopilot.core.redaction import describe_error, scrub
from airflow_autopilot.core.waits.endpoint import EndpointWait
from airflow_autopilot.core.waits.job import JobWait, from_hand_off, make_event
from airflow_autopilot.core.waits.loop import drive_async
from airflow_autopilot.core.waits.pace import DEFAULT_MAX_BACKOFF_SECONDS, attempt_seconds
from airflow_autopilot.core.waits.resource import resource_event, resource_wait

T = TypeVar("T")


async def within(call: Awaitable[T], budget: float | None) -> T:
    """
    Await one AWS call for at most :func:`~airflow_autopilot.core.waits.pace.attempt_seconds` of the
    wait's budget: a request lost on a dead connection gives up in time for a retry, instead of
    waiting out aiobotocore's 60 s read timeout (or the whole deadline).

    :param call: the call's awaitable.
    :param budget: the wait's :meth:`~airflow_autopilot.core.waits.machine.WaitMachine.call_budget`.
    """
    limit = attempt_seconds(budget)
    if limit is None:
        return await call
    return await asyncio.wait_for(call, timeout=limit)


def describe_poll(wait: Any, call: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[dict[str, Any]]]:
    """
    One describe per poll for a wait machine: ``call()`` within the wait's call budget, a missing
    resource turned into the wait's own error, the response without its metadata.

    :param wait: the wait's state machine (``call_budget()`` and ``missing()``).
    :param call: starts the describe (a coroutine of the aiobotocore client).
    """

    async def poll() -> dict[str, Any]:
        try:
            response = dict(await within(call(), wait.call_budget()))
        except Exception as err:
            if is_missing(err):
                raise wait.missing() from err
            raise
        response.pop("ResponseMetadata", None)
        return response

    return poll


class AutopilotBaseTrigger(ClientConnection, BaseTrigger):
    """
    What both triggers hold: connection names (never credentials) and the wait's pace and deadline.
    ``serialize()`` returns every constructor argument, so it round-trips.

    :param aws_conn_id: the Airflow AWS connection id (credentials stay in the connection).
    :param region_name: AWS region override.
    :param verify: SSL verification override.
    :param botocore_config: botocore ``Config`` arguments as a JSON-safe dict.
    :param poll_interval: seconds between polls (plus up to 10 % jitter).
    :param timeout_at: ISO 8601 UTC deadline; ``None`` waits without limit.
    :param max_backoff: cap in seconds on the sleep after repeated transient errors.
    :param clock: the clock the wait reads and sleeps on (default:
        :func:`~airflow_autopilot.core.clock.default_clock`); not serialized.
    """

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        poll_interval: float = 60.0,
        timeout_at: str | None = None,
        max_backoff: float = DEFAULT_MAX_BACKOFF_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        super().__init__()
        self.hold_connection(aws_conn_id, region_name, verify, botocore_config)
        self.poll_interval = float(poll_interval)
        self.timeout_at = timeout_at
        self.max_backoff = float(max_backoff)
        #: Not serialized: a triggerer always runs on the default clock.
        self.clock = clock

    def own_kwargs(self) -> dict[str, Any]:
        """The subclass's own constructor arguments (positional one first)."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.own_kwargs(),
                **self.connection(),
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "max_backoff": self.max_backoff,
            },
        )

    async def wait(self) -> dict[str, Any]:
        """Wait and return the event payload."""
        raise NotImplementedError

    def error_event(self, err: Exception) -> dict[str, Any]:
        """The payload when the wait itself broke (connection lookup, bad arguments, a bug)."""
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Wait until a verdict, the deadline or a non-transient error; yield one event and return."""
        try:
            payload = await self.wait()
        except Exception as err:
            scrub(err)  # before its traceback is logged
            self.log.exception("%s failed", type(self).__name__)
            payload = self.error_event(err)
        yield TriggerEvent(payload)


def handed_off_recently(seen: AutopilotJob, seconds: float, *, now: datetime) -> bool:
    """Whether the task's describe handed to a trigger is less than ``seconds`` old (by this
    machine's clock against the server's Date; without a Date, taken as recent).

    :param seen: the hand-off.
    :param seconds: the age limit.
    :param now: the current time (the wait's clock).
    """
    if seen.observed_at is None:
        return True
    return (now - seen.observed_at).total_seconds() < seconds


class JobPolls:
    """
    The polls of one job wait in a trigger, for :func:`~airflow_autopilot.core.waits.loop.drive_async`:
    the task's hand-off first (no call), then either a describe of its own per poll or the next
    describe of the shared :class:`~airflow_autopilot.aio.poller.CoalescedPoller` (``watch``), with
    candidate counts between polls and, while the poller paces, whenever one is due.

    :param wait: the job's wait machine.
    :param client: the aiobotocore SageMaker client.
    :param pending: the task's hand-off, returned by the first poll.
    """

    def __init__(self, wait: JobWait, client: Any, pending: AutopilotJob | None) -> None:
        self.wait = wait
        self.client = client
        self.pending = pending
        #: The shared poller's registration; ``None``: one describe of our own per poll.
        self.watch: Watch | None = None
        #: The newest ListAutoMLJobs summary since the last describe (the poller's progress hints).
        self.listed: AutopilotJob | None = None

    def on_listed(self, job: AutopilotJob) -> None:
        """The poller's progress hint; runs in this trigger's task (Watch.next), so the line lands
        in this task's log."""
        self.listed = job
        self.wait.reporter.update(job)
        current = self.latest()
        if current is not None:
            self.wait.note(current)  # a timeout reports the newest state seen

    def latest(self) -> AutopilotJob | None:
        """The last describe, brought up to date with a newer list summary (which lacks MaxCandidates):
        a list-sourced view, so a summary of it shows only what the list showed."""
        last, listed = self.wait.last, self.listed
        if listed is None or last is None:
            return last or listed
        return AutopilotJob(raw={**last.raw, **listed.raw}, api_version=last.api_version, source="list")

    async def count_candidates(self, job: AutopilotJob) -> None:
        """Count completed candidates with one call when the reporter says a count is due."""
        request = self.wait.reporter.candidates_request(job)
        if request is None:
            return
        response: Mapping[str, Any] | BaseException
        try:
            response = await within(
                self.client.list_candidates_for_auto_ml_job(**request), self.wait.call_budget()
            )
        except Exception as err:
            response = err
        self.wait.reporter.report_listing(job, response)

    async def poll(self) -> AutopilotJob:
        """The job's next state: the hand-off, a describe of our own, or the poller's next one."""
        if self.pending is not None:  # the task's own describe: no call needed
            handed, self.pending = self.pending, None
            return handed
        if self.watch is None:
            return await within(
                describe_job(self.client, self.wait.job_name, self.wait.api_version), self.wait.call_budget()
            )
        # The shared poller paces the describes: wait for the next one, waking up for the deadline
        # and, while candidates train, for a count every candidate_interval.
        while True:
            remaining = self.wait.remaining()
            count_in = self.wait.reporter.seconds_until_count(self.latest())
            limits = [t for t in (remaining, count_in) if t is not None]
            try:
                result = await asyncio.wait_for(
                    self.watch.next_or_progress(), timeout=min(limits) if limits else None
                )
            except asyncio.TimeoutError:
                if remaining is not None and (self.wait.remaining() or 0) <= 0:
                    raise
            else:
                if result is not None:
                    return result
            current = self.latest()
            if current is not None:
                await self.count_candidates(current)

    async def between(self, job: AutopilotJob) -> None:
        """After a describe that keeps the wait going: its summary supersedes the list's; count."""
        self.listed = None
        await self.count_candidates(job)

    async def sleep(self, seconds: float) -> None:
        """The pause between polls; with a watch, the poller's pace is the pause."""
        if self.watch is None:
            await self.wait.clock.sleep_async(seconds)


class AutopilotJobTrigger(AutopilotBaseTrigger):
    """
    Wait in the triggerer until an Autopilot job meets its success or failure criteria.

    Yields exactly one :class:`TriggerEvent` and returns. Its payload is
    ``{"status": "success"|"failure"|"timeout"|"error", "job_name", "message", "summary"}``
    (see :func:`airflow_autopilot.core.waits.job.make_event`); the task side reads it with
    :func:`airflow_autopilot.operators.base.resolve_event`.

    Transient errors (throttling, 5xx, connection errors) are retried with jittered exponential
    backoff until ``timeout_at``; ResourceNotFound is retried for ``not_found_grace_seconds`` after
    ``created_at`` (or after the trigger started) unless the job was seen (``last_seen`` or a
    describe): then it ends the wait as "not found". Anything else ends the wait with an ``error`` event.

    :param job_name: the AutoMLJobName.
    :param aws_conn_id: the Airflow AWS connection id (credentials stay in the connection).
    :param region_name: AWS region override.
    :param verify: SSL verification override.
    :param botocore_config: botocore ``Config`` arguments as a JSON-safe dict.
    :param poll_interval: seconds between DescribeAutoMLJob calls (plus up to 10 % jitter).
    :param timeout_at: ISO 8601 UTC deadline; ``None`` waits without limit.
    :param criteria: :meth:`WaitCriteria.to_dict` output; defaults to ``WaitCriteria()``.
    :param not_found_grace_seconds: seconds after creation during which ResourceNotFound is retried;
        the shared poller also checks at least this often that the job still exists (while its
        full listing takes one page; docs/sensor.md, A job that disappears).
    :param created_at: ISO 8601 time the job was created, when known.
    :param candidate_interval: minimum seconds between two candidate counts while training.
    :param max_backoff: cap in seconds on the sleep after repeated transient errors.
    :param coalesce: wait through the process's shared
        :class:`~airflow_autopilot.aio.poller.CoalescedPoller` (one ListAutoMLJobs-driven poller per
        connection, few calls for many jobs) instead of one DescribeAutoMLJob per poll interval.
    :param logged_state: ``[status, secondary status]`` the task logged before deferring (not
        logged again).
    :param last_seen: what the task's describe just before deferring showed
        (:func:`~airflow_autopilot.core.waits.job.hand_off`): a coalesced trigger starts from it
        instead of describing the job again.
    :param fallback_describes_per_second: while ListAutoMLJobs is denied, the shared poller makes
        at most this many DescribeAutoMLJob calls per second (the smallest among its triggers).
    :param clock: the clock the wait reads and sleeps on (default:
        :func:`~airflow_autopilot.core.clock.default_clock`, which the shared poller, one for
        many triggers, always uses); not serialized.
    """

    def __init__(
        self,
        job_name: str,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        poll_interval: float = 60.0,
        timeout_at: str | None = None,
        criteria: Mapping[str, Any] | None = None,
        not_found_grace_seconds: float = DEFAULT_NOT_FOUND_GRACE_SECONDS,
        created_at: str | None = None,
        candidate_interval: float = DEFAULT_CANDIDATE_COUNT_INTERVAL,
        max_backoff: float = DEFAULT_MAX_BACKOFF_SECONDS,
        coalesce: bool = True,
        logged_state: list[str | None] | None = None,
        last_seen: dict[str, Any] | None = None,
        fallback_describes_per_second: float = DEFAULT_FALLBACK_DESCRIBES_PER_SECOND,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
            poll_interval=poll_interval,
            timeout_at=timeout_at,
            max_backoff=max_backoff,
            clock=clock,
        )
        self.job_name = job_name
        self.criteria = {k: list(v) for k, v in (criteria or WaitCriteria().to_dict()).items()}
        self.not_found_grace_seconds = float(not_found_grace_seconds)
        self.created_at = created_at
        self.candidate_interval = float(candidate_interval)
        self.coalesce = bool(coalesce)
        self.logged_state = list(logged_state) if logged_state else None
        self.last_seen = dict(last_seen) if last_seen else None
        self.fallback_describes_per_second = float(fallback_describes_per_second)

    def own_kwargs(self) -> dict[str, Any]:
        return {
            "job_name": self.job_name,
            "criteria": self.criteria,
            "not_found_grace_seconds": self.not_found_grace_seconds,
            "created_at": self.created_at,
            "candidate_interval": self.candidate_interval,
            "coalesce": self.coalesce,
            "logged_state": self.logged_state,
            "last_seen": self.last_seen,
            "fallback_describes_per_second": self.fallback_describes_per_second,
        }

    async def wait(self) -> dict[str, Any]:
        wait = JobWait(
            self.job_name,
            WaitCriteria.from_dict(self.criteria),
            poll_interval=self.poll_interval,
            deadline=self.timeout_at,
            max_backoff=self.max_backoff,
            log=self.log,
            not_found_grace=self.not_found_grace_seconds,
            created_at=self.created_at,
            candidate_interval=self.candidate_interval,
            logged_state=(str(self.logged_state[0]), self.logged_state[1]) if self.logged_state else None,
            clock=self.clock,
        )
        remaining = wait.remaining()
        # Past the deadline already (a trigger resumed late): one describe of its own tells the
        # final state; otherwise the task's last describe is where the wait starts.
        coalesce = self.coalesce and (remaining is None or remaining > 0)
        handed = from_hand_off(self.last_seen) if self.last_seen else None
        if handed is not None:
            # The task described the job before deferring: ResourceNotFound now means it is gone
            # (a deletion, a server restart), not that it is not visible yet, in every kind of wait.
            wait.described = True
            wait.note(handed)
        seen = handed if coalesce else None
        async with shared_client(**self.connection()) as client, AsyncExitStack() as stack:
            polls = JobPolls(wait, client, seen)
            if coalesce:
                poller = shared_poller(client_key(**self.connection()))
                polls.watch = await stack.enter_async_context(
                    poller.watch(
                        self.job_name,
                        wait.criteria,
                        wait.poll_interval,
                        polls.on_listed,
                        client=client,
                        seen=seen,
                        describe_rate=self.fallback_describes_per_second,
                        not_found_grace=self.not_found_grace_seconds,
                    )
                )
            if (
                seen is not None
                and wait.reporter.candidate_count_due(seen)
                and handed_off_recently(seen, self.candidate_interval, now=wait.clock.now())
            ):
                # The task counted candidates just before deferring (its job was training then). A
                # job not yet training, or a hand-off older than one candidate_interval (a triggerer
                # restart), leaves the next count due at once.
                wait.reporter.mark_counted()
            step = await drive_async(wait, polls.poll, between=polls.between, sleep=polls.sleep)
            return wait.event(step)

    def error_event(self, err: Exception) -> dict[str, Any]:
        return make_event(
            "error",
            self.job_name,
            f"Error waiting for Autopilot job {self.job_name!r}: {describe_error(err)}",
        )


class AutopilotEndpointTrigger(AutopilotBaseTrigger):
    """
    Wait in the triggerer until an endpoint is InService (on ``config_name`` when given), with the
    same state machine as :meth:`AutopilotHook.wait_for_endpoint`.

    Yields one event: ``{"status": "success"|"failure"|"timeout"|"error", "endpoint_name",
    "message", "endpoint", "rollout"}`` (``endpoint`` is the last DescribeEndpoint, ``rollout`` the
    rollout record of :meth:`EndpointWait.record <airflow_autopilot.core.waits.endpoint.EndpointWait.record>`,
    both JSON-safe). A rolled-back update, or a Failed, OutOfService, Deleting or
    UpdateRollbackFailed endpoint, is a ``failure`` whose message carries SageMaker's FailureReason.

    :param endpoint_name: the endpoint.
    :param config_name: the EndpointConfigName it must serve; ``None`` accepts any.
    :param previous_config: the config the endpoint served before the update, for the record.
    :param alarms: the CloudWatch alarms the deployment watches (named when it rolls back).
    :param phases: the phases the task saw before deferring (a RollingBack among them counts).
    :param aws_conn_id: the Airflow AWS connection id (credentials stay in the connection).
    :param region_name: AWS region override.
    :param verify: SSL verification override.
    :param botocore_config: botocore ``Config`` arguments as a JSON-safe dict.
    :param poll_interval: seconds between DescribeEndpoint calls.
    :param timeout_at: ISO 8601 UTC deadline; ``None`` waits without limit.
    :param max_backoff: cap in seconds on the sleep after repeated transient errors.
    :param clock: the clock the wait reads and sleeps on; not serialized.
    """

    def __init__(
        self,
        endpoint_name: str,
        *,
        config_name: str | None = None,
        previous_config: str | None = None,
        alarms: list[str] | None = None,
        phases: list[str] | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        poll_interval: float = 30.0,
        timeout_at: str | None = None,
        max_backoff: float = DEFAULT_MAX_BACKOFF_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
            poll_interval=poll_interval,
            timeout_at=timeout_at,
            max_backoff=max_backoff,
            clock=clock,
        )
        self.endpoint_name = endpoint_name
        self.config_name = config_name
        self.previous_config = previous_config
        self.alarms = list(alarms) if alarms else None
        self.phases = list(phases) if phases else None

    def own_kwargs(self) -> dict[str, Any]:
        return {
            "endpoint_name": self.endpoint_name,
            "config_name": self.config_name,
            "previous_config": self.previous_config,
            "alarms": self.alarms,
            "phases": self.phases,
        }

    async def wait(self) -> dict[str, Any]:
        wait = EndpointWait(
            self.endpoint_name,
            self.config_name,
            previous_config=self.previous_config,
            alarms=self.alarms or (),
            phases=self.phases or (),
            poll_interval=self.poll_interval,
            deadline=self.timeout_at,
            max_backoff=self.max_backoff,
            log=self.log,
            clock=self.clock,
        )
        async with shared_client(**self.connection()) as client:
            poll = describe_poll(wait, lambda: client.describe_endpoint(EndpointName=self.endpoint_name))
            return wait.event(await drive_async(wait, poll))

    def error_event(self, err: Exception) -> dict[str, Any]:
        return {
            "status": "error",
            "endpoint_name": self.endpoint_name,
            "message": f"Error waiting for endpoint {self.endpoint_name!r}: {describe_error(err)}",
            "endpoint": None,
            "rollout": None,
        }


class AutopilotResourceTrigger(AutopilotBaseTrigger):
    """
    Wait in the triggerer until a transform job ends (``kind="transform-job"``) or a model package
    version is Approved or Rejected (``kind="model-package"``), with the same state machines as
    :meth:`AutopilotModelHook.wait_for_resource <airflow_autopilot.hooks.AutopilotModelHook.wait_for_resource>`.

    Yields one event: ``{"status": "success"|"failure"|"timeout"|"error", "kind", "name",
    "message", "description"}`` (``description`` is the last describe, JSON-safe).

    :param kind: ``transform-job`` or ``model-package``.
    :param name: the TransformJobName or the ModelPackageArn.
    :param aws_conn_id: the Airflow AWS connection id (credentials stay in the connection).
    :param region_name: AWS region override.
    :param verify: SSL verification override.
    :param botocore_config: botocore ``Config`` arguments as a JSON-safe dict.
    :param poll_interval: seconds between describes.
    :param timeout_at: ISO 8601 UTC deadline; ``None`` waits without limit.
    :param max_backoff: cap in seconds on the sleep after repeated transient errors.
    :param clock: the clock the wait reads and sleeps on; not serialized.
    """

    def __init__(
        self,
        kind: str,
        name: str,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        poll_interval: float = 30.0,
        timeout_at: str | None = None,
        max_backoff: float = DEFAULT_MAX_BACKOFF_SECONDS,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            botocore_config=botocore_config,
            poll_interval=poll_interval,
            timeout_at=timeout_at,
            max_backoff=max_backoff,
            clock=clock,
        )
        self.kind = kind
        self.name = name

    def own_kwargs(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name}

    async def wait(self) -> dict[str, Any]:
        wait = resource_wait(
            self.kind,
            self.name,
            poll_interval=self.poll_interval,
            deadline=self.timeout_at,
            max_backoff=self.max_backoff,
            log=self.log,
            clock=self.clock,
        )
        async with shared_client(**self.connection()) as client:

            def call() -> Awaitable[Any]:
                if self.kind == "transform-job":
                    return client.describe_transform_job(TransformJobName=self.name)
                return client.describe_model_package(ModelPackageName=self.name)

            step = await drive_async(wait, describe_poll(wait, call))
            return resource_event(self.kind, self.name, step.status, step.message, step.subject)

    def error_event(self, err: Exception) -> dict[str, Any]:
        return resource_event(
            self.kind,
            self.name,
            "error",
            f"Error waiting for {self.kind} {self.name!r}: {describe_error(err)}",
            None,
        )

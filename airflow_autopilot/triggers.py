"""
AutopilotJobTrigger: waits on an Autopilot job in the triggerer with aiobotocore.

Triggers of one process share one aiobotocore client per (connection, region, verify, botocore
config, event loop); see :func:`shared_client`. After its first describe, each trigger waits through
the shared :class:`~airflow_autopilot.aio.poller.CoalescedPoller` of that client (``coalesce=True``),
so many waiting jobs cost few SageMaker calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from datetime import datetime, timezone
from typing import Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_autopilot.aio.clients import client_key, shared_client
from airflow_autopilot.aio.poller import Watch, shared_poller
from airflow_autopilot.core.errors import error_code
from airflow_autopilot.core.job import AutopilotJob, WaitCriteria
from airflow_autopilot.core.waiting import (
    DEFAULT_CANDIDATE_COUNT_INTERVAL,
    DEFAULT_MAX_BACKOFF_SECONDS,
    DEFAULT_NOT_FOUND_GRACE_SECONDS,
    ProgressReporter,
    backoff_delay,
    event_for_verdict,
    make_event,
    poll_delay,
    tolerate_poll_error,
)


def _remaining(deadline: datetime | None) -> float | None:
    """Seconds left until ``deadline`` (``None`` without one)."""
    if deadline is None:
        return None
    return (deadline - datetime.now(timezone.utc)).total_seconds()


class AutopilotJobTrigger(BaseTrigger):
    """
    Wait in the triggerer until an Autopilot job meets its success or failure criteria.

    Yields exactly one :class:`TriggerEvent` and returns. Its payload is
    ``{"status": "success"|"failure"|"timeout"|"error", "job_name", "message", "summary"}``
    (see :func:`airflow_autopilot.core.waiting.make_event`); the task side reads it with
    :func:`airflow_autopilot.core.waiting.resolve_event`.

    Transient errors (throttling, 5xx, connection errors) are retried with jittered exponential
    backoff until ``timeout_at``; ResourceNotFound is retried for ``not_found_grace_seconds`` after
    ``created_at`` (or after the trigger started). Anything else ends the wait with an ``error`` event.

    :param job_name: the AutoMLJobName.
    :param aws_conn_id: the Airflow AWS connection id (credentials stay in the connection).
    :param region_name: AWS region override.
    :param verify: SSL verification override.
    :param botocore_config: botocore ``Config`` arguments as a JSON-safe dict.
    :param poll_interval: seconds between DescribeAutoMLJob calls (plus up to 10 % jitter).
    :param timeout_at: ISO 8601 UTC deadline; ``None`` waits without limit.
    :param criteria: :meth:`WaitCriteria.to_dict` output; defaults to ``WaitCriteria()``.
    :param not_found_grace_seconds: seconds after creation during which ResourceNotFound is retried.
    :param created_at: ISO 8601 time the job was created, when known.
    :param candidate_interval: minimum seconds between two candidate counts while training.
    :param max_backoff: cap in seconds on the sleep after repeated transient errors.
    :param coalesce: after the first describe, wait through the process's shared
        :class:`~airflow_autopilot.aio.poller.CoalescedPoller` (one ListAutoMLJobs-driven poller per
        connection, few calls for many jobs) instead of one DescribeAutoMLJob per poll interval.
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
    ) -> None:
        super().__init__()
        self.job_name = job_name
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = dict(botocore_config) if botocore_config else None
        self.poll_interval = float(poll_interval)
        self.timeout_at = timeout_at
        self.criteria = {k: list(v) for k, v in (criteria or WaitCriteria().to_dict()).items()}
        self.not_found_grace_seconds = float(not_found_grace_seconds)
        self.created_at = created_at
        self.candidate_interval = float(candidate_interval)
        self.max_backoff = float(max_backoff)
        self.coalesce = bool(coalesce)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_name": self.job_name,
                "aws_conn_id": self.aws_conn_id,
                "region_name": self.region_name,
                "verify": self.verify,
                "botocore_config": self.botocore_config,
                "poll_interval": self.poll_interval,
                "timeout_at": self.timeout_at,
                "criteria": self.criteria,
                "not_found_grace_seconds": self.not_found_grace_seconds,
                "created_at": self.created_at,
                "candidate_interval": self.candidate_interval,
                "max_backoff": self.max_backoff,
                "coalesce": self.coalesce,
            },
        )

    # --- helpers ----------------------------------------------------------------------------------
    def _deadline(self) -> datetime | None:
        if not self.timeout_at:
            return None
        deadline = datetime.fromisoformat(self.timeout_at.replace("Z", "+00:00"))
        return deadline if deadline.tzinfo else deadline.replace(tzinfo=timezone.utc)

    async def _describe(self, client: Any, api_version: Literal["auto", "v1", "v2"]) -> AutopilotJob:
        if api_version != "v2":
            try:
                response = await client.describe_auto_ml_job(AutoMLJobName=self.job_name)
                return AutopilotJob.from_describe(response, "v1")
            except Exception as err:
                if api_version == "v1" or error_code(err) != "ValidationException":
                    raise
        response = await client.describe_auto_ml_job_v2(AutoMLJobName=self.job_name)
        return AutopilotJob.from_describe(response, "v2")

    async def _count_candidates(self, client: Any, reporter: ProgressReporter, job: AutopilotJob) -> None:
        if not reporter.candidate_count_due(job):
            return
        try:
            response = await client.list_candidates_for_auto_ml_job(
                AutoMLJobName=self.job_name, StatusEquals="Completed", MaxResults=100
            )
        except Exception as err:
            self.log.info("Could not count candidates of %s (%s); carrying on", self.job_name, err)
            reporter.report_candidates(job, None)
            return
        reporter.report_candidates(
            job, len(response.get("Candidates", [])), more=bool(response.get("NextToken"))
        )

    async def _wait(self) -> dict[str, Any]:
        criteria = WaitCriteria.from_dict(self.criteria)
        deadline = self._deadline()
        reference = self.created_at or datetime.now(timezone.utc)
        reporter = ProgressReporter(self.job_name, self.log, candidate_interval=self.candidate_interval)
        api_version: Literal["auto", "v1", "v2"] = "auto"
        failures = 0
        last_job: AutopilotJob | None = None
        client_kwargs: dict[str, Any] = {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
        }
        watch: Watch | None = None
        async with shared_client(**client_kwargs) as client, AsyncExitStack() as stack:
            while True:
                try:
                    if watch is None:
                        job = await self._describe(client, api_version)
                    else:
                        # The shared poller paces the describes; wait for the next one, or the deadline.
                        job = await asyncio.wait_for(watch.next(), timeout=_remaining(deadline))
                except Exception as err:
                    if not tolerate_poll_error(
                        err,
                        self.job_name,
                        self.log,
                        created_at=reference,
                        not_found_grace=self.not_found_grace_seconds,
                    ):
                        return make_event(
                            "error",
                            self.job_name,
                            f"Error polling Autopilot job {self.job_name!r}: {type(err).__name__}: {err}",
                        )
                    failures += 1
                    delay = backoff_delay(failures, self.poll_interval, self.max_backoff)
                else:
                    failures = 0
                    last_job = job
                    api_version = job.api_version
                    reporter.update(job)
                    verdict = criteria.verdict(job)
                    if verdict != "waiting":
                        return event_for_verdict(self.job_name, job, verdict)
                    await self._count_candidates(client, reporter, job)
                    delay = poll_delay(self.poll_interval)
                    if self.coalesce and watch is None:
                        poller = shared_poller(
                            client_key(self.aws_conn_id, self.region_name, self.verify, self.botocore_config)
                        )
                        watch = await stack.enter_async_context(
                            poller.watch(
                                self.job_name,
                                criteria,
                                self.poll_interval,
                                reporter.update,
                                client=client,
                                described=True,
                            )
                        )
                remaining = _remaining(deadline)
                if remaining is not None and remaining <= 0:
                    state = last_job.describe_state() if last_job is not None else "never described"
                    return make_event(
                        "timeout",
                        self.job_name,
                        f"Timed out at {self.timeout_at} waiting for Autopilot job {self.job_name!r} "
                        f"(last seen {state})",
                        last_job,
                    )
                if watch is None:
                    await asyncio.sleep(delay if remaining is None else min(delay, remaining))

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until a verdict, the deadline or a non-transient error; yield one event and return."""
        try:
            payload = await self._wait()
        except Exception as err:  # connection lookup, bad criteria, anything unexpected
            self.log.exception("Autopilot trigger for %s failed", self.job_name)
            payload = make_event(
                "error",
                self.job_name,
                f"Error waiting for Autopilot job {self.job_name!r}: {type(err).__name__}: {err}",
            )
        yield TriggerEvent(payload)

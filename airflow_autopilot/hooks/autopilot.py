"""AutopilotHook: SageMaker Autopilot (AutoML) calls on top of the Amazon provider's AwsBaseHook."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_autopilot.core.defaults import DEFAULT_CANDIDATE_COUNT_INTERVAL, DEFAULT_NOT_FOUND_GRACE_SECONDS
from airflow_autopilot.core.errors import falls_back_to_v2, guarded_client, is_missing, is_not_found
from airflow_autopilot.core.job import TERMINAL_STATUSES, AutopilotJob, WaitCriteria
from airflow_autopilot.core.redaction import describe_error
from airflow_autopilot.core.validation import validate_create_request, validate_job_name
from airflow_autopilot.core.waits.endpoint import EndpointWait
from airflow_autopilot.core.waits.job import JobWait
from airflow_autopilot.core.waits.loop import drive
from airflow_autopilot.core.waits.pace import DEFAULT_MAX_BACKOFF_SECONDS, CallLimits, call_limits
from airflow_autopilot.core.waits.progress import ProgressReporter
from airflow_autopilot.exceptions import AutopilotJobNotFound
from airflow_autopilot.hooks.sessions import client_cache

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.client import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import TagTypeDef

#: botocore retries throttling, 5xx and connection errors itself, with a bounded budget.
DEFAULT_RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": 8}
#: botocore's own defaults: seconds per connect and per read, total attempts per retry mode.
BOTOCORE_DEFAULT_TIMEOUT = 60.0
BOTOCORE_DEFAULT_ATTEMPTS = {"legacy": 5, "standard": 3, "adaptive": 3}


class AutopilotHook(AwsBaseHook):
    """
    Interact with SageMaker Autopilot: create, describe (V1 and V2), list candidates, stop, list jobs.

    Connection handling (``aws_conn_id``, region, ``verify``, botocore config, ``endpoint_url`` from
    the connection extras) comes from the Amazon provider's ``AwsBaseHook``. When the botocore config
    sets no ``retries``, :data:`DEFAULT_RETRIES` applies, so throttling, 5xx responses and dropped
    connections are retried by botocore with backoff before an error reaches the caller.

    :param aws_conn_id: the Airflow AWS connection (default ``aws_default``).
    :param region_name: AWS region; overrides the connection's.
    :param verify: SSL certificate verification, as in ``AwsBaseHook``.
    :param config: a ``botocore.config.Config`` or a dict of its arguments.
    """

    def __init__(
        self,
        aws_conn_id: str | None = AwsBaseHook.default_conn_name,
        region_name: str | None = None,
        verify: bool | str | None = None,
        config: Config | dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            aws_conn_id=aws_conn_id,
            region_name=region_name,
            verify=verify,
            config=config,
            client_type="sagemaker",
        )
        # Set by time_limit(): the botocore settings every call through `client` uses meanwhile.
        self._limits: CallLimits | None = None
        self._bounded_clients: dict[CallLimits, Any] = {}

    #: The operator or sensor class this hook calls for (set by the operator): a denied call's
    #: error names it (:func:`~airflow_autopilot.core.errors.explain_access_denied`).
    caller: str | None = None

    def get_client_type(self, *args: Any, **kwargs: Any) -> Any:
        """AwsBaseHook's client with the package's error handling
        (:func:`~airflow_autopilot.core.errors.guarded_client`); a deferrable one (an async context)
        is left to its user. Inside :func:`~airflow_autopilot.hooks.sessions.shared_clients`, a
        synchronous client is shared with the hooks of the same settings."""

        def create() -> Any:
            client = super(AutopilotHook, self).get_client_type(*args, **kwargs)
            if not hasattr(client, "meta"):
                return client
            return guarded_client(client, self.caller)

        cache = client_cache()
        if cache is None or kwargs.get("deferrable") or self.conn_config.role_arn:
            return create()
        return cache.get(self._client_key("client", args, kwargs), create)

    def _client_key(self, *parts: Any) -> str:
        """Everything a client of this hook depends on, for
        :func:`~airflow_autopilot.hooks.sessions.shared_clients`: the connection (credentials,
        endpoint, extras), region, ``verify``, botocore config, caller and the AWS environment."""
        conn = self.conn_config
        config = self.config
        return json.dumps(
            [
                self.service_name,
                self.region_name,
                [conn.conn_id, conn.login, conn.password, conn.aws_session_token, conn.profile_name],
                conn.get_service_endpoint_url(service_name=self.service_name),
                conn.extra_config,
                self.verify,
                {name: getattr(config, name, None) for name in sorted(Config.OPTION_DEFAULTS)},
                self.caller,
                sorted((k, v) for k, v in os.environ.items() if k.startswith(("AWS_", "AIRFLOW_CTX_"))),
                parts,
            ],
            sort_keys=True,
            default=repr,
        )

    @property
    def config(self) -> Config:
        """The botocore config, with :data:`DEFAULT_RETRIES` when none are set."""
        config = super().config
        if not config.retries:
            config = config.merge(Config(retries=dict(DEFAULT_RETRIES)))
        return config

    @property
    def client(self) -> SageMakerClient:
        """The (cached) boto3 SageMaker client; inside :meth:`time_limit`, one bounded by the time left."""
        limits = getattr(self, "_limits", None)
        if limits is None:
            return self.conn  # type: ignore[return-value]
        return self._bounded_client(limits)

    @contextmanager
    def time_limit(self, seconds: float | None) -> Iterator[None]:
        """
        Within the block, every call through :attr:`client` (retries included) ends within
        ``seconds``: its connect/read timeouts and attempts come from
        :func:`~airflow_autopilot.core.waits.pace.call_limits`. ``None``, or a limit the connection's
        own botocore settings already meet, changes nothing.

        :param seconds: the time the calls may take.
        """
        config = self.config
        retries = dict(config.retries or {})
        mode = retries.get("mode", "legacy")
        if "total_max_attempts" in retries:
            attempts = int(retries["total_max_attempts"])
        elif "max_attempts" in retries:
            attempts = int(retries["max_attempts"]) + 1
        else:
            attempts = BOTOCORE_DEFAULT_ATTEMPTS.get(mode, 3)
        limits = call_limits(
            seconds,
            connect_timeout=float(config.connect_timeout or BOTOCORE_DEFAULT_TIMEOUT),
            read_timeout=float(config.read_timeout or BOTOCORE_DEFAULT_TIMEOUT),
            attempts=attempts,
        )
        previous, self._limits = getattr(self, "_limits", None), limits
        try:
            yield
        finally:
            self._limits = previous

    @cached_property
    def _bounded_session(self) -> Any:
        # One session for every bounded client: an assumed role is assumed once, not per client.
        return self.get_session(region_name=self.region_name)

    def _bounded_client(self, limits: CallLimits) -> Any:
        """A client like :attr:`conn` with ``limits`` applied (standard retries), cached per limits."""
        client = self._bounded_clients.get(limits)
        if client is None:
            cache = client_cache()
            if cache is not None and not self.conn_config.role_arn:
                client = cache.get(
                    self._client_key("bounded", limits), lambda: self._new_bounded_client(limits)
                )
            else:
                client = self._new_bounded_client(limits)
            self._bounded_clients[limits] = client
        return client

    def connection_extras(self) -> dict[str, Any]:
        """The connection's extras (its ``autopilot`` entry defaults the operators' security
        settings: :data:`~airflow_autopilot.core.fields.common.CONNECTION_SETTINGS`); ``{}``
        without a connection."""
        return dict(self.conn_config.extra_config or {}) if self.aws_conn_id else {}

    @cached_property
    def s3(self) -> Any:
        """A boto3 S3 client of this hook's connection (the data and output buckets), with the
        package's error handling (:func:`~airflow_autopilot.core.errors.guarded_client`): a denied
        read names the action, the caller and the docs page as a denied SageMaker call does."""
        client = self.get_session(region_name=self.region_name).client(
            "s3",
            endpoint_url=self.conn_config.get_service_endpoint_url(service_name="s3"),
            config=self._get_config(),
            verify=self.verify,
        )
        return guarded_client(client, self.caller)

    def _new_bounded_client(self, limits: CallLimits) -> Any:
        config = self.config.merge(
            Config(
                connect_timeout=limits.connect_timeout,
                read_timeout=limits.read_timeout,
                retries={"mode": "standard", "total_max_attempts": limits.attempts},
            )
        )
        client = self._bounded_session.client(
            service_name="sagemaker",
            endpoint_url=self.conn_config.get_service_endpoint_url(service_name="sagemaker"),
            config=self._get_config(config),
            verify=self.verify,
        )
        return guarded_client(client, self.caller)

    def _not_found(self, job_name: str) -> AutopilotJobNotFound:
        return AutopilotJobNotFound(job_name, self.region_name)

    # --- describe ---------------------------------------------------------------------------------
    def describe_auto_ml_job(self, job_name: str) -> dict[str, Any]:
        """
        DescribeAutoMLJob (V1): the response exactly as boto3 returns it.

        :param job_name: the AutoMLJobName.
        :raises AutopilotJobNotFound: when SageMaker answers ResourceNotFound.
        """
        try:
            return dict(self.client.describe_auto_ml_job(AutoMLJobName=job_name))
        except ClientError as err:
            if is_not_found(err):
                raise self._not_found(job_name) from err
            raise

    def describe_auto_ml_job_v2(self, job_name: str) -> dict[str, Any]:
        """
        DescribeAutoMLJobV2: the response exactly as boto3 returns it (describes V1 and V2 jobs).

        :param job_name: the AutoMLJobName.
        :raises AutopilotJobNotFound: when SageMaker answers ResourceNotFound.
        """
        try:
            return dict(self.client.describe_auto_ml_job_v2(AutoMLJobName=job_name))
        except ClientError as err:
            if is_not_found(err):
                raise self._not_found(job_name) from err
            raise

    def get_job(self, job_name: str, api_version: Literal["auto", "v1", "v2"] = "auto") -> AutopilotJob:
        """
        A typed view of a job, V1 or V2.

        :param job_name: the AutoMLJobName.
        :param api_version: ``"auto"`` (V1 describe, falling back to V2 when V1 cannot describe the
            job, as for jobs created with CreateAutoMLJobV2), ``"v1"`` or ``"v2"``.
        """
        if api_version == "v2":
            return AutopilotJob.from_describe(self.describe_auto_ml_job_v2(job_name), "v2")
        try:
            return AutopilotJob.from_describe(self.describe_auto_ml_job(job_name), "v1")
        except ClientError as err:
            if not falls_back_to_v2(err, api_version):
                raise
            self.log.info(
                "DescribeAutoMLJob cannot describe %s (%s); using V2", job_name, describe_error(err)
            )
            return AutopilotJob.from_describe(self.describe_auto_ml_job_v2(job_name), "v2")

    # --- waiting ----------------------------------------------------------------------------------
    def wait_for_job(
        self,
        job_name: str,
        criteria: WaitCriteria,
        *,
        poll_interval: float,
        timeout: float | None,
        log: logging.Logger | Any = None,
        not_found_grace: float = DEFAULT_NOT_FOUND_GRACE_SECONDS,
        created_at: datetime | str | None = None,
        candidate_interval: float = DEFAULT_CANDIDATE_COUNT_INTERVAL,
        max_backoff: float = DEFAULT_MAX_BACKOFF_SECONDS,
        sleep: Callable[[float], object] | None = None,
    ) -> AutopilotJob:
        """
        Poll a job until ``criteria`` give a verdict, blocking the caller (the :class:`JobWait`
        state machine decides; transient errors back off, ResourceNotFound is tolerated for
        ``not_found_grace`` seconds after ``created_at``).

        :param job_name: the AutoMLJobName.
        :param criteria: what ends the wait.
        :param poll_interval: seconds between polls (plus up to 10 % jitter).
        :param timeout: give up after this many seconds; ``None`` waits forever.
        :param log: logger for progress lines (default: the hook's).
        :param not_found_grace: seconds after creation during which ResourceNotFound is retried.
        :param created_at: when the job was created; defaults to the start of this wait.
        :param candidate_interval: minimum seconds between candidate counts while training.
        :param max_backoff: cap on the sleep after repeated transient errors.
        :param sleep: sleeps between polls (default: the wait's clock, :func:`~airflow_autopilot.core.clock.default_clock`).
        :return: the job, when the verdict is success.
        :raises AutopilotJobFailed: on a failure verdict, with :meth:`AutopilotJob.failure_message`.
        :raises AutopilotWaitTimeout: when ``timeout`` passes first.
        :raises AutopilotJobNotFound: when the job is still missing after the grace period.
        """
        wait = JobWait(
            job_name,
            criteria,
            poll_interval=poll_interval,
            timeout=timeout,
            log=log or self.log,
            not_found_grace=not_found_grace,
            created_at=created_at,
            candidate_interval=candidate_interval,
            max_backoff=max_backoff,
        )

        def poll() -> AutopilotJob:
            with self.time_limit(wait.call_budget()):
                return self.get_job(job_name, api_version=wait.api_version)

        def between(job: AutopilotJob) -> None:
            with self.time_limit(wait.call_budget()):
                self.count_candidates(wait.reporter, job)

        return drive(wait, poll, between=between, sleep=sleep)

    def count_candidates(self, reporter: ProgressReporter, job: AutopilotJob) -> None:
        """
        When ``reporter`` says a count is due, count completed candidates with one call and log it.

        :param reporter: the wait's progress reporter.
        :param job: the job as last described.
        """
        request = reporter.candidates_request(job)
        if request is None:
            return
        response: Mapping[str, Any] | BaseException
        try:
            response = self.client.list_candidates_for_auto_ml_job(**request)
        except Exception as err:
            response = err
        reporter.report_listing(job, response)

    # --- candidates -------------------------------------------------------------------------------
    def list_candidates(
        self,
        job_name: str,
        *,
        status: str | None = None,
        sort_by: str = "FinalObjectiveMetricValue",
        sort_order: Literal["Ascending", "Descending"] | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """
        ListCandidatesForAutoMLJob over every page; by default best first.

        :param job_name: the AutoMLJobName.
        :param status: only candidates with this CandidateStatus (for example ``Completed``).
        :param sort_by: ``FinalObjectiveMetricValue`` (default), ``CreationTime`` or ``Status``.
        :param sort_order: ``Ascending`` or ``Descending``. When omitted and sorting by the objective,
            the order follows the objective's Maximize/Minimize type, so the best comes first.
        :param limit: stop after this many candidates.
        """
        if limit is not None and limit < 1:
            raise ValueError(f"limit: {limit} must be at least 1")
        if sort_order is None:
            sort_order = "Descending"
            if sort_by == "FinalObjectiveMetricValue":
                job = self.get_job(job_name)
                if job.objective_direction == "Minimize":
                    sort_order = "Ascending"
            elif sort_by == "CreationTime":
                sort_order = "Ascending"
        kwargs: dict[str, Any] = {"AutoMLJobName": job_name, "SortBy": sort_by, "SortOrder": sort_order}
        if status:
            kwargs["StatusEquals"] = status
        if limit is not None:
            kwargs["MaxResults"] = min(limit, 100)
        candidates: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("list_candidates_for_auto_ml_job").paginate(**kwargs):
                candidates.extend(page.get("Candidates", []))
                if limit is not None and len(candidates) >= limit:
                    return candidates[:limit]
        except ClientError as err:
            if is_not_found(err):
                raise self._not_found(job_name) from err
            raise
        return candidates

    # --- create / stop / list ---------------------------------------------------------------------
    def create_auto_ml_job(self, request: Mapping[str, Any]) -> str:
        """
        CreateAutoMLJob (V1) after local validation; returns the job ARN.

        :param request: the CreateAutoMLJob arguments.
        :raises AutopilotValidationError: before any AWS call when the request breaks a rule.
        """
        validate_create_request(request)
        response = self.client.create_auto_ml_job(**request)
        return response["AutoMLJobArn"]

    def create_auto_ml_job_v2(self, request: Mapping[str, Any]) -> str:
        """
        CreateAutoMLJobV2 (any problem type) after local validation; returns the job ARN.

        :param request: the CreateAutoMLJobV2 arguments.
        :raises AutopilotValidationError: before any AWS call when the request breaks a rule.
        """
        from airflow_autopilot.core.validation import validate_create_v2_request

        validate_create_v2_request(request)
        response = self.client.create_auto_ml_job_v2(**request)
        return response["AutoMLJobArn"]

    def stop_auto_ml_job(self, job_name: str, *, tags: list[TagTypeDef] | None = None) -> bool:
        """
        StopAutoMLJob, with no error when the job already ended.

        :param job_name: the AutoMLJobName.
        :param tags: tags added to the job (AddTags) just before the stop request, when one is made:
            a marker that survives the stop even if the caller dies right after it.
        :return: True when a stop was requested, False when the job was already terminal.
        """
        validate_job_name(job_name)
        job = self.get_job(job_name)
        if job.is_terminal or job.status == "Stopping":
            self.log.info("Autopilot job %s is already %s; nothing to stop", job_name, job.status)
            return False
        if tags and job.arn:
            self.client.add_tags(ResourceArn=job.arn, Tags=tags)
        try:
            self.client.stop_auto_ml_job(AutoMLJobName=job_name)
        except ClientError as err:
            if is_not_found(err):
                raise self._not_found(job_name) from err
            # It may have ended between describe and stop.
            if self.get_job(job_name).status in TERMINAL_STATUSES:
                return False
            raise
        self.log.info("Requested stop of Autopilot job %s", job_name)
        return True

    def list_auto_ml_jobs(self, **filters: Any) -> list[dict[str, Any]]:
        """
        ListAutoMLJobs over every page.

        :param filters: ListAutoMLJobs arguments (``NameContains``, ``StatusEquals``,
            ``LastModifiedTimeAfter``, ``SortBy``, ...). ``MaxResults`` sets the page size.
        """
        jobs: list[dict[str, Any]] = []
        for page in self.client.get_paginator("list_auto_ml_jobs").paginate(**filters):
            jobs.extend(page.get("AutoMLJobSummaries", []))
        return jobs

    def describe_or_none(self, operation: str, **kwargs: Any) -> dict[str, Any] | None:
        """
        A SageMaker describe without ResponseMetadata, or ``None`` when the resource does not exist.

        :param operation: the client method, e.g. ``describe_endpoint``.
        :param kwargs: its arguments.
        """
        try:
            response = dict(getattr(self.client, operation)(**kwargs))
        except ClientError as err:
            if is_missing(err):
                return None
            raise
        response.pop("ResponseMetadata", None)
        return response

    # --- endpoints --------------------------------------------------------------------------------
    def describe_endpoint_or_none(self, endpoint_name: str) -> dict[str, Any] | None:
        """DescribeEndpoint without ResponseMetadata, or ``None`` when there is no such endpoint."""
        return self.describe_or_none("describe_endpoint", EndpointName=endpoint_name)

    def wait_for_endpoint(
        self,
        endpoint_name: str,
        *,
        config_name: str | None = None,
        poll_interval: float = 30.0,
        timeout: float | None = 3600.0,
        sleep: Callable[[float], object] | None = None,
        wait: EndpointWait | None = None,
    ) -> dict[str, Any]:
        """
        Poll DescribeEndpoint until the endpoint is InService (on ``config_name`` when given).

        :param endpoint_name: the endpoint.
        :param config_name: the EndpointConfigName it must serve; ``None`` accepts any.
        :param poll_interval: seconds between checks; transient errors back off.
        :param timeout: give up after this many seconds.
        :param sleep: sleeps between polls (default: the wait's clock, :func:`~airflow_autopilot.core.clock.default_clock`).
        :param wait: the wait to drive (a rollout's, keeping its phases for the caller); default: a
            wait for ``config_name`` with these settings.
        :return: the DescribeEndpoint response (without ResponseMetadata).
        :raises AutopilotJobFailed: when the endpoint is Failed, OutOfService or Deleting, with its
            FailureReason, or SageMaker rolled the update back.
        :raises AutopilotError: on timeout or when the endpoint does not exist.
        """
        wait = wait or EndpointWait(
            endpoint_name, config_name, poll_interval=poll_interval, timeout=timeout, log=self.log
        )

        def describe() -> dict[str, Any]:
            with self.time_limit(wait.call_budget()):
                status = self.describe_endpoint_or_none(endpoint_name)
            if status is None:
                raise wait.missing()
            return status

        return drive(wait, describe, sleep=sleep)

"""AutopilotHook: SageMaker Autopilot (AutoML) calls on top of the Amazon provider's AwsBaseHook."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_autopilot.core.errors import error_code, is_not_found
from airflow_autopilot.core.job import TERMINAL_STATUSES, AutopilotJob
from airflow_autopilot.core.validation import validate_create_request, validate_job_name
from airflow_autopilot.exceptions import AutopilotJobNotFound

if TYPE_CHECKING:
    from mypy_boto3_sagemaker.client import SageMakerClient

#: botocore retries throttling, 5xx and connection errors itself, with a bounded budget.
DEFAULT_RETRIES: dict[str, Any] = {"mode": "standard", "max_attempts": 8}


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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["client_type"] = "sagemaker"
        super().__init__(*args, **kwargs)

    @property
    def config(self) -> Config:
        """The botocore config, with :data:`DEFAULT_RETRIES` when none are set."""
        config = super().config
        if not config.retries:
            config = config.merge(Config(retries=dict(DEFAULT_RETRIES)))
        return config

    @property
    def client(self) -> SageMakerClient:
        """The (cached) boto3 SageMaker client."""
        return self.conn  # type: ignore[return-value]

    def _not_found(self, job_name: str, error: ClientError) -> AutopilotJobNotFound:
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
                raise self._not_found(job_name, err) from err
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
                raise self._not_found(job_name, err) from err
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
            if api_version == "v1" or error_code(err) != "ValidationException":
                raise
            self.log.info("DescribeAutoMLJob cannot describe %s (%s); using V2", job_name, err)
            return AutopilotJob.from_describe(self.describe_auto_ml_job_v2(job_name), "v2")

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
                raise self._not_found(job_name, err) from err
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

    def stop_auto_ml_job(self, job_name: str) -> bool:
        """
        StopAutoMLJob, with no error when the job already ended.

        :param job_name: the AutoMLJobName.
        :return: True when a stop was requested, False when the job was already terminal.
        """
        validate_job_name(job_name)
        job = self.get_job(job_name)
        if job.is_terminal or job.status == "Stopping":
            self.log.info("Autopilot job %s is already %s; nothing to stop", job_name, job.status)
            return False
        try:
            self.client.stop_auto_ml_job(AutoMLJobName=job_name)
        except ClientError as err:
            if is_not_found(err):
                raise self._not_found(job_name, err) from err
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

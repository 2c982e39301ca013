"""The SageMaker response class that adds AutoML V1 and UpdateEndpoint to moto, and its installer.

moto routes every SageMaker request through ``moto.sagemaker.urls.url_paths["{0}/$"]``;
:func:`install` points that entry at :meth:`AutopilotResponse.dispatch`. In-process (``mock_aws``)
moto reads the dict on every request; a moto server reads it when it builds its SageMaker app, so
install before starting a server.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.core.utils import utcnow
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
from moto.sagemaker.responses import SageMakerResponse
from moto.utilities.utils import get_partition

from airflow_autopilot.core.validation import KNOWN_REQUEST_KEYS
from airflow_autopilot.emulator import controls
from airflow_autopilot.emulator.job_validation import validate_create_request
from airflow_autopilot.emulator.lifecycle import EmulatedAutoMLJob

SAGEMAKER_URL_KEY = "{0}/$"
#: Default page size of ListCandidatesForAutoMLJob.
DEFAULT_CANDIDATE_PAGE = 10
#: CreateAutoMLJob's fields: the validation module's list.
_CREATE_KEYS = sorted(KNOWN_REQUEST_KEYS)
# Operations whose answers may depend on a job's side effects (the deployed endpoint).
_REFRESH_ALL_OPERATIONS = frozenset(
    {
        "DescribeEndpoint",
        "ListEndpoints",
        "DescribeEndpointConfig",
        "ListEndpointConfigs",
        "DescribeModel",
        "ListModels",
        "UpdateEndpoint",
        "DeleteEndpoint",
    }
)
_STATUS_ORDER = {"InProgress": 0, "Stopping": 1, "Completed": 2, "Failed": 3, "Stopped": 4}


class ThrottlingException(ServiceException):
    """HTTP 400 ``ThrottlingException``: botocore retries it as throttling."""

    code = "ThrottlingException"


class InternalFailure(ServiceException):
    """HTTP 500 ``InternalFailure``: botocore retries it as a transient server error."""

    code = "InternalFailure"


class AutopilotResponse(SageMakerResponse):
    """moto's SageMaker responses plus CreateAutoMLJob, DescribeAutoMLJob,
    ListCandidatesForAutoMLJob, a V1-aware StopAutoMLJob and DescribeAutoMLJobV2, and UpdateEndpoint.

    Every request is counted per operation and may be answered by an injected fault.
    """

    # ------------------------------------------------------------ plumbing

    def call_action(self) -> Any:
        """Count the request, serve an injected fault if one is due, else run the operation."""
        action = self._get_action() or ""
        controls.count_request(action)
        job_name = self._get_param("AutoMLJobName") if self.automated_parameter_parsing else None
        fault = controls.take_fault(action, job_name if isinstance(job_name, str) else None)
        if fault is not None:
            return self._fault_response(fault, job_name)
        if action in _REFRESH_ALL_OPERATIONS:
            self._refresh_all_jobs()
        return super().call_action()

    def _fault_response(self, fault: str, job_name: Any) -> Any:
        error: ServiceException
        status = 400
        if fault == controls.FAULT_THROTTLE:
            error = ThrottlingException("Rate exceeded (injected by the autopilot emulator).")
        elif fault == controls.FAULT_SERVER_ERROR:
            error = InternalFailure("We encountered an internal error. Please try again. (injected)")
            status = 500
        else:
            error = ResourceNotFound(f"Could not find AutoML job with name {job_name}.")
        with warnings.catch_warnings():
            # These codes are not in SageMaker's model; moto warns but serializes them correctly.
            warnings.simplefilter("ignore", UserWarning)
            _, headers, body = self.serialized(ActionResult(error))
        headers["status"] = status
        return status, headers, body

    def _refresh_all_jobs(self) -> None:
        for job in list(self.sagemaker_backend.auto_ml_jobs.values()):
            if isinstance(job, EmulatedAutoMLJob):
                job.refresh()

    def _job(self, name: Any) -> Any:
        job = self.sagemaker_backend.auto_ml_jobs.get(name) if isinstance(name, str) else None
        if job is None:
            raise ResourceNotFound(f"Could not find AutoML job with name {name}.")
        return job

    # ------------------------------------------------------------- AutoML V1

    def create_auto_ml_job(self) -> ActionResult:
        """CreateAutoMLJob: validate, store an :class:`EmulatedAutoMLJob`, queue tag faults."""
        params = {key: self._get_param(key) for key in _CREATE_KEYS if self._get_param(key) is not None}
        validate_create_request(params)
        name = params["AutoMLJobName"]
        backend = self.sagemaker_backend
        if name in backend.auto_ml_jobs:
            raise ResourceInUseException(
                message=f"Resource Already Exists: Auto ML Job with name {name} already exists. Choose a different name."
            )
        job = EmulatedAutoMLJob(
            params,
            account_id=self.current_account,
            region=self.region,
            partition=get_partition(self.region),
            backend=backend,
        )
        jobs: dict[str, Any] = backend.auto_ml_jobs  # moto's list/stop/reset code sees the job here
        jobs[name] = job
        tags = controls.tags_to_dict(params.get("Tags"))
        controls.inject_faults(
            job_name=name,
            throttle=int(tags.get(controls.TAG_THROTTLE, 0)),
            server_errors=int(tags.get(controls.TAG_SERVER_ERRORS, 0)),
            not_found=int(tags.get(controls.TAG_NOT_FOUND, 0)),
        )
        return ActionResult({"AutoMLJobArn": job.arn})

    def describe_auto_ml_job(self) -> ActionResult:
        """DescribeAutoMLJob: V1 jobs only; a V2 job raises ValidationException like AWS."""
        name = self._get_param("AutoMLJobName")
        job = self._job(name)
        if not isinstance(job, EmulatedAutoMLJob):
            raise ValidationError(
                message=(
                    f"The AutoML job {name} was created with CreateAutoMLJobV2. "
                    "Use DescribeAutoMLJobV2 to describe it."
                )
            )
        return ActionResult(job.describe())

    def describe_auto_ml_job_v2(self) -> ActionResult:
        """DescribeAutoMLJobV2: moto's answer for V2 jobs, a V2-shaped view of V1 jobs."""
        job = self._job(self._get_param("AutoMLJobName"))
        if isinstance(job, EmulatedAutoMLJob):
            return ActionResult(job.describe_v2())
        return super().describe_auto_ml_job_v2()

    def stop_auto_ml_job(self) -> ActionResult:
        """StopAutoMLJob: ``Stopping`` for one stage then ``Stopped``; a no-op on finished jobs."""
        job = self._job(self._get_param("AutoMLJobName"))
        if isinstance(job, EmulatedAutoMLJob):
            job.stop()
            return EmptyResult()
        return super().stop_auto_ml_job()

    def list_candidates_for_auto_ml_job(self) -> ActionResult:
        """ListCandidatesForAutoMLJob with StatusEquals, CandidateNameEquals, SortBy, SortOrder and paging."""
        job = self._job(self._get_param("AutoMLJobName"))
        candidates: list[dict[str, Any]] = job.candidates() if isinstance(job, EmulatedAutoMLJob) else []
        status = self._get_param("StatusEquals")
        if status:
            candidates = [c for c in candidates if c["CandidateStatus"] == status]
        name = self._get_param("CandidateNameEquals")
        if name:
            candidates = [c for c in candidates if c["CandidateName"] == name]
        candidates = _sort_candidates(
            candidates,
            self._get_param("SortBy") or "CreationTime",
            self._get_param("SortOrder") or "Ascending",
        )
        max_results = self._get_param("MaxResults")
        page = DEFAULT_CANDIDATE_PAGE if max_results is None else int(max_results)
        if not 1 <= page <= 300:
            raise ValidationError(
                message=f"1 validation error detected: Value '{page}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 300"
            )
        start = _decode_token(self._get_param("NextToken"))
        result: dict[str, Any] = {"Candidates": candidates[start : start + page]}
        if start + page < len(candidates):
            result["NextToken"] = _encode_token(start + page)
        return ActionResult(result)

    # ------------------------------------------------------------- endpoints

    def update_endpoint(self) -> ActionResult:
        """UpdateEndpoint: switch an endpoint to another endpoint config (InService at once, like moto)."""
        backend = self.sagemaker_backend
        endpoint_name = self._get_param("EndpointName")
        config_name = self._get_param("EndpointConfigName")
        endpoint = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = f"arn:{get_partition(self.region)}:sagemaker:{self.region}:{self.current_account}:endpoint/{endpoint_name}"
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        config = backend.endpoint_configs.get(config_name)
        if config is None:
            arn = f"arn:{get_partition(self.region)}:sagemaker:{self.region}:{self.current_account}:endpoint-config/{config_name}"
            raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
        endpoint.endpoint_config_name = config_name
        endpoint.production_variants = endpoint._process_production_variants(config.production_variants)
        endpoint.last_modified_time = utcnow()
        endpoint.endpoint_status = "InService"
        return ActionResult({"EndpointArn": endpoint.arn})


def _sort_candidates(candidates: list[dict[str, Any]], sort_by: str, order: str) -> list[dict[str, Any]]:
    reverse = order == "Descending"
    if sort_by == "Status":
        return sorted(candidates, key=lambda c: (c["CandidateStatus"], c["CreationTime"]), reverse=reverse)
    if sort_by == "FinalObjectiveMetricValue":
        scored = [c for c in candidates if "FinalAutoMLJobObjectiveMetric" in c]
        unscored = [c for c in candidates if "FinalAutoMLJobObjectiveMetric" not in c]
        scored.sort(key=lambda c: c["FinalAutoMLJobObjectiveMetric"]["Value"], reverse=reverse)
        return scored + unscored
    return sorted(candidates, key=lambda c: c["CreationTime"], reverse=reverse)


def _encode_token(offset: int) -> str:
    return json.dumps({"offset": offset})


def _decode_token(token: Any) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(token)["offset"])
    except (ValueError, KeyError, TypeError):
        raise ValidationError(message="Invalid pagination token: NextToken is not valid.") from None
    if offset < 0:
        raise ValidationError(message="Invalid pagination token: NextToken is not valid.")
    return offset


def install() -> None:
    """Route moto's SageMaker requests to :class:`AutopilotResponse` and register the HTTP controls.

    Idempotent. Call before a moto server builds its SageMaker app (the first SageMaker request).
    """
    from moto.sagemaker import urls

    urls.url_paths[SAGEMAKER_URL_KEY] = AutopilotResponse.dispatch
    from airflow_autopilot.emulator.http_controls import register_routes

    register_routes()


def uninstall() -> None:
    """Give the SageMaker route back to moto's own response class (in-process mode)."""
    from moto.sagemaker import urls

    urls.url_paths[SAGEMAKER_URL_KEY] = SageMakerResponse.dispatch


def is_installed() -> bool:
    """Return whether moto's SageMaker route points at :class:`AutopilotResponse`."""
    from moto.sagemaker import urls

    handler = urls.url_paths.get(SAGEMAKER_URL_KEY)
    return getattr(handler, "__self__", None) is AutopilotResponse

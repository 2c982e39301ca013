"""The emulator's backend: the state and rules of the SageMaker operations it adds to moto's
SageMaker backend or answers more faithfully than moto does."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from moto.core.exceptions import InvalidToken
from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.utils import arn_formatter
from moto.utilities.paginator import paginate

from airflow_autopilot.core.clock import parse_timestamp
from airflow_autopilot.emulator import controls, guardrails
from airflow_autopilot.emulator.events import send_model_package_state_change
from airflow_autopilot.emulator.job_validation import validate_create_request, validate_create_v2_request
from airflow_autopilot.emulator.lifecycle import EmulatedAutoMLJob

#: Page size of ListCandidatesForAutoMLJob when the request gives no ``MaxResults``.
DEFAULT_CANDIDATE_PAGE = 10
#: Largest ``MaxResults`` ListCandidatesForAutoMLJob accepts.
MAX_CANDIDATE_PAGE = 300
#: ``MaxResults`` range and default page size of ListAutoMLJobs.
JOB_PAGE_RANGE = (1, 100)
DEFAULT_JOB_PAGE = 100
#: Enums of the list operations' filters and sort keys (botocore's model).
LIST_JOB_STATUSES = ("Completed", "InProgress", "Failed", "Stopped", "Stopping")
LIST_JOB_SORT_BY = ("Name", "CreationTime", "Status")
CANDIDATE_STATUSES = ("Completed", "InProgress", "Failed", "Stopped", "Stopping")
CANDIDATE_SORT_BY = ("CreationTime", "Status", "FinalObjectiveMetricValue")
SORT_ORDERS = ("Ascending", "Descending")
#: moto's paginator settings of the list operations, keyed by the backend method that lists all
#: items (as moto's own SageMaker backend declares its own): a token names the next page's first item.
PAGINATION_MODEL = {
    "_all_candidates": {
        "input_token": "next_token",
        "limit_key": "max_results",
        "limit_default": DEFAULT_CANDIDATE_PAGE,
        "unique_attribute": "CandidateName",
    },
    "_all_job_summaries": {
        "input_token": "next_token",
        "limit_key": "max_results",
        "limit_default": DEFAULT_JOB_PAGE,
        "unique_attribute": "AutoMLJobName",
    },
}
NAME_CONTAINS_PATTERN = re.compile(r"[a-zA-Z0-9\-]+")
#: Endpoint statuses during which SageMaker refuses UpdateEndpoint.
ENDPOINT_IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
# CreateModelPackage numbers versions by counting them: concurrent requests (a threaded server)
# must not interleave, and a ClientToken must be looked up and used atomically.
_MODEL_PACKAGE_LOCK = threading.Lock()


class AutopilotBackend:
    """The AutoML operations (V1 and V2) of one account and region.

    It keeps no state of its own: jobs live in moto's ``auto_ml_jobs`` dict under their lowercase
    name, so moto's tagging and reset see them.

    :param sagemaker: moto's SageMaker backend of the account and region.
    """

    def __init__(self, sagemaker: SageMakerModelBackend) -> None:
        self.sagemaker = sagemaker

    @property
    def _jobs(self) -> dict[str, Any]:
        # moto types the dict as holding its own AutoMLJob; it holds EmulatedAutoMLJob too.
        jobs: dict[str, Any] = self.sagemaker.auto_ml_jobs
        return jobs

    def job(self, name: Any) -> Any:
        """Return the stored job: an :class:`EmulatedAutoMLJob`.

        Names are case-insensitive, as on SageMaker: jobs are stored under the lowercase name (the
        name in their lowercase ARN, which is how moto's tagging finds them).

        :param name: the ``AutoMLJobName`` of the request.
        :raises ResourceNotFound: when no job has that name.
        """
        job = self._jobs.get(name.lower()) if isinstance(name, str) else None
        if job is None:
            raise ResourceNotFound(f"Could not find AutoML job with name {name}.")
        return job

    def refresh_jobs(self) -> None:
        """Bring every job up to the emulator clock, so their endpoints and artifacts exist."""
        for job in list(self._jobs.values()):
            if isinstance(job, EmulatedAutoMLJob):
                job.refresh()

    def change_log(self) -> dict[str, list[tuple[float, str, str]]]:
        """Every job's status changes so far: name to ``(emulator time, status, secondary)``,
        oldest first (see :meth:`EmulatedAutoMLJob.changes`)."""
        return {
            job.auto_ml_job_name: job.changes()
            for job in list(self._jobs.values())
            if isinstance(job, EmulatedAutoMLJob)
        }

    def create_auto_ml_job(self, params: dict[str, Any]) -> str:
        """Validate and store a V1 job, queue the faults its tags ask for; return its ARN.

        :param params: the CreateAutoMLJob request parameters that were given.
        :raises ValidationError: when SageMaker would reject the request.
        :raises ResourceInUseException: when a job of that name exists.
        """
        validate_create_request(params)
        return self._store(params, v2=False)

    def create_auto_ml_job_v2(self, params: dict[str, Any]) -> str:
        """Validate and store a V2 job of any problem type, queue the faults its tags ask for; return its ARN.

        :param params: the CreateAutoMLJobV2 request parameters that were given.
        :raises ValidationError: when SageMaker would reject the request.
        :raises ResourceInUseException: when a job of that name (in any letter case) exists.
        """
        validate_create_v2_request(params)
        return self._store(params, v2=True)

    def _store(self, params: dict[str, Any], v2: bool) -> str:
        name = params["AutoMLJobName"]
        if name.lower() in self._jobs:
            raise ResourceInUseException(
                message=f"Resource Already Exists: Auto ML Job with name {name} already exists. Choose a different name."
            )
        job = EmulatedAutoMLJob(params, self.sagemaker, v2=v2)
        self._jobs[name.lower()] = job
        tags = controls.tags_to_dict(params.get("Tags"))
        controls.inject_faults(
            job_name=name,
            throttle=int(tags.get(controls.TAG_THROTTLE, 0)),
            server_errors=int(tags.get(controls.TAG_SERVER_ERRORS, 0)),
            not_found=int(tags.get(controls.TAG_NOT_FOUND, 0)),
        )
        return job.arn

    def describe_auto_ml_job(self, name: Any) -> dict[str, Any]:
        """Return the DescribeAutoMLJob answer of a V1 job.

        :param name: the job name.
        :raises ValidationError: for a V2 job, as AWS does.
        """
        job = self.job(name)
        if not isinstance(job, EmulatedAutoMLJob) or job.created_with_v2:
            raise ValidationError(
                message=(
                    f"The AutoML job {name} was created with CreateAutoMLJobV2. "
                    "Use DescribeAutoMLJobV2 to describe it."
                )
            )
        return job.describe()

    def describe_auto_ml_job_v2(self, name: Any) -> dict[str, Any]:
        """Return the DescribeAutoMLJobV2 answer (of a V2 job, or the V2-shaped view of a V1 job).

        :param name: the job name.
        """
        job = self.job(name)
        if isinstance(job, EmulatedAutoMLJob):
            return job.describe_v2()
        return self.sagemaker.describe_auto_ml_job_v2(job.auto_ml_job_name)

    def stop_auto_ml_job(self, name: Any) -> None:
        """Stop a job: a V1 job is ``Stopping`` for one stage, then ``Stopped``; moto stops V2 jobs.

        :param name: the job name.
        """
        job = self.job(name)
        if isinstance(job, EmulatedAutoMLJob):
            job.stop()
        else:
            self.sagemaker.stop_auto_ml_job(job.auto_ml_job_name)

    def list_candidates_for_auto_ml_job(
        self,
        name: Any,
        status_equals: str | None = None,
        candidate_name_equals: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of a job's candidates and the token of the next page (``None`` at the end).

        :param name: the job name.
        :param status_equals: keep candidates in this ``CandidateStatus``.
        :param candidate_name_equals: keep the candidate of this name.
        :param sort_by: ``CreationTime`` (default), ``Status`` or ``FinalObjectiveMetricValue``.
        :param sort_order: ``Ascending`` (default) or ``Descending``.
        :param max_results: page size, 1 to :data:`MAX_CANDIDATE_PAGE`.
        :param next_token: the token of the previous page.
        :raises ValidationError: for a page size out of range or a token this backend did not issue.
        """
        _check_enum(status_equals, "statusEquals", CANDIDATE_STATUSES)
        _check_enum(sort_by, "sortBy", CANDIDATE_SORT_BY)
        _check_enum(sort_order, "sortOrder", SORT_ORDERS)
        self.job(name)
        page = _page_size(max_results, (1, MAX_CANDIDATE_PAGE), DEFAULT_CANDIDATE_PAGE)
        with _token_errors():
            result: tuple[list[dict[str, Any]], str | None] = self._all_candidates(
                name=name,
                status_equals=status_equals,
                candidate_name_equals=candidate_name_equals,
                sort_by=sort_by or "CreationTime",
                sort_order=sort_order or "Ascending",
                max_results=page,
                next_token=next_token or None,
            )
        return result

    @paginate(PAGINATION_MODEL)
    def _all_candidates(
        self,
        name: str,
        status_equals: str | None,
        candidate_name_equals: str | None,
        sort_by: str,
        sort_order: str,
    ) -> list[dict[str, Any]]:
        job = self.job(name)
        candidates: list[dict[str, Any]] = job.candidates() if isinstance(job, EmulatedAutoMLJob) else []
        if status_equals:
            candidates = [c for c in candidates if c["CandidateStatus"] == status_equals]
        if candidate_name_equals:
            candidates = [c for c in candidates if c["CandidateName"] == candidate_name_equals]
        return _sort_candidates(candidates, sort_by, sort_order)

    def list_auto_ml_jobs(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        """Return one page of ListAutoMLJobs and the next token, validating like SageMaker.

        Defaults: ``SortBy`` Name, ``SortOrder`` Descending (the API reference's), 100 per page.
        ``NameContains`` matches case-insensitively, as names are case-insensitive.

        :param params: the request members (``None`` when not given).
        :raises ValidationError: for a value outside its enum, range or pattern, or a bad token.
        """
        _check_enum(params.get("StatusEquals"), "statusEquals", LIST_JOB_STATUSES)
        _check_enum(params.get("SortBy"), "sortBy", LIST_JOB_SORT_BY)
        _check_enum(params.get("SortOrder"), "sortOrder", SORT_ORDERS)
        contains = params.get("NameContains")
        if contains is not None and (
            not isinstance(contains, str)
            or len(contains) > 63
            or not NAME_CONTAINS_PATTERN.fullmatch(contains)
        ):
            raise ValidationError(
                message=f"1 validation error detected: Value '{contains}' at 'nameContains' failed to satisfy "
                f"constraint: Member must satisfy regular expression pattern: {NAME_CONTAINS_PATTERN.pattern}"
            )
        page = _page_size(params.get("MaxResults"), JOB_PAGE_RANGE, DEFAULT_JOB_PAGE)
        filters = {key: value for key, value in params.items() if key not in ("MaxResults", "NextToken")}
        with _token_errors():
            result: tuple[list[dict[str, Any]], str | None] = self._all_job_summaries(
                filters=filters, max_results=page, next_token=params.get("NextToken") or None
            )
        return result

    @paginate(PAGINATION_MODEL)
    def _all_job_summaries(self, filters: dict[str, Any]) -> list[dict[str, Any]]:
        self.refresh_jobs()
        summaries = [job.summary() for job in list(self._jobs.values())]
        contains = filters.get("NameContains")
        if contains:
            summaries = [j for j in summaries if contains.lower() in j["AutoMLJobName"].lower()]
        if filters.get("StatusEquals"):
            summaries = [j for j in summaries if j["AutoMLJobStatus"] == filters["StatusEquals"]]
        for key, field, after in (
            ("CreationTimeAfter", "CreationTime", True),
            ("CreationTimeBefore", "CreationTime", False),
            ("LastModifiedTimeAfter", "LastModifiedTime", True),
            ("LastModifiedTimeBefore", "LastModifiedTime", False),
        ):
            bound = _as_datetime(filters.get(key), key)
            if bound is not None:
                summaries = [j for j in summaries if (j[field] > bound if after else j[field] < bound)]
        sort_by = filters.get("SortBy") or "Name"
        reverse = (filters.get("SortOrder") or "Descending") == "Descending"
        sort_key: Callable[[dict[str, Any]], Any] = {
            "Name": lambda j: j["AutoMLJobName"].lower(),
            "CreationTime": lambda j: j["CreationTime"],
            "Status": lambda j: (j["AutoMLJobStatus"], j["AutoMLJobName"].lower()),
        }[sort_by]
        summaries.sort(key=sort_key, reverse=reverse)
        return summaries

    def update_endpoint(
        self,
        endpoint_name: str,
        endpoint_config_name: str,
        deployment_config: dict[str, Any] | None = None,
        retain_deployment_config: bool = False,
    ) -> str:
        """Start switching an endpoint to another endpoint config; return the endpoint ARN.

        Without a ``DeploymentConfig`` the endpoint is ``Updating`` for one stage, then serves the
        new config, InService. With one it goes through the phases of
        :mod:`~airflow_autopilot.emulator.guardrails` (blue/green canary, linear or all at once, or
        rolling) and rolls back when a watched CloudWatch alarm is in ALARM while a phase bakes. With
        the config's ``autopilot-emulator:update-outcome`` tag set to ``rollback`` it is
        ``RollingBack`` for one more stage at the end instead and returns to InService on its
        previous config, with a ``FailureReason``, as SageMaker does when the new containers never
        get healthy. While the update runs, ``PendingDeploymentSummary`` describes the new config.

        :param endpoint_name: the endpoint.
        :param endpoint_config_name: the endpoint config to switch to.
        :param deployment_config: the request's ``DeploymentConfig``, if any.
        :param retain_deployment_config: reuse the endpoint's ``LastDeploymentConfig`` when the
            request gives none.
        :raises ValidationError: when the endpoint or the endpoint config does not exist, the
            endpoint is busy (``Cannot update in-progress endpoint``), the DeploymentConfig is refused,
            a watched alarm does not exist or the outcome tag is unknown; nothing changes then.
        """
        backend = self.sagemaker
        # Any: moto types the endpoint's optional attributes as always None.
        endpoint: Any = backend.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = self._arn("endpoint", endpoint_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        config = backend.endpoint_configs.get(endpoint_config_name)
        if config is None:
            arn = self._arn("endpoint-config", endpoint_config_name)
            raise ValidationError(message=f"Could not find endpoint configuration '{arn}'.")
        if endpoint.endpoint_status in ENDPOINT_IN_PROGRESS:
            raise ValidationError(message=f'Cannot update in-progress endpoint "{endpoint.arn}".')
        try:
            outcome = controls.update_outcome(config.tags)
        except ValueError as err:
            raise ValidationError(message=str(err)) from err
        if deployment_config is None and retain_deployment_config:
            deployment_config = getattr(endpoint, "last_deployment_config", None)
        guardrails.start(backend, endpoint, config, deployment_config, outcome)
        return str(endpoint.arn)

    def refresh_endpoints(self) -> None:
        """Bring every endpoint update in flight up to the emulator clock."""
        guardrails.refresh(self.sagemaker)

    def create_model_package(self, create: Callable[[], str], client_token: str | None) -> str:
        """Run moto's CreateModelPackage (``create``) unless ``client_token`` was used before.

        SageMaker makes CreateModelPackage idempotent with ``ClientToken``: a request repeating a
        token gets the ARN the first one created, and nothing new. moto stores the token only.

        :param create: calls moto's CreateModelPackage and returns the new ARN.
        :param client_token: the request's ``ClientToken``, if any.
        """
        with _MODEL_PACKAGE_LOCK:
            if client_token:
                for package in self.sagemaker.model_packages.values():
                    if getattr(package, "client_token", None) == client_token:
                        return str(package.arn)
            arn = create()
            self._state_changed(arn)
            return arn

    def _state_changed(self, arn: str) -> None:
        """Tell EventBridge that a version was created or its approval status changed."""
        name = self.sagemaker.model_package_name_mapping.get(arn, arn)
        package = self.sagemaker.model_packages.get(name)
        if package is not None:
            send_model_package_state_change(package, self.sagemaker.account_id, self.sagemaker.region_name)

    def update_model_package(
        self,
        arn: str,
        *,
        approval_status: str | None,
        approval_description: str | None,
        metadata: dict[str, str] | None,
        remove: list[str],
    ) -> str:
        """UpdateModelPackage: approve or reject a version, merge or remove metadata keys.

        :param arn: the version's ARN (or name).
        :param approval_status: the new ModelApprovalStatus, if any.
        :param approval_description: ApprovalDescription, if any.
        :param metadata: CustomerMetadataProperties to add or overwrite.
        :param remove: CustomerMetadataProperties keys to remove.
        :raises ValidationError: for an unknown version or approval status.
        """
        with _MODEL_PACKAGE_LOCK:
            name = self.sagemaker.model_package_name_mapping.get(arn, arn)
            package: Any = self.sagemaker.model_packages.get(name)
            if package is None:
                raise ValidationError(message=f"Model package {arn} not found")
            changed = False
            if approval_status is not None:
                if approval_status not in ("Approved", "Rejected", "PendingManualApproval"):
                    raise ValidationError(
                        message=f"Value '{approval_status}' at 'modelApprovalStatus' failed to satisfy "
                        "constraint: Member must satisfy enum value set: [Approved, Rejected, PendingManualApproval]"
                    )
                changed = approval_status != package.model_approval_status
                package.set_model_approval_status(approval_status)
            if approval_description is not None:
                package.approval_description = approval_description
            merged = dict(package.customer_metadata_properties or {})
            merged.update(metadata or {})
            for key in remove:
                merged.pop(key, None)
            package.customer_metadata_properties = merged
            package.modifications_done()
            if changed:
                self._state_changed(str(package.arn))
            return str(package.arn)

    def _arn(self, kind: str, name: str) -> str:
        return arn_formatter(kind, name, self.sagemaker.account_id, self.sagemaker.region_name)


def _sort_candidates(candidates: list[dict[str, Any]], sort_by: str, order: str) -> list[dict[str, Any]]:
    reverse = order == "Descending"
    if sort_by == "Status":
        return sorted(candidates, key=lambda c: (c["CandidateStatus"], c["CreationTime"]), reverse=reverse)
    if sort_by == "FinalObjectiveMetricValue":
        # Unscored candidates (not completed) go last whatever the order, as on AWS.
        scored = [c for c in candidates if "FinalAutoMLJobObjectiveMetric" in c]
        unscored = [c for c in candidates if "FinalAutoMLJobObjectiveMetric" not in c]
        scored.sort(key=lambda c: c["FinalAutoMLJobObjectiveMetric"]["Value"], reverse=reverse)
        return scored + unscored
    return sorted(candidates, key=lambda c: c["CreationTime"], reverse=reverse)


def _check_enum(value: Any, where: str, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise ValidationError(
            message=f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: "
            f"Member must satisfy enum value set: [{', '.join(allowed)}]"
        )


def _page_size(value: Any, bounds: tuple[int, int], default: int) -> int:
    page = default if value is None else int(value)
    if not bounds[0] <= page <= bounds[1]:
        raise ValidationError(
            message=f"1 validation error detected: Value '{page}' at 'maxResults' failed to satisfy "
            f"constraint: Member must have value between {bounds[0]} and {bounds[1]}"
        )
    return page


def _as_datetime(value: Any, where: str) -> datetime | None:
    """A timestamp member as botocore sends it (epoch seconds, or ISO 8601 text), as naive UTC (as
    moto keeps job times, so the filters compare like with like).

    :param value: the request member.
    :param where: its name, for SageMaker's ValidationException.
    """
    try:
        parsed = parse_timestamp(value)
    except ValueError:
        raise ValidationError(message=f"Value '{value}' at '{where}' is not a valid timestamp.") from None
    return parsed.replace(tzinfo=None) if parsed is not None else None


@contextmanager
def _token_errors() -> Iterator[None]:
    """Answer a NextToken that moto's paginator refuses as SageMaker does: a ValidationException."""
    try:
        yield
    except InvalidToken as err:
        raise ValidationError(message="Invalid pagination token: NextToken is not valid.") from err

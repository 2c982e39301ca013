"""The emulator's backend: AutoML V1 jobs, UpdateEndpoint and idempotent CreateModelPackage over
moto's SageMaker backend.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

from moto.sagemaker.exceptions import ResourceInUseException, ResourceNotFound, ValidationError
from moto.sagemaker.models import SageMakerModelBackend
from moto.sagemaker.utils import arn_formatter

from airflow_autopilot.emulator import controls, settings
from airflow_autopilot.emulator.job_validation import validate_create_request
from airflow_autopilot.emulator.lifecycle import EmulatedAutoMLJob

#: Page size of ListCandidatesForAutoMLJob when the request gives no ``MaxResults``.
DEFAULT_CANDIDATE_PAGE = 10
#: Largest ``MaxResults`` ListCandidatesForAutoMLJob accepts.
MAX_CANDIDATE_PAGE = 300
#: Endpoint statuses during which SageMaker refuses UpdateEndpoint.
ENDPOINT_IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
#: Attribute of moto's backend holding the updates in flight (moto's reset drops it with the backend).
_UPDATES_ATTRIBUTE = "autopilot_endpoint_updates"
# CreateModelPackage numbers versions by counting them: concurrent requests (a threaded server)
# must not interleave, and a ClientToken must be looked up and used atomically.
_MODEL_PACKAGE_LOCK = threading.Lock()


class AutopilotBackend:
    """The AutoML V1 operations of one account and region.

    It keeps no state of its own: V1 jobs live in moto's ``auto_ml_jobs`` dict next to moto's V2 jobs,
    so moto's ListAutoMLJobs, tagging and reset see them.

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
        """Return the stored job, an :class:`EmulatedAutoMLJob` (V1) or moto's ``AutoMLJob`` (V2).

        :param name: the ``AutoMLJobName`` of the request.
        :raises ResourceNotFound: when no job has that name.
        """
        job = self._jobs.get(name) if isinstance(name, str) else None
        if job is None:
            raise ResourceNotFound(f"Could not find AutoML job with name {name}.")
        return job

    def refresh_jobs(self) -> None:
        """Bring every V1 job up to the emulator clock, so their endpoints and artifacts exist."""
        for job in list(self._jobs.values()):
            if isinstance(job, EmulatedAutoMLJob):
                job.refresh()

    def change_log(self) -> dict[str, list[tuple[float, str, str]]]:
        """Every V1 job's status changes so far: name to ``(emulator time, status, secondary)``,
        oldest first (see :meth:`EmulatedAutoMLJob.changes`)."""
        return {
            name: job.changes()
            for name, job in list(self._jobs.items())
            if isinstance(job, EmulatedAutoMLJob)
        }

    def create_auto_ml_job(self, params: dict[str, Any]) -> str:
        """Validate and store a V1 job, queue the faults its tags ask for; return its ARN.

        :param params: the CreateAutoMLJob request parameters that were given.
        :raises ValidationError: when SageMaker would reject the request.
        :raises ResourceInUseException: when a job of that name exists.
        """
        validate_create_request(params)
        name = params["AutoMLJobName"]
        if name in self._jobs:
            raise ResourceInUseException(
                message=f"Resource Already Exists: Auto ML Job with name {name} already exists. Choose a different name."
            )
        job = EmulatedAutoMLJob(params, self.sagemaker)
        self._jobs[name] = job
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
        if not isinstance(job, EmulatedAutoMLJob):
            raise ValidationError(
                message=(
                    f"The AutoML job {name} was created with CreateAutoMLJobV2. "
                    "Use DescribeAutoMLJobV2 to describe it."
                )
            )
        return job.describe()

    def describe_auto_ml_job_v2(self, name: Any) -> dict[str, Any]:
        """Return the DescribeAutoMLJobV2 answer: a V2-shaped view of a V1 job, moto's for a V2 job.

        :param name: the job name.
        """
        job = self.job(name)
        if isinstance(job, EmulatedAutoMLJob):
            return job.describe_v2()
        return self.sagemaker.describe_auto_ml_job_v2(name)

    def stop_auto_ml_job(self, name: Any) -> None:
        """Stop a job: a V1 job is ``Stopping`` for one stage, then ``Stopped``; moto stops V2 jobs.

        :param name: the job name.
        """
        job = self.job(name)
        if isinstance(job, EmulatedAutoMLJob):
            job.stop()
        else:
            self.sagemaker.stop_auto_ml_job(name)

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

        moto's own V2 jobs have no candidates.

        :param name: the job name.
        :param status_equals: keep candidates in this ``CandidateStatus``.
        :param candidate_name_equals: keep the candidate of this name.
        :param sort_by: ``CreationTime`` (default), ``Status`` or ``FinalObjectiveMetricValue``.
        :param sort_order: ``Ascending`` (default) or ``Descending``.
        :param max_results: page size, 1 to :data:`MAX_CANDIDATE_PAGE`.
        :param next_token: the token of the previous page.
        :raises ValidationError: for a page size out of range or a token this backend did not issue.
        """
        job = self.job(name)
        candidates: list[dict[str, Any]] = job.candidates() if isinstance(job, EmulatedAutoMLJob) else []
        if status_equals:
            candidates = [c for c in candidates if c["CandidateStatus"] == status_equals]
        if candidate_name_equals:
            candidates = [c for c in candidates if c["CandidateName"] == candidate_name_equals]
        candidates = _sort_candidates(candidates, sort_by or "CreationTime", sort_order or "Ascending")
        page = DEFAULT_CANDIDATE_PAGE if max_results is None else int(max_results)
        if not 1 <= page <= MAX_CANDIDATE_PAGE:
            raise ValidationError(
                message=f"1 validation error detected: Value '{page}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and {MAX_CANDIDATE_PAGE}"
            )
        start = _decode_token(next_token)
        end = start + page
        return candidates[start:end], (_encode_token(end) if end < len(candidates) else None)

    def update_endpoint(self, endpoint_name: str, endpoint_config_name: str) -> str:
        """Start switching an endpoint to another endpoint config; return the endpoint ARN.

        The endpoint is ``Updating`` for one stage; then it serves the new config, InService. With
        the config's ``autopilot-emulator:update-outcome`` tag set to ``rollback`` it is
        ``RollingBack`` for one more stage instead and returns to InService on its previous config,
        with a ``FailureReason``, as SageMaker does when the new containers never get healthy.
        While the update runs, ``PendingDeploymentSummary`` names the new config.

        :param endpoint_name: the endpoint.
        :param endpoint_config_name: the endpoint config to switch to.
        :raises ValidationError: when the endpoint or the endpoint config does not exist, the
            endpoint is busy (``Cannot update in-progress endpoint``) or the outcome tag is unknown.
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
        started = settings.now()
        self._updates()[endpoint_name] = {
            "config": endpoint_config_name,
            "outcome": outcome,
            "started": started,
            "stage": settings.stage_seconds(),
        }
        endpoint.endpoint_status = "Updating"
        endpoint.failure_reason = None
        endpoint.last_modified_time = settings.to_datetime(started)
        # DescribeEndpoint answers every attribute of moto's endpoint: this one while the update runs.
        endpoint.pending_deployment_summary = {
            "EndpointConfigName": endpoint_config_name,
            "StartTime": settings.to_datetime(started),
        }
        return str(endpoint.arn)

    def refresh_endpoints(self) -> None:
        """Bring every endpoint update in flight up to the emulator clock."""
        updates = self._updates()
        now = settings.now()
        for name, update in list(updates.items()):
            endpoint: Any = self.sagemaker.endpoints.get(name)
            if endpoint is None:
                updates.pop(name, None)
                continue
            elapsed, stage = now - update["started"], update["stage"]
            rollback = update["outcome"] == controls.UPDATE_OUTCOME_ROLLBACK
            if elapsed < stage:
                continue
            if rollback and elapsed < 2 * stage:
                endpoint.endpoint_status = "RollingBack"
                continue
            if rollback:
                endpoint.failure_reason = controls.ROLLBACK_FAILURE_REASON
            else:
                config = self.sagemaker.endpoint_configs.get(update["config"])
                endpoint.endpoint_config_name = update["config"]
                if config is not None:
                    endpoint.production_variants = endpoint._process_production_variants(
                        config.production_variants
                    )
            ended = update["started"] + (2 if rollback else 1) * stage
            endpoint.endpoint_status = "InService"
            endpoint.last_modified_time = settings.to_datetime(ended)
            endpoint.pending_deployment_summary = None
            updates.pop(name, None)

    def _updates(self) -> dict[str, dict[str, Any]]:
        updates = getattr(self.sagemaker, _UPDATES_ATTRIBUTE, None)
        if updates is None:
            updates = {}
            setattr(self.sagemaker, _UPDATES_ATTRIBUTE, updates)
        return updates

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
            return create()

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
            if approval_status is not None:
                if approval_status not in ("Approved", "Rejected", "PendingManualApproval"):
                    raise ValidationError(
                        message=f"Value '{approval_status}' at 'modelApprovalStatus' failed to satisfy "
                        "constraint: Member must satisfy enum value set: [Approved, Rejected, PendingManualApproval]"
                    )
                package.set_model_approval_status(approval_status)
            if approval_description is not None:
                package.approval_description = approval_description
            merged = dict(package.customer_metadata_properties or {})
            merged.update(metadata or {})
            for key in remove:
                merged.pop(key, None)
            package.customer_metadata_properties = merged
            package.modifications_done()
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


def _encode_token(offset: int) -> str:
    return json.dumps({"offset": offset})


def _decode_token(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = int(json.loads(token)["offset"])
    except (ValueError, KeyError, TypeError):
        offset = -1
    if offset < 0:
        raise ValidationError(message="Invalid pagination token: NextToken is not valid.")
    return offset

"""The emulator's SageMaker front end: moto's request handling, with the emulator's operations
routed to its backend and every request counted and open to an injected fault."""

from __future__ import annotations

import json
import warnings
from email.utils import formatdate
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult, EmptyResult
from moto.sagemaker.exceptions import ResourceNotFound, ValidationError
from moto.sagemaker.responses import SageMakerResponse

from airflow_autopilot.core.fields.automl import CREATE_AUTOML_JOB, CREATE_AUTOML_JOB_V2
from airflow_autopilot.emulator import controls, deployment, serving, settings, transform, wire_validation
from airflow_autopilot.emulator.models import AutopilotBackend

# Operations whose answers may depend on a job's side effects (the deployed endpoint), which
# happen only when a job is refreshed.
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

#: Requests refused with SageMaker's ValidationException when they break a rule of their table
#: (the rules the operators check before sending them).
_TABLES = {**deployment.REQUEST_TABLES, **transform.REQUEST_TABLES}


def table_problem(operation: str, body: str | bytes | None) -> str | None:
    """The ValidationException message for a request that breaks a rule of its table, else ``None``.

    :param operation: the operation name (``CreateModel``).
    :param body: the raw JSON request body (already known to parse: see :mod:`wire_validation`).
    """
    spec = _TABLES.get(operation)
    if spec is None:
        return None
    params = json.loads(body or "{}")
    return spec.server_message(params) if isinstance(params, dict) else None


#: The request members of ListAutoMLJobs.
LIST_JOBS_PARAMETERS = (
    "CreationTimeAfter",
    "CreationTimeBefore",
    "LastModifiedTimeAfter",
    "LastModifiedTimeBefore",
    "NameContains",
    "StatusEquals",
    "SortOrder",
    "SortBy",
    "MaxResults",
    "NextToken",
)


class ThrottlingException(ServiceException):
    """HTTP 400 ``ThrottlingException``: botocore retries it as throttling."""

    code = "ThrottlingException"


class InternalFailure(ServiceException):
    """HTTP 500 ``InternalFailure``: botocore retries it as a transient server error."""

    code = "InternalFailure"


class AccessDeniedException(ServiceException):
    """HTTP 400 ``AccessDeniedException``: the role lacks the operation's IAM permission."""

    code = "AccessDeniedException"


class ExpiredTokenException(ServiceException):
    """HTTP 400 ``ExpiredTokenException``: the request was signed with expired temporary credentials."""

    code = "ExpiredTokenException"


class AutopilotResponse(SageMakerResponse):
    """moto's SageMaker responses plus CreateAutoMLJob, DescribeAutoMLJob,
    ListCandidatesForAutoMLJob, a V1-aware StopAutoMLJob and DescribeAutoMLJobV2, UpdateEndpoint (with
    an Updating state) and a CreateModelPackage that honours ClientToken.

    Every request is counted per operation and may be answered by an injected fault.
    """

    @property
    def autopilot_backend(self) -> AutopilotBackend:
        """The emulator backend of the request's account and region."""
        return AutopilotBackend(self.sagemaker_backend)

    def _determine_resource(self) -> str:
        """The ARN of the resource the request acts on, which moto's access control (when IAM is
        enforced, :mod:`airflow_autopilot.emulator.iam`) matches against the caller's statements.

        moto itself checks every SageMaker request against ``*``; the ARN makes a policy scoped to
        job, group or endpoint names mean what it means in AWS.
        """
        from airflow_autopilot.core.permissions import operation_arn

        try:
            params = json.loads(self.body or "{}")
        except ValueError:
            return "*"
        if not isinstance(params, dict):
            return "*"
        return operation_arn(self._get_action() or "", params, self.region, self.current_account)

    def _authenticate_and_authorize_normal_action(self, resource: str = "*") -> None:
        """moto's check of the SageMaker action, then, when IAM is enforced, SageMaker's own check
        that the caller may pass the request's role to SageMaker (:func:`~airflow_autopilot.emulator.iam.pass_role_denial`)
        and use the KMS keys it names (:func:`~airflow_autopilot.emulator.iam.kms_denial`)."""
        super()._authenticate_and_authorize_normal_action(resource)
        from moto.core.exceptions import AccessDeniedError

        from airflow_autopilot.emulator import iam

        try:
            params = json.loads(self.body or "{}")
        except ValueError:
            return
        denial = iam.pass_role_denial(
            self._get_action() or "",
            params if isinstance(params, dict) else {},
            self.headers,
            self.current_account,
        )
        if denial is None:
            # SageMaker's use of the KMS keys the request names, on the caller's behalf.
            try:
                denial = iam.kms_denial(
                    params if isinstance(params, dict) else {},
                    self.headers,
                    self.current_account,
                    self.region,
                )
            except iam.KmsKeyMissingError as missing:
                from moto.core.exceptions import JsonRESTError

                # Raised where moto's access check runs: an HTTP error it answers as it is.
                raise JsonRESTError("ValidationException", str(missing)) from missing
        if denial is not None:
            found = iam.caller_arn(self.headers, self.current_account)
            raise AccessDeniedError(user_arn=found, action=denial)

    def call_action(self) -> Any:
        """Count the request, serve an injected fault if one is due, else run the operation.

        Every answer carries a ``Date`` header on the emulator clock, taken before the operation
        runs (so a job state in the answer is never older than its Date), as clients that window
        ListAutoMLJobs by the server's time rely on.
        """
        date = formatdate(settings.now(), usegmt=True)
        action = self._get_action() or ""
        controls.count_request(action, str(self.headers.get("User-Agent", "")))
        problem = wire_validation.request_problem(action, self.body) or table_problem(action, self.body)
        if problem is not None:
            _, headers, body = self.serialized(ActionResult(ValidationError(message=problem)))
            headers["date"] = date
            return 400, headers, body
        job_name = self._get_param("AutoMLJobName")
        fault = controls.take_fault(action, job_name if isinstance(job_name, str) else None)
        if fault is not None:
            status, headers, body = self._fault_response(fault, job_name)
        else:
            if action in _REFRESH_ALL_OPERATIONS:
                self.autopilot_backend.refresh_jobs()
                self.autopilot_backend.refresh_endpoints()
            status, headers, body = super().call_action()
        headers["date"] = date
        return status, headers, body

    def _fault_response(self, fault: str, job_name: Any) -> Any:
        error: ServiceException
        status = 400
        if fault == controls.FAULT_THROTTLE:
            error = ThrottlingException("Rate exceeded (injected by the autopilot emulator).")
        elif fault == controls.FAULT_SERVER_ERROR:
            error = InternalFailure("We encountered an internal error. Please try again. (injected)")
            status = 500
        elif fault == controls.FAULT_ACCESS_DENIED:
            error = AccessDeniedException(
                f"User: arn:aws:sts::123456789012:assumed-role/emulator is not authorized to perform: "
                f"sagemaker:{self._get_action()} (denied by the autopilot emulator)"
            )
        elif fault == controls.FAULT_EXPIRED_TOKEN:
            error = ExpiredTokenException("The security token included in the request is expired (injected)")
        else:
            error = ResourceNotFound(f"Could not find AutoML job with name {job_name}.")
        with warnings.catch_warnings():
            # These codes are not in SageMaker's model; moto warns but serializes them correctly.
            warnings.simplefilter("ignore", UserWarning)
            _, headers, body = self.serialized(ActionResult(error))
        headers["status"] = status
        return status, headers, body

    def create_model(self) -> ActionResult:
        """moto's CreateModel, keeping ``EnableNetworkIsolation`` (moto drops it) so a test reads
        back exactly the security settings SageMaker received."""
        result = super().create_model()
        isolation = self._get_param("EnableNetworkIsolation")
        if isolation is not None:
            self.sagemaker_backend.describe_model(
                self._get_param("ModelName")
            ).enable_network_isolation = bool(isolation)
        return result

    def create_auto_ml_job(self) -> ActionResult:
        """CreateAutoMLJob."""
        params = {key: self._get_param(key) for key in sorted(CREATE_AUTOML_JOB.known_keys)}
        given = {key: value for key, value in params.items() if value is not None}
        return ActionResult({"AutoMLJobArn": self.autopilot_backend.create_auto_ml_job(given)})

    def create_auto_ml_job_v2(self) -> ActionResult:
        """CreateAutoMLJobV2, every problem type (moto's own V2 code is never reached)."""
        params = {key: self._get_param(key) for key in sorted(CREATE_AUTOML_JOB_V2.known_keys)}
        given = {key: value for key, value in params.items() if value is not None}
        return ActionResult({"AutoMLJobArn": self.autopilot_backend.create_auto_ml_job_v2(given)})

    def list_auto_ml_jobs(self) -> ActionResult:
        """ListAutoMLJobs with SageMaker's validation, default order (Name, Descending) and tokens."""
        jobs, next_token = self.autopilot_backend.list_auto_ml_jobs(
            {key: self._get_param(key) for key in LIST_JOBS_PARAMETERS}
        )
        return ActionResult({"AutoMLJobSummaries": jobs, "NextToken": next_token})

    def describe_auto_ml_job(self) -> ActionResult:
        """DescribeAutoMLJob."""
        name = self._get_param("AutoMLJobName")
        return ActionResult(self.autopilot_backend.describe_auto_ml_job(name))

    def describe_auto_ml_job_v2(self) -> ActionResult:
        """DescribeAutoMLJobV2, for V1 and V2 jobs."""
        name = self._get_param("AutoMLJobName")
        return ActionResult(self.autopilot_backend.describe_auto_ml_job_v2(name))

    def stop_auto_ml_job(self) -> ActionResult:
        """StopAutoMLJob, for V1 and V2 jobs."""
        self.autopilot_backend.stop_auto_ml_job(self._get_param("AutoMLJobName"))
        return EmptyResult()

    def list_candidates_for_auto_ml_job(self) -> ActionResult:
        """ListCandidatesForAutoMLJob."""
        candidates, next_token = self.autopilot_backend.list_candidates_for_auto_ml_job(
            self._get_param("AutoMLJobName"),
            status_equals=self._get_param("StatusEquals"),
            candidate_name_equals=self._get_param("CandidateNameEquals"),
            sort_by=self._get_param("SortBy"),
            sort_order=self._get_param("SortOrder"),
            max_results=self._get_param("MaxResults"),
            next_token=self._get_param("NextToken"),
        )
        return ActionResult({"Candidates": candidates, "NextToken": next_token})

    def describe_endpoint(self) -> ActionResult:
        """DescribeEndpoint, with the DataCaptureConfig summary of the config the endpoint serves."""
        name = self._get_param("EndpointName")
        answer = dict(self.sagemaker_backend.describe_endpoint(name))
        answer.pop("DataCaptureConfig", None)
        summary = serving.capture_summary(self.sagemaker_backend, self.sagemaker_backend.endpoints[name])
        if summary is not None:
            answer["DataCaptureConfig"] = summary
        return ActionResult(answer)

    def update_endpoint(self) -> ActionResult:
        """UpdateEndpoint, with DeploymentConfig's guardrails."""
        arn = self.autopilot_backend.update_endpoint(
            self._get_param("EndpointName"),
            self._get_param("EndpointConfigName"),
            deployment_config=self._get_param("DeploymentConfig"),
            retain_deployment_config=bool(self._get_param("RetainDeploymentConfig")),
        )
        return ActionResult({"EndpointArn": arn})

    def create_model_package(self) -> ActionResult:
        """CreateModelPackage, idempotent per ClientToken."""
        create = super().create_model_package

        def create_arn() -> str:
            result: Any = create().result
            return str(result["ModelPackageArn"])

        arn = self.autopilot_backend.create_model_package(create_arn, self._get_param("ClientToken"))
        return ActionResult({"ModelPackageArn": arn})

    def create_transform_job(self) -> ActionResult:
        """CreateTransformJob: an emulated job that scores its input when its stage ends."""
        # The members its table describes (the ones the emulated job reads or describes).
        keys = sorted(transform.TRANSFORM_JOB.known_keys)
        params = {key: self._get_param(key) for key in keys if self._get_param(key) is not None}
        return ActionResult(
            {"TransformJobArn": transform.create_transform_job(self.sagemaker_backend, params)}
        )

    def describe_transform_job(self) -> ActionResult:
        """DescribeTransformJob of an emulated transform job (moto's own for the candidate step jobs)."""
        name = self._get_param("TransformJobName")
        if transform.is_step_job(self.sagemaker_backend, name):
            return super().describe_transform_job()
        return ActionResult(transform.transform_job(self.sagemaker_backend, name).describe())

    def stop_transform_job(self) -> ActionResult:
        """StopTransformJob."""
        transform.transform_job(self.sagemaker_backend, self._get_param("TransformJobName")).stop()
        return EmptyResult()

    def update_model_package(self) -> ActionResult:
        """UpdateModelPackage; CustomerMetadataProperties are merged as on AWS (moto replaces them)."""
        arn = self._get_param("ModelPackageArn")
        status = self._get_param("ModelApprovalStatus")
        arn = self.autopilot_backend.update_model_package(
            arn,
            approval_status=status,
            approval_description=self._get_param("ApprovalDescription"),
            metadata=self._get_param("CustomerMetadataProperties"),
            remove=self._get_param("CustomerMetadataPropertiesToRemove") or [],
        )
        return ActionResult({"ModelPackageArn": arn})

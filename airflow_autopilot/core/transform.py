"""Batch transform and model approval without AWS: the CreateTransformJob request (built from its
table, :mod:`airflow_autopilot.core.fields.transform`) and the two waits (a transform job until it
ends, a model package version until it is decided).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_autopilot.core.fields.model_package import MODEL_PACKAGE
from airflow_autopilot.core.fields.transform import TRANSFORM_JOB
from airflow_autopilot.core.naming import RESERVED_TAG_PREFIX
from airflow_autopilot.core.promotion import refuse
from airflow_autopilot.core.waiting import Verdict, WaitMachine
from airflow_autopilot.core.xcom import to_json_safe
from airflow_autopilot.exceptions import AutopilotError

#: Tag on a transform job naming the candidate that scores (read back when the task resumes).
CANDIDATE_TAG_KEY = RESERVED_TAG_PREFIX + "candidate"

#: TransformJobStatus values that end a wait.
TRANSFORM_DONE = "Completed"
TRANSFORM_FAILED = frozenset({"Failed", "Stopped", "Stopping"})


def transform_request(
    params: Mapping[str, Any], *, job_name: str, model_name: str, own_tags: Sequence[dict[str, Any]] = ()
) -> tuple[dict[str, Any], list[str]]:
    """
    The CreateTransformJob request from the operator's parameters
    (:data:`~airflow_autopilot.core.fields.transform.TRANSFORM_JOB`), with the names the operator
    derives.

    :param params: the operator's CreateTransformJob parameters.
    :param job_name: the TransformJobName (``""`` while not known yet).
    :param model_name: the model that scores (``""`` while not known yet).
    :param own_tags: the operator's tags (try chain owner, candidate), after the user's.
    :return: the request and the problems found while building it.
    """
    request, errors = TRANSFORM_JOB.build({**params, "own_tags": list(own_tags)})
    if job_name:
        request["TransformJobName"] = job_name
    if model_name:
        request["ModelName"] = model_name
    return request, errors


def transform_result(description: Mapping[str, Any], candidate_name: str) -> dict[str, Any]:
    """The operator's XCom value: where the output is, which model made it, and the whole description."""
    return dict(
        to_json_safe(
            {
                "TransformJobName": description.get("TransformJobName"),
                "TransformJobArn": description.get("TransformJobArn"),
                "TransformJobStatus": description.get("TransformJobStatus"),
                "ModelName": description.get("ModelName"),
                "CandidateName": candidate_name,
                "InputS3Uri": description.get("TransformInput", {})
                .get("DataSource", {})
                .get("S3DataSource", {})
                .get("S3Uri"),
                "OutputS3Uri": description.get("TransformOutput", {}).get("S3OutputPath"),
                "TransformJob": {k: v for k, v in description.items() if k != "ResponseMetadata"},
            }
        )
    )


class TransformJobWait(WaitMachine[dict[str, Any]]):
    """
    The wait until a transform job ends: Completed is success; Failed, Stopping or Stopped is a
    failure carrying SageMaker's FailureReason.

    :param job_name: the TransformJobName.
    :param kwargs: :class:`~airflow_autopilot.core.waiting.WaitMachine` arguments.
    """

    timeout_error = AutopilotError

    def __init__(self, job_name: str, **kwargs: Any) -> None:
        super().__init__(f"transform job {job_name!r}", **kwargs)
        self.name = job_name
        self._seen: str | None = None

    def verdict(self, subject: dict[str, Any]) -> Verdict:
        status = subject.get("TransformJobStatus")
        if status == TRANSFORM_DONE:
            return "success"
        return "failure" if status in TRANSFORM_FAILED else "waiting"

    def state(self, subject: dict[str, Any]) -> str:
        return str(subject.get("TransformJobStatus"))

    def failure_message(self, subject: dict[str, Any]) -> str:
        reason = subject.get("FailureReason") or "SageMaker gave no FailureReason"
        return f"Transform job {self.name!r} is {subject.get('TransformJobStatus')}: {reason}"

    def missing(self) -> AutopilotError:
        """The error when DescribeTransformJob finds no such job (ends the wait)."""
        return AutopilotError(f"Transform job {self.name!r} does not exist")

    def observe(self, subject: dict[str, Any]) -> None:
        if self.state(subject) != self._seen:
            self._seen = self.state(subject)
            self.log.info("Transform job %s is %s", self.name, self._seen)


class ApprovalWait(WaitMachine[dict[str, Any]]):
    """
    The wait until a model package version's ``ModelApprovalStatus`` is decided: Approved is
    success, Rejected a failure; PendingManualApproval keeps waiting.

    :param model_package_arn: the version.
    :param kwargs: :class:`~airflow_autopilot.core.waiting.WaitMachine` arguments.
    """

    timeout_error = AutopilotError

    def __init__(self, model_package_arn: str, **kwargs: Any) -> None:
        super().__init__(f"model package {model_package_arn!r}", **kwargs)
        self.name = model_package_arn
        self._seen: str | None = None

    def verdict(self, subject: dict[str, Any]) -> Verdict:
        status = subject.get("ModelApprovalStatus")
        if status == "Approved":
            return "success"
        return "failure" if status == "Rejected" else "waiting"

    def state(self, subject: dict[str, Any]) -> str:
        return str(subject.get("ModelApprovalStatus") or "PendingManualApproval")

    def failure_message(self, subject: dict[str, Any]) -> str:
        why = subject.get("ApprovalDescription") or "no ApprovalDescription"
        return f"Model package {self.name!r} was Rejected: {why}"

    def missing(self) -> AutopilotError:
        """The error when DescribeModelPackage finds no such version (ends the wait)."""
        return AutopilotError(f"Model package {self.name!r} does not exist")

    def observe(self, subject: dict[str, Any]) -> None:
        if self.state(subject) != self._seen:
            self._seen = self.state(subject)
            self.log.info("Model package %s is %s", self.name, self._seen)


def resource_wait(kind: str, name: str, **kwargs: Any) -> TransformJobWait | ApprovalWait:
    """
    The wait machine of a resource kind.

    :param kind: ``transform-job`` or ``model-package``.
    :param name: the TransformJobName or the ModelPackageArn.
    :param kwargs: :class:`~airflow_autopilot.core.waiting.WaitMachine` arguments.
    """
    if kind == "transform-job":
        return TransformJobWait(name, **kwargs)
    if kind == "model-package":
        return ApprovalWait(name, **kwargs)
    raise ValueError(f"kind: {kind!r} must be transform-job or model-package")


def approval_status(value: Any, field: str = "approval_status") -> str:
    """Check a ModelApprovalStatus value."""
    refuse(MODEL_PACKAGE.by_path["ModelApprovalStatus"].errors(value, field))
    return str(value)


def wait_event(kind: str, name: str, status: str, message: str, subject: Any) -> dict[str, Any]:
    """The trigger event of a resource wait (JSON-safe)."""
    return {
        "status": status,
        "kind": kind,
        "name": name,
        "message": message,
        "description": to_json_safe(dict(subject)) if isinstance(subject, Mapping) else None,
    }

"""Batch transform without AWS: the CreateTransformJob request (built from its table,
:mod:`airflow_autopilot.core.fields.transform`) and the operator's result (the waits are in
:mod:`airflow_autopilot.core.waits`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_autopilot.core.fields.model_package import MODEL_PACKAGE
from airflow_autopilot.core.fields.spec import RequestSpec
from airflow_autopilot.core.fields.transform import TRANSFORM_JOB
from airflow_autopilot.core.naming import RESERVED_TAG_PREFIX
from airflow_autopilot.core.promotion import refuse
from airflow_autopilot.core.xcom import to_json_safe

#: Tag on a transform job naming the candidate that scores (read back when the task resumes).
CANDIDATE_TAG_KEY = RESERVED_TAG_PREFIX + "candidate"


def transform_request(
    params: Mapping[str, Any],
    *,
    job_name: str,
    model_name: str,
    own_tags: Sequence[dict[str, Any]] = (),
    spec: RequestSpec | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """
    The CreateTransformJob request from the operator's parameters
    (:data:`~airflow_autopilot.core.fields.transform.TRANSFORM_JOB`), with the names the operator
    derives.

    :param params: the operator's CreateTransformJob parameters.
    :param job_name: the TransformJobName (``""`` while not known yet).
    :param model_name: the model that scores (``""`` while not known yet).
    :param own_tags: the operator's tags (try chain owner, candidate), after the user's.
    :param spec: the operator's CreateTransformJob table (default :data:`TRANSFORM_JOB`).
    :return: the request and the problems found while building it.
    """
    request, errors = (spec or TRANSFORM_JOB).build({**params, "own_tags": list(own_tags)})
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


def approval_status(value: Any, field: str = "approval_status") -> str:
    """Check a ModelApprovalStatus value."""
    refuse(MODEL_PACKAGE.by_path["ModelApprovalStatus"].errors(value, field))
    return str(value)

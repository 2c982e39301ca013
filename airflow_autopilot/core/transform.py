"""Batch transform and model approval without AWS: the CreateTransformJob request and its
validation (the waits are in :mod:`airflow_autopilot.core.waits`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_autopilot.core.naming import RESERVED_TAG_PREFIX
from airflow_autopilot.core.promotion import APPROVAL_STATUSES, PromotionInputError, parse_number
from airflow_autopilot.core.validation import INSTANCE_TYPE_PATTERN, S3_URI_MAX_LENGTH, S3_URI_PATTERN
from airflow_autopilot.core.xcom import to_json_safe

#: Tag on a transform job naming the candidate that scores (read back when the task resumes).
CANDIDATE_TAG_KEY = RESERVED_TAG_PREFIX + "candidate"

#: CreateTransformJob choices.
SPLIT_TYPES = ("None", "Line", "RecordIO", "TFRecord")
ASSEMBLE_WITH = ("None", "Line")
JOIN_SOURCES = ("None", "Input")
BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")
COMPRESSION_TYPES = ("None", "Gzip")
#: Output formats (``Accept``) Autopilot's inference containers produce.
ACCEPT_TYPES = ("text/csv", "application/jsonlines")


def _choice(value: Any, allowed: tuple[str, ...], field: str) -> str:
    if value not in allowed:
        raise PromotionInputError(f"{field}: {value!r} must be one of {', '.join(allowed)}")
    return str(value)


def s3_uri(value: Any, field: str) -> str:
    """Check an S3 URI (SageMaker's pattern, at most 1024 characters); return it."""
    if not isinstance(value, str) or not value or value.strip().lower() in ("none", "null"):
        raise PromotionInputError(f"{field}: required, an S3 URI such as s3://bucket/prefix/")
    if len(value) > S3_URI_MAX_LENGTH or not S3_URI_PATTERN.fullmatch(value) or value.startswith("http"):
        raise PromotionInputError(
            f"{field}: {value!r} must be an s3://bucket/prefix URI of at most 1024 characters"
        )
    return value


@dataclass(frozen=True)
class TransformSettings:
    """
    The validated options of a batch transform (see :func:`transform_settings`).

    :param input_uri: the S3 prefix scored.
    :param output_uri: ``TransformOutput.S3OutputPath``.
    """

    input_uri: str
    output_uri: str
    instance_type: str
    instance_count: int
    content_type: str
    accept: str
    split_type: str
    assemble_with: str
    join_source: str
    batch_strategy: str
    compression_type: str
    max_payload_mb: int | None
    max_concurrent_transforms: int | None


def transform_settings(
    *,
    s3_input_uri: Any,
    s3_output_path: Any,
    instance_type: Any,
    instance_count: Any,
    content_type: Any,
    accept: Any,
    split_type: Any,
    assemble_with: Any,
    join_source: Any,
    batch_strategy: Any,
    compression_type: Any,
    max_payload_mb: Any,
    max_concurrent_transforms: Any,
) -> TransformSettings:
    """
    Validate the operator's transform options (before any AWS call).

    :raises PromotionInputError: naming the parameter and the rule.
    """
    if not isinstance(instance_type, str) or not INSTANCE_TYPE_PATTERN.fullmatch(instance_type):
        raise PromotionInputError(
            f"instance_type: {instance_type!r} must be a SageMaker instance type such as ml.m5.large "
            "(ml.<family>.<size>)"
        )
    count = parse_number(instance_count, "instance_count", allow_none=False)
    if count is None or count < 1 or count != int(count):
        raise PromotionInputError(f"instance_count: {instance_count!r} must be an integer >= 1")
    limits = {}
    for name, value, top in (
        ("max_payload_mb", max_payload_mb, 100),
        ("max_concurrent_transforms", max_concurrent_transforms, 10000),
    ):
        number = parse_number(value, name)
        if number is not None and (number != int(number) or not 0 <= number <= top):
            raise PromotionInputError(f"{name}: {value!r} must be an integer from 0 to {top}")
        limits[name] = int(number) if number is not None else None
    if not isinstance(content_type, str) or not content_type.strip():
        raise PromotionInputError(f"content_type: {content_type!r} must be a MIME type such as text/csv")
    return TransformSettings(
        input_uri=s3_uri(s3_input_uri, "s3_input_uri"),
        output_uri=s3_uri(s3_output_path, "s3_output_path"),
        instance_type=instance_type,
        instance_count=int(count),
        content_type=content_type,
        accept=_choice(accept, ACCEPT_TYPES, "accept"),
        split_type=_choice(split_type, SPLIT_TYPES, "split_type"),
        assemble_with=_choice(assemble_with, ASSEMBLE_WITH, "assemble_with"),
        join_source=_choice(join_source, JOIN_SOURCES, "join_source"),
        batch_strategy=_choice(batch_strategy, BATCH_STRATEGIES, "batch_strategy"),
        compression_type=_choice(compression_type, COMPRESSION_TYPES, "compression_type"),
        max_payload_mb=limits["max_payload_mb"],
        max_concurrent_transforms=limits["max_concurrent_transforms"],
    )


def transform_request(
    job_name: str, model_name: str, settings: TransformSettings, tags: list[dict[str, Any]]
) -> dict[str, Any]:
    """The CreateTransformJob request."""
    request: dict[str, Any] = {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "BatchStrategy": settings.batch_strategy,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": settings.input_uri}},
            "ContentType": settings.content_type,
            "SplitType": settings.split_type,
            "CompressionType": settings.compression_type,
        },
        "TransformOutput": {
            "S3OutputPath": settings.output_uri,
            "Accept": settings.accept,
            "AssembleWith": settings.assemble_with,
        },
        "TransformResources": {
            "InstanceType": settings.instance_type,
            "InstanceCount": settings.instance_count,
        },
        "Tags": tags,
    }
    if settings.join_source != "None":
        request["DataProcessing"] = {"JoinSource": settings.join_source}
    if settings.max_payload_mb is not None:
        request["MaxPayloadInMB"] = settings.max_payload_mb
    if settings.max_concurrent_transforms is not None:
        request["MaxConcurrentTransforms"] = settings.max_concurrent_transforms
    return request


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
    return _choice(value, APPROVAL_STATUSES, field)

"""Lineage facts without Airflow: the URIs of what the operators read and produce (S3 prefixes and
SageMaker resources), their OpenLineage namespace and name, and the metadata of their asset events.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Re-exported: the alias names and the scheme belong to the lineage facts.
from airflow_autopilot.core.lineage_names import (
    BATCH_TRANSFORM_OUTPUT_ALIAS as BATCH_TRANSFORM_OUTPUT_ALIAS,
)
from airflow_autopilot.core.lineage_names import ENDPOINT_ALIAS as ENDPOINT_ALIAS
from airflow_autopilot.core.lineage_names import JOB_OUTPUT_ALIAS as JOB_OUTPUT_ALIAS
from airflow_autopilot.core.lineage_names import MODEL_PACKAGE_GROUP_ALIAS as MODEL_PACKAGE_GROUP_ALIAS
from airflow_autopilot.core.lineage_names import SAGEMAKER_SCHEME
from airflow_autopilot.core.promotion import (
    META_CANDIDATE_NAME,
    META_JOB_NAME,
    META_OBJECTIVE_METRIC,
    META_OBJECTIVE_VALUE,
)

#: SageMaker resource types (as in their ARNs) that have asset URIs.
MODEL_PACKAGE_GROUP = "model-package-group"
MODEL_PACKAGE = "model-package"
ENDPOINT = "endpoint"

_ARN = re.compile(
    r"^arn:(?P<partition>[\w-]+):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<type>[a-z-]+)/(?P<name>.+)$"
)
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


class LineageError(ValueError):
    """A URI or ARN that names no dataset or resource this package knows; names the field."""


@dataclass(frozen=True)
class ResourceArn:
    """
    The parts of a SageMaker ARN ``arn:<partition>:sagemaker:<region>:<account>:<type>/<name>``.

    :param region: the AWS region.
    :param account_id: the 12-digit account.
    :param resource_type: ``model-package-group``, ``model-package``, ``endpoint`` ...
    :param name: what follows the type (``group/3`` for a model package version).
    """

    region: str
    account_id: str
    resource_type: str
    name: str

    @classmethod
    def parse(cls, arn: Any, field: str = "arn") -> ResourceArn:
        """
        Read a SageMaker ARN.

        :param arn: the ARN.
        :param field: the parameter or response field, for the message.
        :raises LineageError: when ``arn`` is not a SageMaker resource ARN.
        """
        match = _ARN.match(arn) if isinstance(arn, str) else None
        if match is None:
            raise LineageError(
                f"{field}: {arn!r} is not a SageMaker ARN (arn:<partition>:sagemaker:<region>:<account>:<type>/<name>)"
            )
        return cls(match["region"], match["account"], match["type"], match["name"])

    @property
    def uri(self) -> str:
        """The resource's asset URI."""
        return sagemaker_uri(self.resource_type, self.name, account_id=self.account_id, region=self.region)


def sagemaker_uri(resource_type: str, name: str, *, account_id: str, region: str) -> str:
    """
    The asset URI of a SageMaker resource: ``sagemaker://<account-id>.<region>/<type>/<name>``
    (the ARN's parts, with the account and region as the authority, as an S3 URI has its bucket).

    :param resource_type: the ARN's resource type (``model-package-group``, ``endpoint`` ...).
    :param name: the resource name as the operator was given it (SageMaker lower-cases some ARNs).
    :param account_id: the 12-digit AWS account.
    :param region: the AWS region, e.g. ``us-east-1``.
    :raises LineageError: naming the argument that is malformed.
    """
    if not isinstance(account_id, str) or not _ACCOUNT.match(account_id):
        raise LineageError(f"account_id: {account_id!r} must be a 12-digit AWS account id")
    if not isinstance(region, str) or not _REGION.match(region):
        raise LineageError(f"region: {region!r} must be an AWS region such as us-east-1")
    if not isinstance(name, str) or not name or name.startswith("/"):
        raise LineageError(f"name: {name!r} must be a SageMaker resource name")
    return f"{SAGEMAKER_SCHEME}://{account_id}.{region}/{resource_type}/{name}"


def model_package_group_uri(group_name: str, *, account_id: str, region: str) -> str:
    """
    The asset URI of a Model Package Group (what the register operator publishes).

    :param group_name: the group.
    :param account_id: the 12-digit AWS account.
    :param region: the AWS region.
    """
    return sagemaker_uri(MODEL_PACKAGE_GROUP, group_name, account_id=account_id, region=region)


def endpoint_uri(endpoint_name: str, *, account_id: str, region: str) -> str:
    """
    The asset URI of an endpoint (what the deploy operator publishes).

    :param endpoint_name: the endpoint.
    :param account_id: the 12-digit AWS account.
    :param region: the AWS region.
    """
    return sagemaker_uri(ENDPOINT, endpoint_name, account_id=account_id, region=region)


def split_s3_uri(uri: Any, field: str = "uri") -> tuple[str, str]:
    """
    ``(bucket, key)`` of an ``s3://bucket/key`` URI, the key without its trailing slashes.

    :param uri: the URI.
    :param field: the parameter, for the message.
    :raises LineageError: when ``uri`` is not an S3 URI with a bucket.
    """
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise LineageError(f"{field}: {uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket:
        raise LineageError(f"{field}: {uri!r} names no bucket")
    return bucket, key.rstrip("/")


def s3_uri(uri: str, field: str = "uri") -> str:
    """The asset URI of an S3 prefix or object: ``s3://bucket/key`` without trailing slashes."""
    bucket, key = split_s3_uri(uri, field)
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


def openlineage_identity(uri: str) -> tuple[str, str]:
    """
    OpenLineage ``(namespace, name)`` of an asset URI, by the OpenLineage provider's convention:
    ``s3://bucket`` and the key for S3 (``/`` for a whole bucket); ``sagemaker://<account>.<region>``
    and ``<type>/<name>`` for SageMaker resources.

    :param uri: an ``s3://`` or ``sagemaker://`` URI.
    :raises LineageError: for another scheme.
    """
    if uri.startswith("s3://"):
        bucket, key = split_s3_uri(uri)
        return f"s3://{bucket}", key or "/"
    prefix = f"{SAGEMAKER_SCHEME}://"
    if uri.startswith(prefix):
        authority, _, name = uri[len(prefix) :].partition("/")
        if authority and name:
            return f"{prefix}{authority}", name
    raise LineageError(f"uri: {uri!r} is neither an s3:// nor a {prefix} URI")


def job_output_prefix(model_data_url: Any, job_name: str) -> str | None:
    """
    The job's ``S3OutputPath`` read back from one of its candidates' artifacts: Autopilot writes
    them under ``<S3OutputPath>/<job name>/``. ``None`` when the URL is not under such a folder.

    :param model_data_url: an inference container's ``ModelDataUrl``.
    :param job_name: the AutoMLJobName.
    """
    if not isinstance(model_data_url, str) or not model_data_url.startswith("s3://"):
        return None
    head, found, _ = model_data_url.partition(f"/{job_name}/")
    if not found or head == "s3:/":
        return None
    return s3_uri(head)


def artifact_uris(containers: Iterable[Mapping[str, Any]]) -> list[str]:
    """The distinct ``ModelDataUrl`` of inference containers, in order."""
    uris: list[str] = []
    for container in containers:
        url = container.get("ModelDataUrl") if isinstance(container, Mapping) else None
        if isinstance(url, str) and url.startswith("s3://") and s3_uri(url) not in uris:
            uris.append(s3_uri(url))
    return uris


@dataclass(frozen=True)
class Channel:
    """
    A training or validation channel of a CreateAutoMLJob request.

    :param uri: its ``S3DataSource.S3Uri``.
    :param channel_type: ``training`` or ``validation``.
    :param s3_data_type: ``S3Prefix`` or ``ManifestFile``.
    :param content_type: the channel's ContentType (CSV unless it says parquet).
    :param target: the target attribute.
    :param compression: the channel's CompressionType.
    """

    uri: str
    channel_type: str = "training"
    s3_data_type: str = "S3Prefix"
    content_type: str | None = None
    target: str | None = None
    compression: str | None = None

    @property
    def is_csv_prefix(self) -> bool:
        """A prefix of uncompressed CSV files (the only case whose schema a header gives)."""
        return (
            self.s3_data_type == "S3Prefix"
            and "parquet" not in (self.content_type or "")
            and self.compression in (None, "None")
        )


def request_channels(request: Mapping[str, Any]) -> list[Channel]:
    """
    The S3 channels of a CreateAutoMLJob request (``InputDataConfig``), in order.

    :param request: the request as the create operator builds it.
    """
    channels: list[Channel] = []
    for entry in request.get("InputDataConfig") or []:
        if not isinstance(entry, Mapping):
            continue
        source = (entry.get("DataSource") or {}).get("S3DataSource") or {}
        uri = source.get("S3Uri")
        if not isinstance(uri, str) or not uri.startswith("s3://"):
            continue
        channels.append(
            Channel(
                uri=s3_uri(uri),
                channel_type=str(entry.get("ChannelType") or "training"),
                s3_data_type=str(source.get("S3DataType") or "S3Prefix"),
                content_type=entry.get("ContentType"),
                target=entry.get("TargetAttributeName"),
                compression=entry.get("CompressionType"),
            )
        )
    return channels


def csv_header(first_bytes: bytes) -> list[str] | None:
    """
    The column names of a CSV file from its first bytes: the first line, when it reads as a header
    (no empty names and not all numbers; Autopilot requires CSV training data to have one); ``None``
    otherwise.

    :param first_bytes: the start of the file (at least its first line).
    """
    import csv
    import io

    text = first_bytes.decode("utf-8", errors="replace").lstrip("\ufeff")
    line = text.splitlines()[0] if text.strip() else ""
    if not line:
        return None
    names = [name.strip() for name in next(csv.reader(io.StringIO(line)))]
    if not names or any(not name for name in names):
        return None
    if all(re.fullmatch(r"[-+]?\d*\.?\d+([eE][-+]?\d+)?", name) for name in names):
        return None
    return names


@dataclass(frozen=True)
class LineageDataset:
    """
    One input or output of a task: its asset URI and, when known, its columns.

    :param uri: ``s3://`` or ``sagemaker://`` URI.
    :param fields: column names (from a CSV header).
    """

    uri: str
    fields: tuple[str, ...] | None = None

    @property
    def namespace(self) -> str:
        return openlineage_identity(self.uri)[0]

    @property
    def name(self) -> str:
        return openlineage_identity(self.uri)[1]


@dataclass
class TaskLineage:
    """
    What a task read and produced, and the metadata of its asset event.

    :param inputs: what it read.
    :param outputs: what it produced.
    :param asset_uri: the asset its event is about (``None``: no event).
    :param extra: the event's metadata (JSON-safe).
    """

    inputs: list[LineageDataset] = field(default_factory=list)
    outputs: list[LineageDataset] = field(default_factory=list)
    asset_uri: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def without_none(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without its ``None`` entries (asset extras carry only what is known)."""
    return {key: value for key, value in values.items() if value is not None}


def candidate_inputs(containers: Iterable[Mapping[str, Any]], job_name: str | None) -> list[LineageDataset]:
    """
    What promoting a candidate reads: its job's ``S3OutputPath`` (the create operator's output,
    which links the two in a lineage graph), then each container's model artifact.

    :param containers: the candidate's InferenceContainers.
    :param job_name: its AutoMLJobName, when known.
    """
    artifacts = artifact_uris(containers)
    inputs: list[LineageDataset] = []
    if job_name:
        prefixes = {job_output_prefix(uri, job_name) for uri in artifacts} - {None}
        inputs += [LineageDataset(prefix) for prefix in sorted(p for p in prefixes if p)]
    return inputs + [LineageDataset(uri) for uri in artifacts]


def score_extra(candidate_name: str, metric_name: str, value: float) -> dict[str, Any]:
    """The candidate and its objective, as asset-event metadata."""
    return {"candidate_name": candidate_name, "objective_metric": metric_name, "objective_value": value}


def registration_lineage(
    *,
    job_name: str,
    group_name: str,
    containers: Iterable[Mapping[str, Any]],
    score: Mapping[str, Any],
    package_arn: str,
    version: Any,
    approval_status: str | None,
) -> TaskLineage:
    """
    A registered version's lineage: the candidate's job output and artifacts in, the model package
    version out; the asset event is about its group, with the version in the extra.

    :param job_name: the AutoMLJobName.
    :param group_name: the Model Package Group.
    :param containers: the registered InferenceContainers.
    :param score: :func:`score_extra` of the candidate.
    :param package_arn: the version's ModelPackageArn.
    :param version: its ModelPackageVersion.
    :param approval_status: its ModelApprovalStatus.
    """
    arn = ResourceArn.parse(package_arn, "ModelPackageArn")
    group_uri = model_package_group_uri(group_name, account_id=arn.account_id, region=arn.region)
    return TaskLineage(
        inputs=candidate_inputs(containers, job_name),
        outputs=[LineageDataset(arn.uri)],
        # The group's asset means "a new approved model": a version that waits for a person gets its
        # event from the approval sensor once approved (approval_lineage).
        asset_uri=group_uri if approval_status == "Approved" else None,
        extra=without_none(
            {
                "job_name": job_name,
                **score,
                "model_package_group": group_name,
                "model_package_arn": package_arn,
                "model_package_version": version,
                "approval_status": approval_status,
            }
        ),
    )


def approval_lineage(package: Mapping[str, Any]) -> TaskLineage:
    """
    An approved version's lineage, from its DescribeModelPackage: the version in, and the asset event
    about its group with the same extra as :func:`registration_lineage` (read back from the
    version's CustomerMetadataProperties).

    :param package: DescribeModelPackage of the version.
    """
    package_arn = package.get("ModelPackageArn")
    arn = ResourceArn.parse(package_arn, "ModelPackageArn")
    group_name = package.get("ModelPackageGroupName") or arn.name.split("/", 1)[0]
    meta = package.get("CustomerMetadataProperties") or {}
    value = meta.get(META_OBJECTIVE_VALUE)
    try:
        value = float(value) if value is not None else None
    except (TypeError, ValueError):
        value = None
    status = package.get("ModelApprovalStatus")
    return TaskLineage(
        inputs=[LineageDataset(arn.uri)],
        asset_uri=(
            model_package_group_uri(group_name, account_id=arn.account_id, region=arn.region)
            if status == "Approved"
            else None
        ),
        extra=without_none(
            {
                "job_name": meta.get(META_JOB_NAME),
                "candidate_name": meta.get(META_CANDIDATE_NAME),
                "objective_metric": meta.get(META_OBJECTIVE_METRIC),
                "objective_value": value,
                "model_package_group": group_name,
                "model_package_arn": package_arn,
                "model_package_version": package.get("ModelPackageVersion"),
                "approval_status": status,
            }
        ),
    )


def deployment_lineage(
    *,
    endpoint_name: str,
    endpoint_arn: str,
    config_name: str,
    model_name: str,
    containers: Iterable[Mapping[str, Any]],
    score: Mapping[str, Any],
    model_package_arn: str | None = None,
) -> TaskLineage:
    """
    A deployment's lineage: the model package version (when given) and the candidate's artifacts
    in, the endpoint out; the asset event is about the endpoint.

    :param endpoint_name: the endpoint.
    :param endpoint_arn: its EndpointArn (gives the account and region).
    :param config_name: the EndpointConfigName it serves.
    :param model_name: the SageMaker model behind it.
    :param containers: the model's containers.
    :param score: :func:`score_extra` of the candidate.
    :param model_package_arn: the version the candidate was registered as.
    """
    arn = ResourceArn.parse(endpoint_arn, "EndpointArn")
    uri = endpoint_uri(endpoint_name, account_id=arn.account_id, region=arn.region)
    inputs = (
        [LineageDataset(ResourceArn.parse(model_package_arn, "model_package_arn").uri)]
        if model_package_arn
        else []
    )
    inputs += [LineageDataset(artifact) for artifact in artifact_uris(containers)]
    return TaskLineage(
        inputs=inputs,
        outputs=[LineageDataset(uri)],
        asset_uri=uri,
        extra=without_none(
            {
                "endpoint_name": endpoint_name,
                "endpoint_arn": endpoint_arn,
                "endpoint_config_name": config_name,
                "model_name": model_name,
                **score,
                "model_package_arn": model_package_arn,
            }
        ),
    )


def transform_lineage(
    result: Mapping[str, Any], *, job_name: str | None = None, completed: bool = True
) -> TaskLineage:
    """
    A batch transform's lineage: the scored S3 prefix in, the predictions' prefix out; the asset
    event (only once the job completed) is about the output prefix.

    :param result: the batch transform operator's XCom value (``InputS3Uri``, ``OutputS3Uri`` ...).
    :param job_name: the AutoMLJobName the candidate comes from, when given.
    :param completed: the job has ended successfully (else no asset event: the output is not there yet).
    """
    inputs = _s3_datasets(result.get("InputS3Uri"))
    outputs = _s3_datasets(result.get("OutputS3Uri"))
    return TaskLineage(
        inputs=inputs,
        outputs=outputs,
        asset_uri=outputs[0].uri if outputs and completed else None,
        extra=without_none(
            {
                "transform_job_name": result.get("TransformJobName"),
                "transform_job_arn": result.get("TransformJobArn"),
                "model_name": result.get("ModelName"),
                "candidate_name": result.get("CandidateName") or None,
                "job_name": job_name,
                "input_s3_uri": inputs[0].uri if inputs else None,
                "output_s3_path": outputs[0].uri if outputs else None,
            }
        ),
    )


def _s3_datasets(uri: Any) -> list[LineageDataset]:
    """``[LineageDataset(uri)]`` for an S3 URI with a bucket, else ``[]`` (lineage never fails a task)."""
    try:
        return [LineageDataset(s3_uri(uri))]
    except LineageError:
        return []

"""The CreateTransformJob request as a table: batch transform with an Autopilot candidate's model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.fields.common import KMS_KEY, RESOURCE_NAME, S3_URI, tag_fields
from airflow_autopilot.core.fields.model import (
    DEFAULT_INSTANCE_TYPE,
    INSTANCE_TYPE,
    MODEL_NAME,
    tag_assembly,
    whole_number,
)
from airflow_autopilot.core.fields.spec import Field, RequestSpec, empty_rendering_error

#: CreateTransformJob choices (SageMaker's default first).
SPLIT_TYPES = ("None", "Line", "RecordIO", "TFRecord")
ASSEMBLE_WITH = ("None", "Line")
JOIN_SOURCES = ("None", "Input")
BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")
COMPRESSION_TYPES = ("None", "Gzip")
S3_DATA_TYPES = ("S3Prefix", "ManifestFile", "AugmentedManifestFile", "Converse")
#: Output formats (``Accept``) Autopilot's inference containers produce.
ACCEPT_TYPES = ("text/csv", "application/jsonlines")


def _s3_only(value: Any, path: str) -> list[str]:
    # A rendered empty XCom ("None") would otherwise read as a bucket-less URI further on.
    empty = empty_rendering_error(value, path)
    if empty:
        return [empty.removeprefix(f"{path}: ")]
    if value.startswith("http"):
        return [f"{value!r} must be an s3://bucket/prefix URI: batch transform reads and writes S3 only"]
    return []


def _mime_type(value: Any, path: str) -> list[str]:
    return [] if value.strip() else [f"{value!r} must be a MIME type such as text/csv"]


def _join_source(value: Any) -> Any:
    # "None" is SageMaker's default: the request leaves DataProcessing out rather than send it.
    return None if value == "None" else value


def _transform_assembly(params: Mapping[str, Any], request: dict[str, Any], errors: list[str]) -> None:
    """The input's data type (an S3 prefix, always) and the tags."""
    source = request.get("TransformInput", {}).get("DataSource", {}).get("S3DataSource")
    if isinstance(source, dict):
        source["S3DataType"] = "S3Prefix"
    tag_assembly(params, request, errors)


TRANSFORM_JOB = RequestSpec(
    operation="CreateTransformJob",
    fields=(
        # Named per try chain by the operator (``<prefix>-<12 hex>``), valid by construction.
        RESOURCE_NAME.at("TransformJobName"),
        # The model the operator created (or reused) for the candidate.
        MODEL_NAME,
        Field("TransformInput", kind="structure", required=True),
        Field("TransformInput.DataSource", kind="structure", required=True),
        Field("TransformInput.DataSource.S3DataSource", kind="structure", required=True),
        Field(
            "TransformInput.DataSource.S3DataSource.S3DataType",
            kind="str",
            required=True,
            hint="S3Prefix",
            enum=S3_DATA_TYPES,
        ),
        S3_URI.at(
            "TransformInput.DataSource.S3DataSource.S3Uri",
            parameter="s3_input_uri",
            doc="the S3 prefix of headerless CSV (or JSON Lines) to score (templated).",
            required=True,
            check=_s3_only,
            stricter="batch transform reads S3 only: https:// URIs are refused",
        ),
        Field(
            "TransformInput.ContentType",
            "content_type",
            "str",
            "``TransformInput.ContentType`` (default ``text/csv``).",
            max_length=256,
            check=_mime_type,
            stricter="a blank content type tells the containers nothing",
        ),
        Field(
            "TransformInput.CompressionType",
            "compression_type",
            "str",
            "``None`` (default) or ``Gzip``.",
            enum=COMPRESSION_TYPES,
        ),
        Field(
            "TransformInput.SplitType",
            "split_type",
            "str",
            "``Line`` (default), ``None``, ``RecordIO`` or ``TFRecord``.",
            enum=SPLIT_TYPES,
        ),
        Field("TransformOutput", kind="structure", required=True),
        S3_URI.at(
            "TransformOutput.S3OutputPath",
            parameter="s3_output_path",
            doc="where SageMaker writes ``<input file>.out`` objects (templated).",
            required=True,
            check=_s3_only,
            stricter="batch transform writes S3 only: https:// URIs are refused",
        ),
        Field(
            "TransformOutput.Accept",
            "accept",
            "str",
            "``text/csv`` (default) or ``application/jsonlines``.",
            enum=ACCEPT_TYPES,
            stricter="Autopilot's inference containers answer only text/csv and application/jsonlines",
        ),
        Field(
            "TransformOutput.AssembleWith",
            "assemble_with",
            "str",
            "``Line`` (default) or ``None``.",
            enum=ASSEMBLE_WITH,
        ),
        KMS_KEY.at(
            "TransformOutput.KmsKeyId",
            parameter="output_kms_key_id",
            doc="KMS key SageMaker encrypts the output with.",
        ),
        Field("TransformResources", kind="structure", required=True),
        INSTANCE_TYPE.at(
            "TransformResources.InstanceType",
            parameter="instance_type",
            doc="transform instance type (default ``ml.m5.large``).",
        ),
        Field(
            "TransformResources.InstanceCount",
            "instance_count",
            "int",
            "instances (default 1).",
            required=True,
            hint="an integer >= 1",
            minimum=1,
            build=whole_number,
        ),
        KMS_KEY.at(
            "TransformResources.VolumeKmsKeyId",
            parameter="volume_kms_key_id",
            doc="KMS key of the transform instances' storage volumes.",
        ),
        Field(
            "MaxConcurrentTransforms",
            "max_concurrent_transforms",
            "int",
            "``MaxConcurrentTransforms`` (0 to 10000).",
            minimum=0,
            maximum=10000,
            build=whole_number,
            stricter="SageMaker documents no more than 10000 parallel requests per instance",
        ),
        Field(
            "MaxPayloadInMB",
            "max_payload_mb",
            "int",
            "``MaxPayloadInMB`` (0 to 100).",
            minimum=0,
            maximum=100,
            build=whole_number,
            stricter="SageMaker documents a payload of at most 100 MB",
        ),
        Field(
            "BatchStrategy",
            "batch_strategy",
            "str",
            "``MultiRecord`` (default) or ``SingleRecord``.",
            enum=BATCH_STRATEGIES,
        ),
        Field("Environment", kind="map", max_length=16, items="variables"),
        Field("Environment.*", kind="str", max_length=10240),
        Field("DataProcessing", kind="structure"),
        Field(
            "DataProcessing.JoinSource",
            "join_source",
            "str",
            "``None`` (default) or ``Input``: each output row is joined with its input row.",
            enum=JOIN_SOURCES,
            build=_join_source,
        ),
        *tag_fields(doc="tags of the model and the transform job (a dict, or a list of Key/Value)."),
    ),
    assemble=_transform_assembly,
    subject="CreateTransformJob request",
    assembled=frozenset({"tags"}),
    extras=None,
)

#: The operator's defaults for its CreateTransformJob parameters (others default to ``None``: left out).
TRANSFORM_DEFAULTS: Mapping[str, Any] = {
    "instance_type": DEFAULT_INSTANCE_TYPE,
    "instance_count": 1,
    "content_type": "text/csv",
    "accept": "text/csv",
    "split_type": "Line",
    "assemble_with": "Line",
    "join_source": "None",
    "batch_strategy": "MultiRecord",
    "compression_type": "None",
}

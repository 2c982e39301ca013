"""The CreateModelPackage request as a table: a candidate registered as a Model Registry version."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from airflow_autopilot.core.fields.common import RESOURCE_NAME, tag_fields
from airflow_autopilot.core.fields.model import container_fields, tag_assembly
from airflow_autopilot.core.fields.spec import Field, RequestSpec

#: ModelApprovalStatus values (SageMaker's default for a version in a group first).
APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")
INFERENCE = "InferenceSpecification"


def _string_list(value: Any) -> Any:
    # A single type is a list of one; a tuple (the defaults) a list.
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return value


def _metadata_keys(value: Any, path: str) -> list[str]:
    bad = sorted(str(key) for key in value if not isinstance(key, str) or not 1 <= len(key) <= 128)
    return [f"keys {bad} must be 1 to 128 characters"] if bad else []


def _metadata_assembly(params: Mapping[str, Any], request: dict[str, Any], errors: list[str]) -> None:
    """The user's metadata (as strings) under the package's own keys (``own_metadata`` wins), the
    containers (from the candidate, not a parameter of their own) and the tags."""
    given = params.get("customer_metadata")
    own = params.get("own_metadata") or {}
    if given is not None and not isinstance(given, Mapping):
        errors.append(f"customer_metadata: {given!r} must be a dict of strings")
        given = None
    if given or own:
        request["CustomerMetadataProperties"] = {**{str(k): str(v) for k, v in (given or {}).items()}, **own}
    if params.get("containers") is not None:
        request.setdefault(INFERENCE, {})["Containers"] = params["containers"]
    tag_assembly(params, request, errors)


MODEL_PACKAGE = RequestSpec(
    operation="CreateModelPackage",
    fields=(
        RESOURCE_NAME.at(
            "ModelPackageGroupName",
            parameter="model_package_group_name",
            doc="the Model Package Group (templated).",
            stricter="the operator registers versions (never unversioned packages) in a group it "
            "creates by this name when missing: a group ARN, which CreateModelPackage also takes, "
            "cannot name a group to create",
        ),
        Field(
            "ModelPackageDescription",
            "model_package_description",
            "str",
            "ModelPackageDescription (default: job and candidate).",
            max_length=1024,
        ),
        Field(INFERENCE, kind="structure"),
        *container_fields(f"{INFERENCE}.Containers", required=True),
        Field(
            f"{INFERENCE}.SupportedContentTypes",
            "supported_content_types",
            "list",
            "InferenceSpecification.SupportedContentTypes.",
            items="content types",
            build=_string_list,
            annotation="Sequence[str]",
        ),
        Field(f"{INFERENCE}.SupportedContentTypes[]", kind="str", max_length=256),
        Field(
            f"{INFERENCE}.SupportedResponseMIMETypes",
            "supported_response_mime_types",
            "list",
            "InferenceSpecification.SupportedResponseMIMETypes.",
            items="MIME types",
            build=_string_list,
            annotation="Sequence[str]",
        ),
        Field(
            f"{INFERENCE}.SupportedResponseMIMETypes[]",
            kind="str",
            max_length=1024,
            pattern=r"[-\w]+\/.+",
            pattern_hint="a MIME type such as text/csv",
        ),
        Field(
            "ModelApprovalStatus",
            "approval_status",
            "str",
            "``PendingManualApproval`` (default), ``Approved`` or ``Rejected``.",
            enum=APPROVAL_STATUSES,
        ),
        Field(
            "CustomerMetadataProperties",
            "customer_metadata",
            "map",
            "extra CustomerMetadataProperties (the ``autopilot:`` keys win).",
            min_length=1,
            max_length=50,
            items="keys",
            check=_metadata_keys,
            annotation="dict[str, str] | None",
        ),
        Field("CustomerMetadataProperties.*", kind="str", min_length=1, max_length=256),
        # Derived from the job, the candidate and the group by the hook (32 hex digits).
        Field("ClientToken", kind="str", min_length=1, max_length=36, pattern="[a-zA-Z0-9-]+"),
        *tag_fields(doc="tags of the new version (a dict, or a list of Key/Value)."),
    ),
    assemble=_metadata_assembly,
    subject="CreateModelPackage request",
    assembled=frozenset({"tags", "customer_metadata"}),
    extras=None,
)

#: The register operator's defaults for its CreateModelPackage parameters.
MODEL_PACKAGE_DEFAULTS: Mapping[str, Any] = {
    "approval_status": "PendingManualApproval",
    "supported_content_types": ("text/csv",),
    "supported_response_mime_types": ("text/csv",),
}

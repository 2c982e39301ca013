"""The CreateEndpointConfig, CreateEndpoint and UpdateEndpoint requests as tables: a candidate
served from a real-time endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.fields.common import kms_key_field, name_field, tag_fields
from airflow_autopilot.core.fields.model import (
    DEFAULT_INSTANCE_TYPE,
    RESOURCE_NAME_MAX,
    instance_type_field,
    model_name_field,
    tag_assembly,
    whole_number,
)
from airflow_autopilot.core.fields.spec import Field, RequestSpec, set_path

#: The one production variant a deployment creates takes all traffic.
VARIANT_NAME = "AllTraffic"
VARIANTS = "ProductionVariants"


def endpoint_name_field(parameter: str | None, doc: str = "") -> Field:
    """``EndpointName`` (1 to 63 letters, digits and hyphens).

    :param parameter: the operator parameter.
    :param doc: its description.
    """
    return name_field("EndpointName", parameter, RESOURCE_NAME_MAX, doc)


def _variant_assembly(params: Mapping[str, Any], request: dict[str, Any], errors: list[str]) -> None:
    """One variant taking all traffic: every table field under ``ProductionVariants[]`` that has a
    parameter goes into it (a list member has no path of its own to be set at), then the tags."""
    variant: dict[str, Any] = {"VariantName": VARIANT_NAME, "InitialVariantWeight": 1.0}
    for entry in ENDPOINT_CONFIG.fields:
        member = entry.path.removeprefix(f"{VARIANTS}[].")
        if entry.parameter is None or member == entry.path or params.get(entry.parameter) is None:
            continue
        value = entry.coerce(params[entry.parameter])
        value = entry.build(value) if entry.build is not None else value
        if value is not None:
            set_path(variant, member, value)
    request[VARIANTS] = [variant]
    tag_assembly(params, request, errors)


ENDPOINT_CONFIG = RequestSpec(
    operation="CreateEndpointConfig",
    fields=(
        # Derived from the endpoint, the model and the instances (``<endpoint>-<8 hex>``).
        name_field("EndpointConfigName", None, RESOURCE_NAME_MAX),
        Field(
            VARIANTS,
            kind="list",
            required=True,
            hint="a list of 1 to 10 production variants",
            min_length=1,
            max_length=10,
            items="variants",
        ),
        Field(f"{VARIANTS}[]", kind="structure"),
        name_field(f"{VARIANTS}[].VariantName", None, RESOURCE_NAME_MAX),
        # The model the operator created (or reused): ``model_name``, or derived from the candidate.
        model_name_field(f"{VARIANTS}[].ModelName", "model_name", required=False),
        instance_type_field(
            f"{VARIANTS}[].InstanceType",
            "instance_type",
            "endpoint instance type (default ``ml.m5.large``).",
            required=False,
        ),
        Field(
            f"{VARIANTS}[].InitialInstanceCount",
            "initial_instance_count",
            "int",
            "instances (default 1).",
            minimum=1,
            build=whole_number,
        ),
        Field(f"{VARIANTS}[].InitialVariantWeight", kind="float", minimum=0),
        kms_key_field("KmsKeyId", "kms_key_id", "KMS key of the endpoint instances' storage volumes."),
        *tag_fields(doc="tags of the model, config and new endpoint (a dict, or a list of Key/Value)."),
    ),
    assemble=_variant_assembly,
    subject="CreateEndpointConfig request",
    assembled=frozenset({"tags"}),
    extras=None,
)

#: The deploy operator's defaults for its CreateEndpointConfig parameters.
ENDPOINT_CONFIG_DEFAULTS: Mapping[str, Any] = {
    "instance_type": DEFAULT_INSTANCE_TYPE,
    "initial_instance_count": 1,
}


ENDPOINT = RequestSpec(
    operation="CreateEndpoint",
    fields=(
        endpoint_name_field("endpoint_name", "the endpoint (templated)."),
        name_field("EndpointConfigName", None, RESOURCE_NAME_MAX),
        *tag_fields(doc="tags of the model, config and new endpoint (a dict, or a list of Key/Value)."),
    ),
    assemble=tag_assembly,
    subject="CreateEndpoint request",
    assembled=frozenset({"tags"}),
    extras=None,
)

UPDATE_ENDPOINT = RequestSpec(
    operation="UpdateEndpoint",
    fields=(
        endpoint_name_field("endpoint_name", "the endpoint (templated)."),
        name_field("EndpointConfigName", None, RESOURCE_NAME_MAX),
        Field("RetainAllVariantProperties", kind="bool"),
        Field("RetainDeploymentConfig", kind="bool"),
    ),
    subject="UpdateEndpoint request",
    extras=None,
)


def endpoint_config_request(
    params: Mapping[str, Any], *, config_name: str, model_name: str
) -> tuple[dict[str, Any], list[str]]:
    """The CreateEndpointConfig request: one variant serving ``model_name``.

    :param params: the operator's parameters (``instance_type``, ``initial_instance_count``,
        ``tags``) and ``own_tags``.
    :param config_name: the endpoint config's (derived) name; ``""`` while not known yet.
    :param model_name: the model the variant serves.
    :return: the request and the problems found while building it.
    """
    request, errors = ENDPOINT_CONFIG.build(params)
    if config_name:
        request["EndpointConfigName"] = config_name
    for variant in request[VARIANTS]:
        variant["ModelName"] = model_name
    return request, errors


def endpoint_request(
    spec: RequestSpec, params: Mapping[str, Any], *, config_name: str
) -> tuple[dict[str, Any], list[str]]:
    """The CreateEndpoint or UpdateEndpoint request putting the endpoint on ``config_name``.

    :param spec: :data:`ENDPOINT` or :data:`UPDATE_ENDPOINT`.
    :param params: the operator's parameters (``endpoint_name``, ``tags``) and ``own_tags``.
    :param config_name: the endpoint config to serve; ``""`` while not known yet.
    :return: the request and the problems found while building it.
    """
    request, errors = spec.build(params)
    if config_name:
        request["EndpointConfigName"] = config_name
    return request, errors

"""The CreateEndpointConfig, CreateEndpoint and UpdateEndpoint requests as tables: a candidate
served from a real-time endpoint."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.fields.common import KMS_KEY, RESOURCE_NAME, tag_fields
from airflow_autopilot.core.fields.model import (
    DEFAULT_INSTANCE_TYPE,
    INSTANCE_TYPE,
    MODEL_NAME,
    tag_assembly,
    whole_number,
)
from airflow_autopilot.core.fields.spec import Field, RequestSpec

#: The one production variant a deployment creates takes all traffic.
VARIANT_NAME = "AllTraffic"
VARIANTS = "ProductionVariants"


#: The endpoint the deploy operator creates or updates.
ENDPOINT_NAME = RESOURCE_NAME.at("EndpointName", parameter="endpoint_name", doc="the endpoint (templated).")


ENDPOINT_CONFIG = RequestSpec(
    operation="CreateEndpointConfig",
    fields=(
        # Derived from the endpoint, the model and the instances (``<endpoint>-<8 hex>``).
        RESOURCE_NAME.at("EndpointConfigName"),
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
        RESOURCE_NAME.at(f"{VARIANTS}[].VariantName"),
        # The model the operator created (or reused): ``model_name``, or derived from the candidate.
        MODEL_NAME.at(f"{VARIANTS}[].ModelName", parameter="model_name", required=False),
        INSTANCE_TYPE.at(
            f"{VARIANTS}[].InstanceType",
            parameter="instance_type",
            doc="endpoint instance type (default ``ml.m5.large``).",
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
        KMS_KEY.at(
            "KmsKeyId", parameter="kms_key_id", doc="KMS key of the endpoint instances' storage volumes."
        ),
        *tag_fields(doc="tags of the model, config and new endpoint (a dict, or a list of Key/Value)."),
    ),
    assemble=tag_assembly,
    subject="CreateEndpointConfig request",
    assembled=frozenset({"tags"}),
    extras=None,
    # One variant taking all traffic: every ProductionVariants[] member with a parameter goes into it.
    one_entry={VARIANTS: {"VariantName": VARIANT_NAME, "InitialVariantWeight": 1.0}},
)

#: The deploy operator's defaults for its CreateEndpointConfig parameters.
ENDPOINT_CONFIG_DEFAULTS: Mapping[str, Any] = {
    "instance_type": DEFAULT_INSTANCE_TYPE,
    "initial_instance_count": 1,
}


ENDPOINT = RequestSpec(
    operation="CreateEndpoint",
    fields=(
        ENDPOINT_NAME,
        RESOURCE_NAME.at("EndpointConfigName"),
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
        ENDPOINT_NAME,
        RESOURCE_NAME.at("EndpointConfigName"),
        Field("RetainAllVariantProperties", kind="bool"),
        Field("RetainDeploymentConfig", kind="bool"),
    ),
    subject="UpdateEndpoint request",
    extras=None,
)


def endpoint_config_request(
    params: Mapping[str, Any], *, config_name: str, model_name: str, spec: RequestSpec | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The CreateEndpointConfig request: one variant serving ``model_name``.

    :param params: the operator's parameters (``instance_type``, ``initial_instance_count``,
        ``tags``) and ``own_tags``.
    :param config_name: the endpoint config's (derived) name; ``""`` while not known yet.
    :param model_name: the model the variant serves.
    :param spec: the operator's CreateEndpointConfig table (default :data:`ENDPOINT_CONFIG`).
    :return: the request and the problems found while building it.
    """
    request, errors = (spec or ENDPOINT_CONFIG).build(params)
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

"""The CreateEndpointConfig, CreateEndpoint and UpdateEndpoint requests as tables: a candidate
served from a real-time endpoint."""

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
from airflow_autopilot.core.fields.spec import Field, Problem, RequestSpec, problem, values_at, wire_path

#: The one production variant a deployment creates takes all traffic.
VARIANT_NAME = "AllTraffic"
VARIANTS = "ProductionVariants"


#: Memory sizes SageMaker offers a serverless endpoint, in MB.
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
#: The capture modes data capture records when ``CaptureOptions`` is not given: requests and answers.
DEFAULT_CAPTURE_OPTIONS = ({"CaptureMode": "Input"}, {"CaptureMode": "Output"})
#: A DestinationS3Uri of data capture (botocore's pattern and length, not the S3Uri one's).
CAPTURE_S3_URI = S3_URI.at("DestinationS3Uri", pattern="(https|s3)://([^/])/?(.*)", max_length=512)
ROLLOUT_DOC = (
    "a guardrailed rollout of an update in short: ``all-at-once[:BAKE]``, ``canary:SIZE:BAKE``, "
    "``linear:SIZE:BAKE`` or ``rolling:SIZE:BAKE``, then optional ``:termination-wait=DURATION``, "
    "``:max-time=DURATION``, ``:rollback-batch=SIZE`` (rolling); SIZE ``N%`` or ``N`` instances, "
    "durations ``N``/``Ns``/``Nm``/``Nh``: ``canary:10%:600s`` (templated; docs/promotion.md)."
)


def _memory_size(value: Any, path: str) -> list[str]:
    if isinstance(value, int) and 1024 <= value <= 6144 and value % 1024:
        return [
            f"{value} MB is not offered; SageMaker offers {', '.join(map(str, SERVERLESS_MEMORY_SIZES))} MB"
        ]
    return []


def serverless_fields(path: str) -> tuple[Field, ...]:
    """A variant's ``ServerlessConfig``: memory (1024 to 6144 MB in 1 GB steps) and concurrency.

    :param path: where the structure sits (``"ProductionVariants[].ServerlessConfig"``).
    """
    return (
        Field(
            path,
            "serverless_config",
            "structure",
            "serve from a serverless endpoint instead of instances: SageMaker's ServerlessConfig, "
            '``{"MemorySizeInMB": 2048, "MaxConcurrency": 5}`` (instance_type and '
            "initial_instance_count are then not sent).",
        ),
        Field(
            f"{path}.MemorySizeInMB",
            "serverless_memory_mb",
            "int",
            "serverless memory in MB: 1024, 2048, 3072, 4096, 5120 or 6144 (sets ServerlessConfig).",
            required=True,
            hint="one of 1024, 2048, 3072, 4096, 5120, 6144",
            minimum=1024,
            maximum=6144,
            check=_memory_size,
        ),
        Field(
            f"{path}.MaxConcurrency",
            "serverless_max_concurrency",
            "int",
            "most concurrent invocations of the serverless endpoint, 1 to 200 (sets ServerlessConfig).",
            required=True,
            hint="1 to 200",
            minimum=1,
            maximum=200,
        ),
        Field(f"{path}.ProvisionedConcurrency", kind="int", minimum=1, maximum=200),
    )


def data_capture_fields(path: str) -> tuple[Field, ...]:
    """``DataCaptureConfig``: what share of requests and answers the endpoint writes to S3.

    :param path: where the structure sits (``"DataCaptureConfig"``).
    """
    content_types = f"{path}.CaptureContentTypeHeader"
    content_type = Field(
        "",
        min_length=1,
        max_length=256,
        pattern=r"[a-zA-Z0-9](-*[a-zA-Z0-9])*\/[a-zA-Z0-9](-*[a-zA-Z0-9.])*",
        pattern_hint="a content type such as text/csv",
    )
    return (
        Field(
            path,
            "data_capture_config",
            "structure",
            "SageMaker's DataCaptureConfig, verbatim; the ``data_capture_*`` parameters set its "
            "members (EnableCapture defaults to true, CaptureOptions to Input and Output).",
        ),
        Field(f"{path}.EnableCapture", kind="bool"),
        Field(
            f"{path}.InitialSamplingPercentage",
            "data_capture_percentage",
            "int",
            "share of requests captured, 0 to 100 (sets DataCaptureConfig).",
            required=True,
            hint="0 to 100",
            minimum=0,
            maximum=100,
        ),
        CAPTURE_S3_URI.at(
            f"{path}.DestinationS3Uri",
            parameter="data_capture_s3_uri",
            doc="where captured requests and answers go, an S3 URI (sets DataCaptureConfig).",
            required=True,
        ),
        KMS_KEY.at(
            f"{path}.KmsKeyId",
            parameter="data_capture_kms_key_id",
            doc="KMS key encrypting the captured data (sets DataCaptureConfig).",
        ),
        Field(
            f"{path}.CaptureOptions",
            kind="list",
            required=True,
            hint="a list of 1 to 32 capture modes",
            min_length=1,
            max_length=32,
            items="capture options",
        ),
        Field(f"{path}.CaptureOptions[]", kind="structure"),
        Field(
            f"{path}.CaptureOptions[].CaptureMode",
            required=True,
            enum=("Input", "Output", "InputAndOutput"),
        ),
        Field(content_types, kind="structure"),
        Field(
            f"{content_types}.CsvContentTypes",
            kind="list",
            min_length=1,
            max_length=10,
            items="content types",
        ),
        content_type.at(f"{content_types}.CsvContentTypes[]"),
        Field(
            f"{content_types}.JsonContentTypes",
            kind="list",
            min_length=1,
            max_length=10,
            items="content types",
        ),
        content_type.at(f"{content_types}.JsonContentTypes[]"),
    )


def _capacity(path: str, required: bool = False) -> tuple[Field, ...]:
    return (
        Field(path, kind="structure", required=required, hint="a size {Type, Value}" if required else ""),
        Field(f"{path}.Type", required=True, enum=("CAPACITY_PERCENT", "INSTANCE_COUNT")),
        Field(f"{path}.Value", kind="int", required=True, hint="a whole number of at least 1", minimum=1),
    )


def _seconds(path: str, low: int, high: int, required: bool = False) -> Field:
    return Field(
        path, kind="int", required=required, hint=f"{low} to {high} seconds", minimum=low, maximum=high
    )


def deployment_config_fields(path: str) -> tuple[Field, ...]:
    """UpdateEndpoint's ``DeploymentConfig``: a blue/green (all at once, canary, linear) or rolling
    update, and the CloudWatch alarms that roll it back.

    :param path: where the structure sits (``"DeploymentConfig"``).
    """
    blue_green = f"{path}.BlueGreenUpdatePolicy"
    routing = f"{blue_green}.TrafficRoutingConfiguration"
    rolling = f"{path}.RollingUpdatePolicy"
    alarms = f"{path}.AutoRollbackConfiguration.Alarms"
    return (
        Field(
            path,
            "deployment_config",
            "structure",
            "how an update of an existing endpoint shifts traffic: SageMaker's DeploymentConfig, "
            "verbatim (BlueGreenUpdatePolicy or RollingUpdatePolicy, AutoRollbackConfiguration); "
            "or use ``rollout``. A new endpoint is created directly (there is no traffic to shift).",
            named_as="deployment_config / rollout",
        ),
        Field(blue_green, kind="structure"),
        Field(routing, kind="structure", required=True, hint="a TrafficRoutingConfiguration"),
        Field(f"{routing}.Type", required=True, enum=("ALL_AT_ONCE", "CANARY", "LINEAR")),
        _seconds(f"{routing}.WaitIntervalInSeconds", 0, 3600, required=True),
        *_capacity(f"{routing}.CanarySize"),
        *_capacity(f"{routing}.LinearStepSize"),
        _seconds(f"{blue_green}.TerminationWaitInSeconds", 0, 3600),
        _seconds(f"{blue_green}.MaximumExecutionTimeoutInSeconds", 600, 28800),
        Field(rolling, kind="structure"),
        *_capacity(f"{rolling}.MaximumBatchSize", required=True),
        _seconds(f"{rolling}.WaitIntervalInSeconds", 0, 3600, required=True),
        _seconds(f"{rolling}.MaximumExecutionTimeoutInSeconds", 600, 28800),
        *_capacity(f"{rolling}.RollbackMaximumBatchSize"),
        Field(f"{path}.AutoRollbackConfiguration", kind="structure"),
        Field(
            alarms,
            "auto_rollback_alarms",
            "list",
            "CloudWatch alarm names (at most 10) SageMaker watches during the rollout's bake periods; "
            "one in ALARM rolls the update back. Each must exist: checked with DescribeAlarms before "
            "any SageMaker call (templated).",
            min_length=1,
            max_length=10,
            items="alarms",
            annotation="list[str] | str | None",
        ),
        Field(f"{alarms}[]", kind="structure"),
        Field(
            f"{alarms}[].AlarmName",
            required=True,
            hint="an alarm name of 1 to 255 characters",
            min_length=1,
            max_length=255,
            pattern=r"(?!\s*$).+",
            rule="must not be blank",
        ),
    )


def unknown_members(request: Mapping[str, Any], fields: tuple[Field, ...], root: str) -> list[Problem]:
    """Members of the structures under ``root`` that the table does not describe (a typo such as
    ``BlueGreenPolicy`` would otherwise reach SageMaker after the model and config were created).

    :param request: the request.
    :param fields: the request's table.
    :param root: the structure's table path.
    """
    children: dict[str, set[str]] = {}
    for entry in fields:
        if entry.path.startswith(root + ".") or entry.path.startswith(root + "[]."):
            parent, _, name = entry.path.rpartition(".")
            children.setdefault(parent, set()).add(name.removesuffix("[]"))
    found = []
    for parent, names in children.items():
        for where, value in values_at(request, parent):
            if isinstance(value, Mapping):
                extra = sorted(set(value) - names)
                if extra:
                    found.append(problem(where, f"unknown member(s) {extra}; known: {sorted(names)}"))
    return found


def serverless_rule(request: Mapping[str, Any]) -> list[Problem]:
    """A serverless variant has no instances; its provisioned concurrency is at most its maximum."""
    found = unknown_members(request, ENDPOINT_CONFIG.fields, f"{VARIANTS}[].ServerlessConfig")
    found += unknown_members(request, ENDPOINT_CONFIG.fields, "DataCaptureConfig")
    for where, variant in values_at(request, f"{VARIANTS}[]"):
        if not isinstance(variant, Mapping) or not isinstance(variant.get("ServerlessConfig"), Mapping):
            continue
        both = [k for k in ("InstanceType", "InitialInstanceCount") if variant.get(k) is not None]
        if both:
            found.append(
                problem(
                    f"{where}.ServerlessConfig",
                    f"a serverless variant takes no {' or '.join(both)}: give either ServerlessConfig "
                    "or instances",
                    about=[f"{where}.ServerlessConfig", *(f"{where}.{k}" for k in both)],
                )
            )
        serverless = variant["ServerlessConfig"]
        provisioned, most = serverless.get("ProvisionedConcurrency"), serverless.get("MaxConcurrency")
        if isinstance(provisioned, int) and isinstance(most, int) and provisioned > most:
            found.append(
                problem(
                    f"{where}.ServerlessConfig.ProvisionedConcurrency",
                    f"{provisioned} must be at most MaxConcurrency ({most})",
                )
            )
    return found


def config_assembly(params: Mapping[str, Any], request: dict[str, Any], errors: list[str]) -> None:
    """The tags, and data capture's defaults: capture on, requests and answers."""
    tag_assembly(params, request, errors)
    capture = request.get("DataCaptureConfig")
    if isinstance(capture, Mapping):
        capture = dict(capture)
        capture.setdefault("EnableCapture", True)
        capture.setdefault("CaptureOptions", [dict(o) for o in DEFAULT_CAPTURE_OPTIONS])
        request["DataCaptureConfig"] = capture


def deployment_rule(request: Mapping[str, Any]) -> list[Problem]:
    """One policy; the size the routing type needs; SageMaker's documented batch-size limits."""
    from airflow_autopilot.core.rollout import capacity_problems, routing_problems

    config = request.get("DeploymentConfig")
    found = unknown_members(request, UPDATE_ENDPOINT.fields, "DeploymentConfig")
    # SageMaker names the member camelCased in its messages (the emulator answers the same).
    found += [
        problem(path, text, server=f"{wire_path(path)}: {text}.")
        for path, text in [*routing_problems(config), *capacity_problems(config)]
    ]
    return found


def deployment_assembly(params: Mapping[str, Any], request: dict[str, Any], errors: list[str]) -> None:
    """``DeploymentConfig`` from ``deployment_config`` or ``rollout``, with ``auto_rollback_alarms``."""
    from airflow_autopilot.core.rollout import deployment_config

    config, problems = deployment_config(params)
    errors.extend(problems)
    if config is not None:
        request["DeploymentConfig"] = config


def serverless_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """
    The parameters of a serverless deployment without the instance defaults: with a serverless
    parameter given and ``instance_type``/``initial_instance_count`` left at their defaults, those
    are not sent (a serverless variant takes none); values other than the defaults stay, for the
    table's rule to report.

    :param params: the operator's parameters.
    """
    serverless = any(
        params.get(name) is not None
        for name in ("serverless_config", "serverless_memory_mb", "serverless_max_concurrency")
    )
    if not serverless:
        return dict(params)
    out = dict(params)
    if out.get("instance_type") == DEFAULT_INSTANCE_TYPE:
        out["instance_type"] = None
    if out.get("initial_instance_count") in (1, "1"):
        out["initial_instance_count"] = None
    return out


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
        Field(
            f"{VARIANTS}[].InitialVariantWeight",
            "initial_variant_weight",
            "float",
            "the variant's weight (default 1.0; with one variant it takes all traffic whatever its "
            "weight, so this matters once variants are added through ``extras``).",
            minimum=0,
        ),
        *serverless_fields(f"{VARIANTS}[].ServerlessConfig"),
        KMS_KEY.at(
            "KmsKeyId", parameter="kms_key_id", doc="KMS key of the endpoint instances' storage volumes."
        ),
        *data_capture_fields("DataCaptureConfig"),
        *tag_fields(doc="tags of the model, config and new endpoint (a dict, or a list of Key/Value)."),
    ),
    rules=(serverless_rule,),
    assemble=config_assembly,
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
    # Members required only once their structure is given: no required arguments of their own.
    "serverless_memory_mb": None,
    "serverless_max_concurrency": None,
    "data_capture_percentage": None,
    "data_capture_s3_uri": None,
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
        *deployment_config_fields("DeploymentConfig"),
    ),
    rules=(deployment_rule,),
    assemble=deployment_assembly,
    extra_parameters=(("rollout", "str | None", ROLLOUT_DOC),),
    assembled=frozenset({"deployment_config", "auto_rollback_alarms"}),
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

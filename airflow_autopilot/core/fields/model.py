"""The CreateModel request as a table, and the hosting fields other requests share (model names,
inference containers, instance types)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.fields.common import (
    ENDPOINT_NAME_MAX_LENGTH,
    INSTANCE_TYPE_PATTERN,
    RESOURCE_NAME,
    ROLE_ARN,
    S3_URI,
    tag_fields,
    vpc_fields,
)
from airflow_autopilot.core.fields.spec import Field, RequestSpec, compiled

#: SageMaker model, endpoint config, endpoint and transform job names: at most 63 characters.
RESOURCE_NAME_MAX = ENDPOINT_NAME_MAX_LENGTH
#: botocore's ModelName pattern (the same names as the other resources', written differently).
MODEL_NAME_PATTERN = r"[a-zA-Z0-9]([\-a-zA-Z0-9]*[a-zA-Z0-9])?"
#: Container environment variable names (botocore's EnvironmentKey).
ENVIRONMENT_KEY_PATTERN = "[a-zA-Z_][a-zA-Z0-9_]*"
#: Most containers a model (a serial inference pipeline) or a model package version holds.
MAX_CONTAINERS = 15

#: The operators' default instance type (moto's endpoint-config allow-list accepts it; newer families not).
DEFAULT_INSTANCE_TYPE = "ml.m5.large"
INSTANCE_TYPE_RULE = "must be a SageMaker instance type such as ml.m5.large (ml.<family>.<size>)"


#: A SageMaker instance type, ``ml.<family>.<size>``: a pattern where botocore enumerates each
#: request's instance types, as every release adds some (a test checks it accepts each of them).
INSTANCE_TYPE = Field(
    "InstanceType",
    kind="str",
    required=True,
    hint="a SageMaker instance type such as ml.m5.large",
    pattern=INSTANCE_TYPE_PATTERN,
    rule=INSTANCE_TYPE_RULE,
)
#: A SageMaker model name (1 to 63 letters, digits and hyphens; botocore writes its pattern differently).
MODEL_NAME = RESOURCE_NAME.at("ModelName", pattern=MODEL_NAME_PATTERN)


def _environment_keys(value: Any, path: str) -> list[str]:
    bad = sorted(
        str(key)
        for key in value
        if not isinstance(key, str) or not compiled(ENVIRONMENT_KEY_PATTERN).fullmatch(key)
    )
    return [f"variable names {bad} must match {ENVIRONMENT_KEY_PATTERN}"] if bad else []


def container_fields(prefix: str, *, many: bool = True, required: bool = False) -> tuple[Field, ...]:
    """Inference containers (``Image``, ``ModelDataUrl``, ``Environment``), as CreateModel and
    CreateModelPackage take them.

    :param prefix: where they sit (``"Containers"``, or ``"PrimaryContainer"`` for one).
    :param many: a list of containers (else one container).
    :param required: the list must be given.
    """
    item = f"{prefix}[]" if many else prefix
    listed = (
        (
            Field(
                prefix,
                kind="list",
                required=required,
                hint=f"a list of 1 to {MAX_CONTAINERS} containers",
                min_length=1 if required else None,
                max_length=MAX_CONTAINERS,
                items="containers",
            ),
        )
        if many
        else ()
    )
    return (
        *listed,
        Field(item, kind="structure"),
        Field(
            f"{item}.Image",
            kind="str",
            pattern=r"[\S]+",
            pattern_hint="an image URI without blanks",
            max_length=255,
        ),
        S3_URI.at(f"{item}.ModelDataUrl"),
        Field(f"{item}.Environment", kind="map", max_length=100, items="variables", check=_environment_keys),
        Field(f"{item}.Environment.*", kind="str", max_length=1024),
    )


def whole_number(value: Any) -> Any:
    """A count as an ``int``: ``"6"``, ``"6.0"`` and ``6.0`` give 6, a rendered empty value (``"None"``,
    ``""``) ``None`` (left out); anything else is returned for validation to report.

    :param value: the parameter's value.
    """
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "None"):
            return None
        try:
            value = float(text)
        except ValueError:
            return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def tag_assembly(params: Mapping[str, Any], request: dict[str, Any], errors: list[str]) -> None:
    """The ``Tags`` of a request: the ``tags`` parameter (a dict or a list of Key/Value, keys this
    package reserves refused), then the operator's own tags (build parameter ``own_tags``).

    :param params: the build parameters.
    :param request: the request being built (its ``Tags`` replaced).
    :param errors: where a problem is appended.
    """
    # Imported here: core.requests loads core.naming, which DAG parsing (these tables) does not need.
    from airflow_autopilot.core.requests import merge_tags, tags_as_list

    given, problems = tags_as_list(params.get("tags"))
    errors.extend(problems)
    tags = merge_tags(given, params.get("own_tags"))
    if tags:
        request["Tags"] = tags
    else:
        request.pop("Tags", None)


def _model_assembly(params: Mapping[str, Any], request: dict[str, Any], errors: list[str]) -> None:
    """The containers (from the candidate, not a parameter of their own) and the tags."""
    if params.get("containers") is not None:
        request["Containers"] = params["containers"]
    tag_assembly(params, request, errors)


MODEL = RequestSpec(
    operation="CreateModel",
    fields=(
        MODEL_NAME.at(
            "ModelName",
            parameter="model_name",
            doc="model name override (default derived from the candidate).",
        ),
        ROLE_ARN.at(
            "ExecutionRoleArn",
            doc="the model's execution role (templated).",
            stricter="the operators' models run an Autopilot candidate's images and artifacts, which "
            "SageMaker reads with this role",
        ),
        # SageMaker takes Containers (a serial inference pipeline, what the operators send) or one
        # PrimaryContainer.
        *container_fields("Containers"),
        *container_fields("PrimaryContainer", many=False),
        # Security settings, described for the emulator; an operator parameter makes them settable.
        *vpc_fields(
            "VpcConfig",
            "vpc_config",
            '``{"SecurityGroupIds": [...], "Subnets": [...]}``: the VPC the model\'s containers run in.',
        ),
        Field(
            "EnableNetworkIsolation",
            "enable_network_isolation",
            "bool",
            "``EnableNetworkIsolation``: the model's containers get no network access (no inbound or "
            "outbound calls); Autopilot's containers read their artifacts before isolation applies.",
        ),
        *tag_fields(doc="tags of what the operator creates (a dict, or a list of Key/Value)."),
    ),
    assemble=_model_assembly,
    subject="CreateModel request",
    assembled=frozenset({"tags"}),
    extras=None,
)


#: Operator defaults for CreateModel parameters: a model name not given is derived from the candidate.
MODEL_DEFAULTS: Mapping[str, Any] = {"model_name": None}


def model_request(
    params: Mapping[str, Any],
    *,
    model_name: str | None,
    containers: list[dict[str, Any]] | None,
    spec: RequestSpec | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The CreateModel request: one model holding every container (a serial inference pipeline).

    :param params: the operator's parameters (``role_arn``, ``tags``).
    :param model_name: the model (the ``model_name`` parameter, or derived from the candidate);
        ``None`` while not known yet.
    :param containers: the candidate's inference containers; ``None`` while not known yet.
    :param spec: the operator's CreateModel table (default :data:`MODEL`).
    :return: the request and the problems found while building it.
    """
    return (spec or MODEL).build({**params, "model_name": model_name, "containers": containers})

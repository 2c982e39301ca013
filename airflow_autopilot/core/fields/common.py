"""Field descriptions several SageMaker requests share (names, role ARN, S3 URIs, KMS keys, tags,
security, output, completion criteria, data split, deploy config), described once."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.fields.spec import Field, Problem, Rule, empty_rendering_error, problem

#: SageMaker's resource name pattern for a name of at most ``n`` characters.
NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,%d}"
JOB_NAME_MAX_LENGTH = 32
JOB_NAME_PATTERN = NAME_PATTERN % (JOB_NAME_MAX_LENGTH - 1)
S3_URI_PATTERN = "(https|s3)://([^/]+)/?(.*)"
S3_URI_MAX_LENGTH = 1024
ROLE_ARN_PATTERN = r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
ROLE_ARN_LENGTH = (20, 2048)
#: The forms SageMaker documents for a KmsKeyId: a key id (multi-Region ``mrk-`` ones too), a key
#: ARN, an alias name or an alias ARN (SageMaker's own pattern, ``[a-zA-Z0-9:/_-]*``, lets any
#: such characters through to fail later, at the job's first use of the key).
_KMS_KEY_ID = (
    r"(?:mrk-[0-9a-f]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
)
_KMS_ALIAS = r"alias/[a-zA-Z0-9/_-]+"
KMS_KEY_FORMS = (
    rf"{_KMS_KEY_ID}|{_KMS_ALIAS}|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{{12}}:(?:key/{_KMS_KEY_ID}|{_KMS_ALIAS})"
)
KMS_KEY_PATTERN = "[a-zA-Z0-9:/_-]*"
#: A VPC subnet or security group id, as SageMaker's VpcConfig takes them.
VPC_ID_PATTERN = "[-0-9a-zA-Z]+"
VPC_ID_MAX_LENGTH = 32
KMS_KEY_MAX_LENGTH = 2048
#: A SageMaker instance type: ``ml.<family>.<size>``, such as ml.m5.large or ml.g5.12xlarge.
INSTANCE_TYPE_PATTERN = r"ml\.[a-z][a-z0-9-]*\.[a-z0-9]+"
MAX_TAGS = 50
ENDPOINT_NAME_MAX_LENGTH = 63


def _not_an_empty_rendering(value: Any, path: str) -> list[str]:
    empty = empty_rendering_error(value, path)
    return [empty.removeprefix(f"{path}: ")] if empty else []


#: A SageMaker AutoML job name: 1 to 32 letters, digits and hyphens, not the rendering of an empty
#: value. Each request path taking one is ``JOB_NAME.at(path, parameter=..., doc=...)``.
JOB_NAME = Field(
    "AutoMLJobName",
    kind="str",
    required=True,
    pattern=JOB_NAME_PATTERN,
    pattern_hint="letters, digits and hyphens; starts and ends with a letter or digit",
    min_length=1,
    max_length=JOB_NAME_MAX_LENGTH,
    check=_not_an_empty_rendering,
)
#: A SageMaker model, endpoint, endpoint config, transform job or model package group name: the
#: same rules, up to 63 characters.
RESOURCE_NAME = JOB_NAME.at(
    "EndpointName",
    pattern=NAME_PATTERN % (ENDPOINT_NAME_MAX_LENGTH - 1),
    max_length=ENDPOINT_NAME_MAX_LENGTH,
)
#: An S3 URI (input data, output path, feature specification, model artifacts ...).
S3_URI = Field(
    "S3Uri",
    kind="str",
    hint="an S3 URI such as s3://bucket/prefix",
    pattern=S3_URI_PATTERN,
    pattern_hint="for example s3://bucket/prefix",
    max_length=S3_URI_MAX_LENGTH,
)


def _kms_key_form(value: Any, path: str) -> list[str]:
    if (
        isinstance(value, str)
        and re.fullmatch(KMS_KEY_PATTERN, value)
        and not re.fullmatch(KMS_KEY_FORMS, value)
    ):
        return [f"{value!r} must be a KMS key id, key ARN, alias (alias/name) or alias ARN"]
    return []


#: A KMS key id, key ARN, alias or alias ARN.
KMS_KEY = Field(
    "KmsKeyId",
    kind="str",
    pattern=KMS_KEY_PATTERN,
    rule="must be a KMS key id, key ARN, alias (alias/name) or alias ARN",
    check=_kms_key_form,
    stricter="SageMaker's pattern lets any key-like text through to fail when the job first uses the key",
    max_length=KMS_KEY_MAX_LENGTH,
)


ROLE_ARN = Field(
    "RoleArn",
    "role_arn",
    "str",
    "the SageMaker execution role ARN.",
    required=True,
    hint=f"{ROLE_ARN_LENGTH[0]} to {ROLE_ARN_LENGTH[1]} characters",
    pattern=ROLE_ARN_PATTERN,
    rule="must be an IAM role ARN such as arn:aws:iam::123456789012:role/MyRole",
    min_length=ROLE_ARN_LENGTH[0],
    max_length=ROLE_ARN_LENGTH[1],
)


def tag_fields(parameter: str | None = "tags", doc: str = "") -> tuple[Field, ...]:
    """``Tags``: at most 50 ``{"Key", "Value"}`` entries.

    :param parameter: the operator parameter.
    :param doc: the parameter's description.
    """
    return (
        Field(
            "Tags",
            parameter,
            "list",
            doc,
            max_length=MAX_TAGS,
            items="tags",
            annotation="dict[str, str] | list[dict[str, str]] | None",
        ),
        Field("Tags[]", kind="structure"),
        Field(
            "Tags[].Key", kind="str", required=True, hint="1 to 128 characters", min_length=1, max_length=128
        ),
        Field(
            "Tags[].Value",
            kind="str",
            required=True,
            hint="a string of at most 256 characters",
            max_length=256,
        ),
    )


def security_fields(
    prefix: str, parameter: str | None = "security_config", doc: str = ""
) -> tuple[Field, ...]:
    """A job's ``SecurityConfig`` (volume KMS key, VPC, inter-container encryption).

    :param prefix: where the structure sits (``"AutoMLJobConfig.SecurityConfig"``).
    :param parameter: the operator parameter that gives all of it.
    :param doc: the parameter's description.
    """
    return (
        Field(prefix, parameter, "structure", doc),
        KMS_KEY.at(f"{prefix}.VolumeKmsKeyId"),
        Field(f"{prefix}.EnableInterContainerTrafficEncryption", kind="bool"),
        *vpc_fields(f"{prefix}.VpcConfig", None),
    )


def vpc_fields(path: str, parameter: str | None, doc: str = "") -> tuple[Field, ...]:
    """A ``VpcConfig``: 1 to 5 security groups and 1 to 16 subnets (a job's, a model's ...).

    :param path: where the structure sits (``"VpcConfig"``).
    :param parameter: the operator parameter that gives all of it.
    :param doc: the parameter's description.
    """
    return (
        Field(path, parameter, "structure", doc),
        Field(
            f"{path}.SecurityGroupIds",
            kind="list",
            required=True,
            hint="a list of 1 to 5 security group ids",
            min_length=1,
            max_length=5,
            items="security groups",
        ),
        Field(
            f"{path}.SecurityGroupIds[]",
            pattern=VPC_ID_PATTERN,
            max_length=VPC_ID_MAX_LENGTH,
            rule="must be a security group id such as sg-0123456789abcdef0",
        ),
        Field(
            f"{path}.Subnets",
            kind="list",
            required=True,
            hint="a list of 1 to 16 subnet ids",
            min_length=1,
            max_length=16,
            items="subnets",
        ),
        Field(
            f"{path}.Subnets[]",
            pattern=VPC_ID_PATTERN,
            max_length=VPC_ID_MAX_LENGTH,
            rule="must be a subnet id such as subnet-0123456789abcdef0",
        ),
    )


def output_fields() -> tuple[Field, ...]:
    """An AutoML job's ``OutputDataConfig``."""
    return (
        S3_URI.at(
            "OutputDataConfig.S3OutputPath",
            parameter="s3_output_path",
            doc="``OutputDataConfig.S3OutputPath``.",
            required=True,
            hint="an S3 URI such as s3://bucket/output",
        ),
        KMS_KEY.at(
            "OutputDataConfig.KmsKeyId", parameter="output_kms_key_id", doc="``OutputDataConfig.KmsKeyId``."
        ),
    )


MAX_CANDIDATES_RANGE = (1, 750)


def completion_fields(prefix: str, where: str = "``CompletionCriteria``") -> tuple[Field, ...]:
    """``CompletionCriteria``: how many candidates and how long.

    :param prefix: where the structure sits.
    :param where: how the parameters' docs name it.
    """
    lo, hi = MAX_CANDIDATES_RANGE
    return (
        Field(f"{prefix}", kind="structure"),
        Field(
            f"{prefix}.MaxCandidates",
            "max_candidates",
            "int",
            f"{where}.MaxCandidates ({lo} to {hi}).",
            minimum=lo,
            maximum=hi,
        ),
        Field(
            f"{prefix}.MaxRuntimePerTrainingJobInSeconds",
            "max_runtime_per_training_job_in_seconds",
            "int",
            f"{where}.MaxRuntimePerTrainingJobInSeconds.",
            minimum=1,
        ),
        Field(
            f"{prefix}.MaxAutoMLJobRuntimeInSeconds",
            "max_auto_ml_job_runtime_in_seconds",
            "int",
            f"{where}.MaxAutoMLJobRuntimeInSeconds.",
            minimum=1,
        ),
    )


def runtime_rule(prefix: str) -> Rule:
    """The rule that one training job may not run longer than the whole job.

    :param prefix: where ``CompletionCriteria`` sits (``*`` for any problem type).
    """
    from airflow_autopilot.core.fields.spec import values_at

    def per_job_within_total(request: Mapping[str, Any]) -> list[Problem]:
        found = []
        for path, criteria in values_at(request, prefix):
            if not isinstance(criteria, Mapping):
                continue
            per_job = criteria.get("MaxRuntimePerTrainingJobInSeconds")
            total = criteria.get("MaxAutoMLJobRuntimeInSeconds")
            if (
                isinstance(per_job, int)
                and isinstance(total, int)
                and _is_int(per_job)
                and _is_int(total)
                and per_job > total
            ):
                found.append(
                    problem(
                        f"{path}.MaxRuntimePerTrainingJobInSeconds",
                        f"{per_job} must not exceed MaxAutoMLJobRuntimeInSeconds ({total})",
                        server="MaxRuntimePerTrainingJobInSeconds must not exceed MaxAutoMLJobRuntimeInSeconds.",
                    )
                )
        return found

    return per_job_within_total


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validation_fraction_field(path: str) -> Field:
    """``DataSplitConfig.ValidationFraction``: greater than 0 and less than 1.

    :param path: the request path.
    """
    return Field(
        path,
        "validation_fraction",
        "float",
        "``DataSplitConfig.ValidationFraction`` (0 < x < 1).",
        minimum=0,
        maximum=1,
        exclusive=True,
        stricter="SageMaker refuses 0 and 1 (the model allows them): nothing left to train or validate on",
    )


def deploy_fields(parameter: str = "model_deploy_config") -> tuple[Field, ...]:
    """``ModelDeployConfig``: deploy the best candidate to an endpoint.

    :param parameter: the operator parameter.
    """
    return (
        Field(
            "ModelDeployConfig",
            parameter,
            "structure",
            '``ModelDeployConfig``: ``{"AutoGenerateEndpointName": True}`` or '
            '``{"AutoGenerateEndpointName": False, "EndpointName": "..."}``.',
        ),
        Field("ModelDeployConfig.AutoGenerateEndpointName", kind="bool"),
        RESOURCE_NAME.at("ModelDeployConfig.EndpointName", required=False),
    )


def deploy_rule(generate_only_path: str) -> Rule:
    """Both-or-neither of ``AutoGenerateEndpointName`` and ``EndpointName``, and nothing to deploy
    when only candidate definitions are generated.

    :param generate_only_path: where ``GenerateCandidateDefinitionsOnly`` sits (``*`` allowed).
    """
    from airflow_autopilot.core.fields.spec import values_at

    def deploy_config(request: Mapping[str, Any]) -> list[Problem]:
        cfg = request.get("ModelDeployConfig")
        if not isinstance(cfg, Mapping):
            return []
        found = []
        auto = cfg.get("AutoGenerateEndpointName", False)
        name = cfg.get("EndpointName")
        if auto and name:
            found.append(
                problem(
                    "ModelDeployConfig",
                    "EndpointName must not be given when AutoGenerateEndpointName is true",
                    server="Validation Error: An EndpointName cannot be provided while "
                    "AutoGenerateEndpointName is True.",
                )
            )
        if not auto and not name:
            found.append(
                problem(
                    "ModelDeployConfig.EndpointName",
                    "required when AutoGenerateEndpointName is false",
                    server="Validation Error: EndpointName must be provided when AutoGenerateEndpointName is False.",
                )
            )
        generate_only = any(value is True for _, value in values_at(request, generate_only_path))
        if generate_only and (auto or name):
            found.append(
                problem(
                    "ModelDeployConfig",
                    "nothing can be deployed when GenerateCandidateDefinitionsOnly is true",
                )
            )
        return found

    return deploy_config


#: The key of an AWS connection's extras whose settings default the operators' security
#: parameters (docs/security.md), for teams that require them on every call.
CONNECTION_DEFAULTS_KEY = "autopilot"
#: Each setting a connection can default and the operator parameters it fills, most specific
#: setting first (``parameter.Member`` fills one member of a structure parameter). A parameter is
#: filled only when the operator leaves it (or the member) unset, by the first setting given.
CONNECTION_SETTINGS: dict[str, tuple[str, ...]] = {
    "output_kms_key_id": ("output_kms_key_id",),
    "volume_kms_key_id": ("volume_kms_key_id", "security_config.VolumeKmsKeyId", "kms_key_id"),
    "kms_key_id": ("output_kms_key_id", "volume_kms_key_id", "security_config.VolumeKmsKeyId", "kms_key_id"),
    "vpc_config": ("vpc_config", "security_config.VpcConfig"),
    "enable_inter_container_traffic_encryption": ("security_config.EnableInterContainerTrafficEncryption",),
    "enable_network_isolation": ("enable_network_isolation",),
}


def with_connection_defaults(
    params: Mapping[str, Any], extras: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """The operator's request parameters with the connection's security defaults filled in where
    the operator leaves them unset (``None``), and the problems of the extras' settings.

    Only parameters the operator has are filled; the values are then validated with the rest of
    the request, by the same table rules as the operator's own.

    :param params: the operator's request parameters, as rendered.
    :param extras: the connection's extras (its :data:`CONNECTION_DEFAULTS_KEY` entry is read).
    """
    values = dict(params)
    settings = (extras or {}).get(CONNECTION_DEFAULTS_KEY)
    where = f"connection extras {CONNECTION_DEFAULTS_KEY!r}"
    if settings is None:
        return values, []
    if not isinstance(settings, Mapping):
        return values, [f"{where}: must be an object of settings ({', '.join(CONNECTION_SETTINGS)})"]
    unknown = sorted(str(key) for key in settings if key not in CONNECTION_SETTINGS)
    if unknown:
        return values, [
            f"{where}: {unknown} not settings a connection can default (one of {', '.join(CONNECTION_SETTINGS)})"
        ]
    for setting, targets in CONNECTION_SETTINGS.items():
        value = settings.get(setting)
        if value is None:
            continue
        for target in targets:
            parameter, _, member = target.partition(".")
            if parameter not in values:
                continue  # not a parameter of this operator
            if not member:
                if values[parameter] is None:
                    values[parameter] = value
                continue
            structure = values[parameter]
            if structure is None:
                structure = {}
            elif not isinstance(structure, Mapping) or member in structure:
                continue  # set by the operator (or malformed: its own validation says so)
            values[parameter] = {**structure, member: value}
    return values, []

"""The CreateAutoMLJob request rules, each error naming the field and the rule; shared with the emulator."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

JOB_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}")
JOB_NAME_MAX_LENGTH = 32
S3_URI_PATTERN = re.compile(r"(https|s3)://([^/]+)/?(.*)")
S3_URI_MAX_LENGTH = 1024
ROLE_ARN_PATTERN = re.compile(r"arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+")
ROLE_ARN_LENGTH = (20, 2048)
MAX_CANDIDATES_RANGE = (1, 750)
MAX_TAGS = 50
#: A SageMaker instance type: ``ml.<family>.<size>``, such as ml.m5.large or ml.g5.12xlarge.
INSTANCE_TYPE_PATTERN = re.compile(r"ml\.[a-z][a-z0-9-]*\.[a-z0-9]+")

# Tuples: the first entry is SageMaker's default where there is one.
CHANNEL_TYPES = ("training", "validation")
CONTENT_TYPES = ("text/csv;header=present", "x-application/vnd.amazon+parquet")
COMPRESSION_TYPES = ("None", "Gzip")
S3_DATA_TYPES_V1 = ("S3Prefix", "ManifestFile")
PROBLEM_TYPES = ("BinaryClassification", "MulticlassClassification", "Regression")
MODES = ("AUTO", "ENSEMBLING", "HYPERPARAMETER_TUNING")

#: Objective metrics allowed per problem type; the first is SageMaker's default.
METRICS_BY_PROBLEM_TYPE: Mapping[str, tuple[str, ...]] = {
    "BinaryClassification": ("F1", "AUC", "Precision", "Recall", "Accuracy", "BalancedAccuracy"),
    "MulticlassClassification": ("Accuracy", "F1macro", "PrecisionMacro", "RecallMacro", "BalancedAccuracy"),
    "Regression": ("MSE", "RMSE", "MAE", "R2"),
}
ALGORITHMS_BY_MODE: Mapping[str, frozenset[str]] = {
    "ENSEMBLING": frozenset(
        {
            "catboost",
            "extra-trees",
            "fastai",
            "lightgbm",
            "linear-learner",
            "nn-torch",
            "randomforest",
            "xgboost",
        }
    ),
    "HYPERPARAMETER_TUNING": frozenset({"linear-learner", "mlp", "xgboost"}),
}

KNOWN_REQUEST_KEYS = frozenset(
    {
        "AutoMLJobName",
        "InputDataConfig",
        "OutputDataConfig",
        "ProblemType",
        "AutoMLJobObjective",
        "AutoMLJobConfig",
        "RoleArn",
        "GenerateCandidateDefinitionsOnly",
        "Tags",
        "ModelDeployConfig",
    }
)


#: How an empty value reads once a template rendered it: Python's ``None``, JSON's ``null``.
EMPTY_RENDERINGS = frozenset({"none", "null"})


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def empty_rendering_error(value: Any, field: str) -> str | None:
    """
    The message for a name that is the text of an empty value (``"None"``, ``"null"``, blank), as a
    template such as ``"{{ ti.xcom_pull(task_ids='create') }}"`` renders a missing XCom; else ``None``.

    :param value: the rendered parameter.
    :param field: the parameter, for the message.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text and text.lower() not in EMPTY_RENDERINGS:
        return None
    shown = "required, got a blank string," if not text else f"{value!r} is"
    return (
        f"{field}: {shown} what a template renders for an empty value: the XCom it pulls, as in "
        "\"{{ ti.xcom_pull(task_ids='...') }}\", is probably missing. Check that the upstream task "
        "ran and pushed that XCom (task id and key), or pass the value itself"
    )


def name_errors(value: Any, field: str) -> list[str]:
    """
    The rules every name parameter shares: given, a string, not the rendering of an empty value.

    :param value: the rendered parameter.
    :param field: the parameter, for messages.
    """
    if value is None:
        return [f"{field}: required, a non-empty string"]
    if not isinstance(value, str):
        return [f"{field}: expected a string, got {type(value).__name__} {_short(value)}"]
    empty = empty_rendering_error(value, field)
    return [empty] if empty else []


#: Longest duration a parameter may give (100 years): beyond it, deadlines overflow ``datetime``.
MAX_DURATION_SECONDS = 100 * 365 * 24 * 3600


def seconds_errors(
    value: Any, field: str, *, allow_none: bool = False, allow_zero: bool = False
) -> list[str]:
    """
    The rule for a duration parameter: a finite number of seconds, positive (or 0 when allowed),
    at most :data:`MAX_DURATION_SECONDS`.

    :param value: the parameter.
    :param field: the parameter name, for messages.
    :param allow_none: ``None`` (no limit) is allowed.
    :param allow_zero: 0 is allowed.
    """
    if value is None and allow_none:
        return []
    rule = "a finite number of seconds, " + ("0 or more" if allow_zero else "greater than 0")
    if allow_none:
        rule += ", or None for no limit"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{field}: {_short(value)} must be {rule}"]
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        return [f"{field}: {value!r} must be {rule}"]
    if value > MAX_DURATION_SECONDS:
        return [f"{field}: {value!r} must be {rule}; at most {MAX_DURATION_SECONDS} (100 years)"]
    return []


def default_metric(problem_type: str) -> str:
    """
    SageMaker's default objective metric for a problem type.

    :param problem_type: BinaryClassification, MulticlassClassification or Regression.
    """
    return METRICS_BY_PROBLEM_TYPE[problem_type][0]


def job_name_errors(name: Any, field: str = "AutoMLJobName") -> list[str]:
    """
    The rule for job names, alone (the sensor and operators check names they are given too).

    :param name: the candidate name.
    :param field: the field name used in messages.
    """
    errors = name_errors(name, field)
    if errors:
        return errors
    if len(name) > JOB_NAME_MAX_LENGTH:
        return [f"{field}: {name!r} is {len(name)} characters; at most {JOB_NAME_MAX_LENGTH} allowed"]
    if not JOB_NAME_PATTERN.fullmatch(name):
        return [
            f"{field}: {name!r} must match {JOB_NAME_PATTERN.pattern} "
            "(letters, digits and hyphens; starts and ends with a letter or digit)"
        ]
    return []


def validate_job_name(name: Any, field: str = "AutoMLJobName", subject: str = "Autopilot job name") -> None:
    """
    Raise :class:`AutopilotValidationError` when ``name`` is not a valid AutoMLJobName.

    :param name: the name.
    :param field: the parameter, for messages.
    :param subject: what was invalid, for the error's title (``Invalid <subject>``).
    """
    raise_if(job_name_errors(name, field), subject)


def raise_if(errors: list[str], subject: str = "Autopilot job request") -> None:
    """
    Raise one :class:`AutopilotValidationError` listing ``errors``, when there are any.

    :param errors: the broken rules.
    :param subject: what was invalid, for the error's title (``Invalid <subject>``).
    """
    if errors:
        from airflow_autopilot.exceptions import AutopilotValidationError

        raise AutopilotValidationError(errors, subject=subject)


def _s3_uri_errors(value: Any, field: str) -> list[str]:
    if not isinstance(value, str) or not value:
        return [f"{field}: required, an S3 URI such as s3://bucket/prefix"]
    if len(value) > S3_URI_MAX_LENGTH:
        return [f"{field}: {len(value)} characters; at most {S3_URI_MAX_LENGTH} allowed"]
    if not S3_URI_PATTERN.fullmatch(value):
        return [f"{field}: {value!r} must match {S3_URI_PATTERN.pattern} (for example s3://bucket/prefix)"]
    return []


def _channel_errors(channels: Any) -> list[str]:
    field = "InputDataConfig"
    if not isinstance(channels, list) or not channels:
        return [f"{field}: required, a list of 1 or 2 channels"]
    if len(channels) > 2:
        return [f"{field}: {len(channels)} channels given; at most 2 (training and validation)"]
    errors: list[str] = []
    for i, channel in enumerate(channels):
        path = f"{field}[{i}]"
        if not isinstance(channel, Mapping):
            errors.append(f"{path}: must be a mapping")
            continue
        s3 = (
            (channel.get("DataSource") or {}).get("S3DataSource")
            if isinstance(channel.get("DataSource"), Mapping)
            else None
        )
        if not isinstance(s3, Mapping):
            errors.append(f"{path}.DataSource.S3DataSource: required")
        else:
            errors += _s3_uri_errors(s3.get("S3Uri"), f"{path}.DataSource.S3DataSource.S3Uri")
            dtype = s3.get("S3DataType")
            if dtype not in S3_DATA_TYPES_V1:
                errors.append(
                    f"{path}.DataSource.S3DataSource.S3DataType: {dtype!r} must be one of {sorted(S3_DATA_TYPES_V1)}"
                )
        target = channel.get("TargetAttributeName")
        if not isinstance(target, str) or not target:
            errors.append(f"{path}.TargetAttributeName: required, the name of the target column")
        for key, allowed in (
            ("ContentType", CONTENT_TYPES),
            ("CompressionType", COMPRESSION_TYPES),
            ("ChannelType", CHANNEL_TYPES),
        ):
            if key in channel and channel[key] not in allowed:
                errors.append(f"{path}.{key}: {channel[key]!r} must be one of {sorted(allowed)}")
    if len(channels) == 2 and all(isinstance(c, Mapping) for c in channels):
        kinds = sorted(str(c.get("ChannelType")) for c in channels)
        if kinds != ["training", "validation"]:
            errors.append(
                f"{field}: with 2 channels, ChannelType must be 'training' on one and 'validation' on the other"
            )
        for key in ("ContentType", "TargetAttributeName"):
            if channels[0].get(key) != channels[1].get(key):
                errors.append(f"{field}: both channels must have the same {key}")
    return errors


def _objective_errors(request: Mapping[str, Any]) -> list[str]:
    errors: list[str] = []
    problem = request.get("ProblemType")
    objective = request.get("AutoMLJobObjective")
    metric = objective.get("MetricName") if isinstance(objective, Mapping) else None
    if problem is not None and problem not in PROBLEM_TYPES:
        errors.append(f"ProblemType: {problem!r} must be one of {sorted(PROBLEM_TYPES)}")
    if objective is not None and not metric:
        errors.append("AutoMLJobObjective.MetricName: required when AutoMLJobObjective is given")
    if (problem is None) != (objective is None):
        errors.append(
            "ProblemType and AutoMLJobObjective: give both or neither (neither lets Autopilot infer them)"
        )
    if problem in PROBLEM_TYPES and metric and metric not in METRICS_BY_PROBLEM_TYPE[problem]:
        errors.append(
            f"AutoMLJobObjective.MetricName: {metric!r} is not valid for {problem}; "
            f"allowed: {list(METRICS_BY_PROBLEM_TYPE[problem])}"
        )
    return errors


def _job_config_errors(config: Any) -> list[str]:
    field = "AutoMLJobConfig"
    if config is None:
        return []
    if not isinstance(config, Mapping):
        return [f"{field}: must be a mapping"]
    errors: list[str] = []
    criteria = config.get("CompletionCriteria") or {}
    max_candidates = criteria.get("MaxCandidates")
    lo, hi = MAX_CANDIDATES_RANGE
    if max_candidates is not None and (
        isinstance(max_candidates, bool)
        or not isinstance(max_candidates, int)
        or not lo <= max_candidates <= hi
    ):
        errors.append(
            f"{field}.CompletionCriteria.MaxCandidates: {max_candidates!r} must be an integer from {lo} to {hi}"
        )
    for key in ("MaxRuntimePerTrainingJobInSeconds", "MaxAutoMLJobRuntimeInSeconds"):
        value = criteria.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            errors.append(f"{field}.CompletionCriteria.{key}: {value!r} must be a positive integer")
    split = config.get("DataSplitConfig") or {}
    fraction = split.get("ValidationFraction")
    if fraction is not None and (
        isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1
    ):
        errors.append(
            f"{field}.DataSplitConfig.ValidationFraction: {fraction!r} must be greater than 0 and less than 1"
        )
    mode = config.get("Mode", "AUTO")
    if mode not in MODES:
        errors.append(f"{field}.Mode: {mode!r} must be one of {sorted(MODES)}")
    algorithms_config = (config.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig")
    if algorithms_config is not None:
        path = f"{field}.CandidateGenerationConfig.AlgorithmsConfig"
        if mode == "AUTO":
            errors.append(
                f"{path}: not allowed when Mode is AUTO; set Mode to ENSEMBLING or HYPERPARAMETER_TUNING"
            )
        elif not isinstance(algorithms_config, list) or len(algorithms_config) > 1:
            errors.append(f"{path}: must be a list with at most one entry")
        elif mode in ALGORITHMS_BY_MODE:
            for entry in algorithms_config:
                chosen = entry.get("AutoMLAlgorithms") or [] if isinstance(entry, Mapping) else []
                bad = sorted(set(chosen) - set(ALGORITHMS_BY_MODE[mode]))
                if bad:
                    errors.append(
                        f"{path}[0].AutoMLAlgorithms: {bad} not available in {mode} mode; "
                        f"allowed: {sorted(ALGORITHMS_BY_MODE[mode])}"
                    )
    return errors


def _deploy_config_errors(request: Mapping[str, Any]) -> list[str]:
    cfg = request.get("ModelDeployConfig")
    if cfg is None:
        return []
    if not isinstance(cfg, Mapping):
        return ["ModelDeployConfig: must be a mapping"]
    errors: list[str] = []
    auto = cfg.get("AutoGenerateEndpointName", False)
    name = cfg.get("EndpointName")
    if auto and name:
        errors.append(
            "ModelDeployConfig: EndpointName must not be given when AutoGenerateEndpointName is true"
        )
    if not auto and not name:
        errors.append("ModelDeployConfig.EndpointName: required when AutoGenerateEndpointName is false")
    if request.get("GenerateCandidateDefinitionsOnly") and (auto or name):
        errors.append(
            "ModelDeployConfig: nothing can be deployed when GenerateCandidateDefinitionsOnly is true"
        )
    return errors


def _tag_errors(tags: Any) -> list[str]:
    if tags is None:
        return []
    if not isinstance(tags, list):
        return ["Tags: must be a list of {'Key': ..., 'Value': ...}"]
    errors: list[str] = []
    if len(tags) > MAX_TAGS:
        errors.append(f"Tags: {len(tags)} tags given; at most {MAX_TAGS} allowed")
    for i, tag in enumerate(tags):
        key = tag.get("Key") if isinstance(tag, Mapping) else None
        value = tag.get("Value", "") if isinstance(tag, Mapping) else None
        if not isinstance(key, str) or not 1 <= len(key) <= 128:
            errors.append(f"Tags[{i}].Key: required, 1 to 128 characters")
        if not isinstance(value, str) or len(value) > 256:
            errors.append(f"Tags[{i}].Value: a string of at most 256 characters")
    return errors


def create_request_errors(request: Mapping[str, Any]) -> list[str]:
    """
    Every rule a CreateAutoMLJob request breaks, as messages naming the field and the rule.

    :param request: the keyword arguments for ``create_auto_ml_job``.
    """
    errors: list[str] = []
    unknown = sorted(set(request) - KNOWN_REQUEST_KEYS)
    if unknown:
        errors.append(f"{unknown}: unknown CreateAutoMLJob field(s); known: {sorted(KNOWN_REQUEST_KEYS)}")
    errors += job_name_errors(request.get("AutoMLJobName"))
    errors += _channel_errors(request.get("InputDataConfig"))
    output = request.get("OutputDataConfig")
    if not isinstance(output, Mapping):
        errors.append("OutputDataConfig.S3OutputPath: required, an S3 URI such as s3://bucket/output")
    else:
        errors += _s3_uri_errors(output.get("S3OutputPath"), "OutputDataConfig.S3OutputPath")
    role = request.get("RoleArn")
    if not isinstance(role, str) or not ROLE_ARN_LENGTH[0] <= len(role) <= ROLE_ARN_LENGTH[1]:
        errors.append(f"RoleArn: required, {ROLE_ARN_LENGTH[0]} to {ROLE_ARN_LENGTH[1]} characters")
    elif not ROLE_ARN_PATTERN.fullmatch(role):
        errors.append(
            f"RoleArn: {role!r} must be an IAM role ARN such as arn:aws:iam::123456789012:role/MyRole"
        )
    errors += _objective_errors(request)
    errors += _job_config_errors(request.get("AutoMLJobConfig"))
    gen = request.get("GenerateCandidateDefinitionsOnly")
    if gen is not None and not isinstance(gen, bool):
        errors.append(f"GenerateCandidateDefinitionsOnly: {gen!r} must be true or false")
    errors += _deploy_config_errors(request)
    errors += _tag_errors(request.get("Tags"))
    return errors


def validate_create_request(request: Mapping[str, Any]) -> None:
    """
    Raise :class:`AutopilotValidationError` listing every broken rule; return quietly when valid.

    :param request: the keyword arguments for ``create_auto_ml_job``.
    """
    raise_if(create_request_errors(request))

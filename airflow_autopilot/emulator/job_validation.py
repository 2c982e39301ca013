"""Server-side validation of CreateAutoMLJob requests, as SageMaker does it.

Every check raises :class:`moto.sagemaker.exceptions.ValidationError` (error code
``ValidationException``, HTTP 400), which boto3 exposes as ``ClientError``.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from moto.sagemaker.exceptions import ValidationError

from airflow_autopilot.core.job import MINIMIZED_METRICS
from airflow_autopilot.core.validation import (
    ALGORITHMS_BY_MODE,
    CONTENT_TYPES,
    METRICS_BY_PROBLEM_TYPE,
    MODES,
    PROBLEM_TYPES,
)
from airflow_autopilot.core.validation import JOB_NAME_PATTERN as JOB_NAME_RE
from airflow_autopilot.core.validation import ROLE_ARN_PATTERN as ROLE_ARN_RE
from airflow_autopilot.core.validation import S3_DATA_TYPES_V1 as V1_S3_DATA_TYPES
from airflow_autopilot.core.validation import S3_URI_PATTERN as S3_URI_RE
from airflow_autopilot.emulator import controls

# The rules have one home, airflow_autopilot.core.validation, shared with the client side.
ENDPOINT_NAME_RE = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
DEFAULT_METRIC = {problem: metrics[0] for problem, metrics in METRICS_BY_PROBLEM_TYPE.items()}
__all__ = [
    "ALGORITHMS_BY_MODE",
    "CONTENT_TYPES",
    "DEFAULT_METRIC",
    "JOB_NAME_RE",
    "METRICS_BY_PROBLEM_TYPE",
    "MINIMIZED_METRICS",
    "MODES",
    "PROBLEM_TYPES",
    "ROLE_ARN_RE",
    "S3_URI_RE",
    "V1_S3_DATA_TYPES",
]


def _fail(message: str) -> NoReturn:
    raise ValidationError(message=message)


def _constraint(value: Any, where: str, constraint: str) -> NoReturn:
    _fail(
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: {constraint}"
    )


def validate_job_name(name: Any, where: str = "autoMLJobName") -> None:
    """Check an AutoML job name's length and pattern.

    :param name: the requested name.
    :param where: the parameter path used in the error message.
    """
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        _constraint(name, where, "Member must have length between 1 and 32")
    if not JOB_NAME_RE.fullmatch(name):
        _constraint(
            name, where, "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}"
        )


def _validate_channels(channels: Any) -> None:
    if not isinstance(channels, list) or not 1 <= len(channels) <= 2:
        _constraint(channels, "inputDataConfig", "Member must have length between 1 and 2")
    kinds = [c.get("ChannelType") or "training" for c in channels]
    for kind in kinds:
        if kind not in ("training", "validation"):
            _constraint(
                kind,
                "inputDataConfig.member.channelType",
                "Member must satisfy enum value set: [training, validation]",
            )
    if len(channels) == 2 and sorted(kinds) != ["training", "validation"]:
        _fail("InputDataConfig with two channels must have one 'training' and one 'validation' channel.")
    if len(channels) == 1 and kinds[0] != "training":
        _fail("InputDataConfig must contain a 'training' channel.")
    targets = {c.get("TargetAttributeName") for c in channels}
    content_types = {c.get("ContentType") or CONTENT_TYPES[0] for c in channels}
    if len(targets) > 1:
        _fail("TargetAttributeName must be the same for the training and validation channels.")
    if len(content_types) > 1:
        _fail("ContentType must be the same for the training and validation channels.")
    for channel in channels:
        if not channel.get("TargetAttributeName"):
            _constraint(
                "",
                "inputDataConfig.member.targetAttributeName",
                "Member must have length greater than or equal to 1",
            )
        content_type = channel.get("ContentType") or CONTENT_TYPES[0]
        if content_type not in CONTENT_TYPES:
            _fail(f"ContentType '{content_type}' is not supported. Supported: {', '.join(CONTENT_TYPES)}.")
        compression = channel.get("CompressionType") or "None"
        if compression not in ("None", "Gzip"):
            _constraint(
                compression,
                "inputDataConfig.member.compressionType",
                "Member must satisfy enum value set: [None, Gzip]",
            )
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            _fail("InputDataConfig channels need DataSource.S3DataSource.")
        if source.get("S3DataType") not in V1_S3_DATA_TYPES:
            _fail(
                f"S3DataType '{source.get('S3DataType')}' is not supported by CreateAutoMLJob; "
                f"use one of {', '.join(V1_S3_DATA_TYPES)} (AugmentedManifestFile needs CreateAutoMLJobV2)."
            )
        uri = source.get("S3Uri") or ""
        if len(uri) > 1024 or not S3_URI_RE.fullmatch(uri):
            _constraint(
                uri,
                "inputDataConfig.member.dataSource.s3DataSource.s3Uri",
                "Member must satisfy regular expression pattern: (https|s3)://([^/]+)/?(.*)",
            )


def _validate_objective(problem_type: str | None, objective: dict[str, Any] | None) -> None:
    if problem_type is not None and problem_type not in PROBLEM_TYPES:
        _constraint(
            problem_type, "problemType", f"Member must satisfy enum value set: [{', '.join(PROBLEM_TYPES)}]"
        )
    if objective is None:
        return
    metric = objective.get("MetricName")
    known = {m for metrics in METRICS_BY_PROBLEM_TYPE.values() for m in metrics}
    if metric not in known:
        _fail(f"The objective metric '{metric}' is not supported for tabular AutoML jobs.")
    if problem_type is not None and metric not in METRICS_BY_PROBLEM_TYPE[problem_type]:
        allowed = ", ".join(METRICS_BY_PROBLEM_TYPE[problem_type])
        _fail(
            f"The objective metric '{metric}' is not valid for problem type {problem_type}. "
            f"Valid metrics: {allowed}."
        )


def _validate_job_config(config: dict[str, Any] | None) -> None:
    config = config or {}
    criteria = config.get("CompletionCriteria") or {}
    max_candidates = criteria.get("MaxCandidates")
    if max_candidates is not None and not 1 <= int(max_candidates) <= 750:
        _constraint(
            max_candidates,
            "autoMLJobConfig.completionCriteria.maxCandidates",
            "Member must have value between 1 and 750",
        )
    for key in ("MaxRuntimePerTrainingJobInSeconds", "MaxAutoMLJobRuntimeInSeconds"):
        value = criteria.get(key)
        if value is not None and int(value) < 1:
            _constraint(
                value,
                f"autoMLJobConfig.completionCriteria.{key[0].lower() + key[1:]}",
                "Member must have value greater than or equal to 1",
            )
    per_job = criteria.get("MaxRuntimePerTrainingJobInSeconds")
    total = criteria.get("MaxAutoMLJobRuntimeInSeconds")
    if per_job is not None and total is not None and int(per_job) > int(total):
        _fail("MaxRuntimePerTrainingJobInSeconds must not exceed MaxAutoMLJobRuntimeInSeconds.")
    split = config.get("DataSplitConfig") or {}
    fraction = split.get("ValidationFraction")
    if fraction is not None and not 0 < float(fraction) < 1:
        _fail(f"ValidationFraction must be greater than 0 and less than 1, got {fraction}.")
    mode = config.get("Mode") or "AUTO"
    if mode not in MODES:
        _constraint(mode, "autoMLJobConfig.mode", f"Member must satisfy enum value set: [{', '.join(MODES)}]")
    algorithms_config = (config.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig")
    if algorithms_config:
        if mode == "AUTO":
            _fail(
                "AlgorithmsConfig cannot be set when Mode is AUTO. Set Mode to ENSEMBLING or HYPERPARAMETER_TUNING."
            )
        if len(algorithms_config) > 1:
            _constraint(
                algorithms_config,
                "autoMLJobConfig.candidateGenerationConfig.algorithmsConfig",
                "Member must have length less than or equal to 1",
            )
        allowed = ALGORITHMS_BY_MODE[mode]
        for entry in algorithms_config:
            chosen = entry.get("AutoMLAlgorithms") or []
            if not chosen:
                _fail("AutoMLAlgorithms must list at least one algorithm.")
            wrong = [a for a in chosen if a not in allowed]
            if wrong:
                _fail(
                    f"Algorithms {wrong} are not supported in {mode} mode. "
                    f"Supported algorithms: {', '.join(allowed)}."
                )


def _validate_deploy_config(config: dict[str, Any] | None) -> None:
    if config is None:
        return
    auto = bool(config.get("AutoGenerateEndpointName", False))
    name = config.get("EndpointName")
    if auto and name:
        _fail("Validation Error: An EndpointName cannot be provided while AutoGenerateEndpointName is True.")
    if not auto and not name:
        _fail("Validation Error: EndpointName must be provided when AutoGenerateEndpointName is False.")
    if name and (len(name) > 63 or not ENDPOINT_NAME_RE.fullmatch(name)):
        _constraint(
            name,
            "modelDeployConfig.endpointName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}",
        )


def _validate_tags(tags: list[dict[str, str]] | None) -> None:
    if tags and len(tags) > 50:
        _constraint("tags", "tags", "Member must have length less than or equal to 50")
    values = controls.tags_to_dict(tags)
    outcome = values.get(controls.TAG_OUTCOME)
    if outcome is not None and outcome not in controls.OUTCOMES:
        _fail(f"Unknown {controls.TAG_OUTCOME} value '{outcome}'. Known: {', '.join(controls.OUTCOMES)}.")
    stage = values.get(controls.TAG_STAGE_SECONDS)
    if stage is not None:
        try:
            ok = float(stage) > 0
        except ValueError:
            ok = False
        if not ok:
            _fail(f"{controls.TAG_STAGE_SECONDS} must be a positive number, got '{stage}'.")
    for key in (controls.TAG_THROTTLE, controls.TAG_SERVER_ERRORS, controls.TAG_NOT_FOUND):
        raw = values.get(key)
        if raw is not None and (not raw.isdigit()):
            _fail(f"{key} must be a non-negative integer, got '{raw}'.")


def validate_create_request(params: dict[str, Any]) -> None:
    """Validate a CreateAutoMLJob request like SageMaker does; raise ``ValidationException``.

    :param params: the parsed request parameters.
    """
    validate_job_name(params.get("AutoMLJobName"))
    _validate_channels(params.get("InputDataConfig"))
    output = (params.get("OutputDataConfig") or {}).get("S3OutputPath") or ""
    if len(output) > 1024 or not S3_URI_RE.fullmatch(output):
        _constraint(
            output,
            "outputDataConfig.s3OutputPath",
            "Member must satisfy regular expression pattern: (https|s3)://([^/]+)/?(.*)",
        )
    role = params.get("RoleArn") or ""
    if not 20 <= len(role) <= 2048 or not ROLE_ARN_RE.fullmatch(role):
        _constraint(
            role,
            "roleArn",
            "Member must satisfy regular expression pattern: arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+",
        )
    _validate_objective(params.get("ProblemType"), params.get("AutoMLJobObjective"))
    _validate_job_config(params.get("AutoMLJobConfig"))
    _validate_deploy_config(params.get("ModelDeployConfig"))
    _validate_tags(params.get("Tags"))

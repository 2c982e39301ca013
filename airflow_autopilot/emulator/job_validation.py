"""CreateAutoMLJob validation with SageMaker's own messages, raised as moto's ``ValidationException``.

The rules come from :mod:`airflow_autopilot.core.validation`; only the wording is the server's.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

from moto.sagemaker.exceptions import ValidationError

from airflow_autopilot.core.validation import (
    ALGORITHMS_BY_MODE,
    CHANNEL_TYPES,
    COMPRESSION_TYPES,
    CONTENT_TYPES,
    JOB_NAME_MAX_LENGTH,
    JOB_NAME_PATTERN,
    MAX_CANDIDATES_RANGE,
    MAX_TAGS,
    METRICS_BY_PROBLEM_TYPE,
    MODES,
    PROBLEM_TYPES,
    ROLE_ARN_LENGTH,
    ROLE_ARN_PATTERN,
    S3_DATA_TYPES_V1,
    S3_URI_MAX_LENGTH,
    S3_URI_PATTERN,
)
from airflow_autopilot.core.validation_v2 import create_v2_request_errors
from airflow_autopilot.emulator import controls, settings

ENDPOINT_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
ENDPOINT_NAME_MAX_LENGTH = 63


def _fail(message: str) -> NoReturn:
    raise ValidationError(message=message)


def _constraint(value: Any, where: str, constraint: str) -> NoReturn:
    _fail(
        f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: {constraint}"
    )


def _validate_job_name(name: Any) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= JOB_NAME_MAX_LENGTH:
        _constraint(name, "autoMLJobName", f"Member must have length between 1 and {JOB_NAME_MAX_LENGTH}")
    if not JOB_NAME_PATTERN.fullmatch(name):
        _constraint(
            name,
            "autoMLJobName",
            f"Member must satisfy regular expression pattern: {JOB_NAME_PATTERN.pattern}",
        )


def _validate_channels(channels: Any) -> None:
    if not isinstance(channels, list) or not 1 <= len(channels) <= 2:
        _constraint(channels, "inputDataConfig", "Member must have length between 1 and 2")
    kinds = [c.get("ChannelType") or CHANNEL_TYPES[0] for c in channels]
    for kind in kinds:
        if kind not in CHANNEL_TYPES:
            _constraint(
                kind,
                "inputDataConfig.member.channelType",
                f"Member must satisfy enum value set: [{', '.join(CHANNEL_TYPES)}]",
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
        compression = channel.get("CompressionType") or COMPRESSION_TYPES[0]
        if compression not in COMPRESSION_TYPES:
            _constraint(
                compression,
                "inputDataConfig.member.compressionType",
                f"Member must satisfy enum value set: [{', '.join(COMPRESSION_TYPES)}]",
            )
        source = (channel.get("DataSource") or {}).get("S3DataSource")
        if not source:
            _fail("InputDataConfig channels need DataSource.S3DataSource.")
        if source.get("S3DataType") not in S3_DATA_TYPES_V1:
            _fail(
                f"S3DataType '{source.get('S3DataType')}' is not supported by CreateAutoMLJob; "
                f"use one of {', '.join(S3_DATA_TYPES_V1)} (AugmentedManifestFile needs CreateAutoMLJobV2)."
            )
        _validate_s3_uri(source.get("S3Uri"), "inputDataConfig.member.dataSource.s3DataSource.s3Uri")


def _validate_s3_uri(uri: Any, where: str) -> None:
    uri = uri or ""
    if len(uri) > S3_URI_MAX_LENGTH or not S3_URI_PATTERN.fullmatch(uri):
        _constraint(uri, where, f"Member must satisfy regular expression pattern: {S3_URI_PATTERN.pattern}")


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
    low, high = MAX_CANDIDATES_RANGE
    if max_candidates is not None and not low <= int(max_candidates) <= high:
        _constraint(
            max_candidates,
            "autoMLJobConfig.completionCriteria.maxCandidates",
            f"Member must have value between {low} and {high}",
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
    if name and (len(name) > ENDPOINT_NAME_MAX_LENGTH or not ENDPOINT_NAME_PATTERN.fullmatch(name)):
        _constraint(
            name,
            "modelDeployConfig.endpointName",
            f"Member must satisfy regular expression pattern: {ENDPOINT_NAME_PATTERN.pattern}",
        )


def _validate_tags(tags: list[dict[str, str]] | None) -> None:
    if tags and len(tags) > MAX_TAGS:
        _constraint("tags", "tags", f"Member must have length less than or equal to {MAX_TAGS}")
    values = controls.tags_to_dict(tags)
    outcome = values.get(controls.TAG_OUTCOME)
    if outcome is not None and outcome not in controls.OUTCOMES:
        _fail(f"Unknown {controls.TAG_OUTCOME} value '{outcome}'. Known: {', '.join(controls.OUTCOMES)}.")
    stage = values.get(controls.TAG_STAGE_SECONDS)
    if stage is not None:
        try:
            ok = settings.is_positive_number(float(stage))
        except ValueError:
            ok = False
        if not ok:
            _fail(f"{controls.TAG_STAGE_SECONDS} must be a positive, finite number, got '{stage}'.")
    for key in (controls.TAG_THROTTLE, controls.TAG_SERVER_ERRORS, controls.TAG_NOT_FOUND):
        raw = values.get(key)
        if raw is not None and (not raw.isdigit()):
            _fail(f"{key} must be a non-negative integer, got '{raw}'.")


def validate_create_request(params: dict[str, Any]) -> None:
    """Validate a CreateAutoMLJob request like SageMaker does; raise ``ValidationException``.

    :param params: the parsed request parameters.
    """
    _validate_job_name(params.get("AutoMLJobName"))
    _validate_channels(params.get("InputDataConfig"))
    _validate_s3_uri(
        (params.get("OutputDataConfig") or {}).get("S3OutputPath"), "outputDataConfig.s3OutputPath"
    )
    role = params.get("RoleArn") or ""
    low, high = ROLE_ARN_LENGTH
    if not low <= len(role) <= high or not ROLE_ARN_PATTERN.fullmatch(role):
        _constraint(
            role, "roleArn", f"Member must satisfy regular expression pattern: {ROLE_ARN_PATTERN.pattern}"
        )
    _validate_objective(params.get("ProblemType"), params.get("AutoMLJobObjective"))
    _validate_job_config(params.get("AutoMLJobConfig"))
    _validate_deploy_config(params.get("ModelDeployConfig"))
    _validate_tags(params.get("Tags"))


def validate_create_v2_request(params: dict[str, Any]) -> None:
    """Validate a CreateAutoMLJobV2 request (every problem type); raise ``ValidationException``.

    The V2 rules are :mod:`airflow_autopilot.core.validation_v2`'s; the emulator's own tags
    (outcome, stage seconds, faults) are checked as for V1.

    :param params: the parsed request parameters.
    """
    _validate_job_name(params.get("AutoMLJobName"))
    errors = create_v2_request_errors(params)
    if errors:
        count = len(errors)
        _fail(f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(errors)}")
    _validate_tags(params.get("Tags"))

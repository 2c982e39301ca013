"""Building a CreateAutoMLJob request from operator parameters, and naming the parameter behind
each validation error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.naming import OWNER_TAG_KEY, RESERVED_TAG_PREFIX
from airflow_autopilot.core.validation import (
    KNOWN_REQUEST_KEYS,
    MAX_TAGS,
    METRICS_BY_PROBLEM_TYPE,
    create_request_errors,
    default_metric,
)
from airflow_autopilot.exceptions import AutopilotValidationError

#: Request path prefix -> operator parameter(s), longest prefixes first when matching.
PARAMETER_FOR_FIELD: Mapping[str, str] = {
    "AutoMLJobName": "job_name",
    "InputDataConfig": "s3_input_uri / target_attribute_name / input_data_config",
    "OutputDataConfig": "s3_output_path",
    "RoleArn": "role_arn",
    "ProblemType and AutoMLJobObjective": "problem_type, objective_metric",
    "ProblemType": "problem_type",
    "AutoMLJobObjective": "objective_metric",
    "AutoMLJobConfig.CompletionCriteria.MaxCandidates": "max_candidates",
    "AutoMLJobConfig.CompletionCriteria.MaxRuntimePerTrainingJobInSeconds": (
        "max_runtime_per_training_job_in_seconds"
    ),
    "AutoMLJobConfig.CompletionCriteria.MaxAutoMLJobRuntimeInSeconds": "max_auto_ml_job_runtime_in_seconds",
    "AutoMLJobConfig.DataSplitConfig": "validation_fraction",
    "AutoMLJobConfig.Mode": "mode",
    "AutoMLJobConfig.CandidateGenerationConfig.AlgorithmsConfig": "algorithms",
    "AutoMLJobConfig.SecurityConfig": "security_config",
    "AutoMLJobConfig": "extras",
    "GenerateCandidateDefinitionsOnly": "generate_candidate_definitions_only",
    "ModelDeployConfig": "model_deploy_config",
    "Tags": f"tags / extras['Tags']; the operator adds {OWNER_TAG_KEY!r}",
}
_FIELDS_LONGEST_FIRST = sorted(PARAMETER_FOR_FIELD, key=len, reverse=True)
#: A channel's fields -> the operator parameter that sets them when the operator builds the channels.
CHANNEL_FIELD_PARAMETERS: Mapping[str, str] = {
    "ContentType": "content_type",
    "CompressionType": "compression_type",
    "TargetAttributeName": "target_attribute_name",
    "DataSource.S3DataSource.S3DataType": "s3_data_type",
    "ChannelType": "validation_s3_input_uri",
}
_CHANNEL_FIELD = re.compile(r"InputDataConfig\[(\d+)\]\.([A-Za-z0-9.]+)")


def _channel_parameter(error: str, channels_given: bool) -> str | None:
    """The parameter behind an ``InputDataConfig[i].<field>`` message, or ``None`` for other messages."""
    match = _CHANNEL_FIELD.match(error)
    if match is None:
        return None
    if channels_given:
        return "input_data_config"
    index, path = int(match.group(1)), match.group(2)
    if path.startswith("DataSource.S3DataSource.S3Uri"):
        return "validation_s3_input_uri" if index == 1 else "s3_input_uri"
    return next((p for f, p in CHANNEL_FIELD_PARAMETERS.items() if path.startswith(f)), None)


def with_parameter_names(errors: list[str], *, channels_given: bool = False) -> list[str]:
    """
    Append ``(operator parameter: ...)`` to each validation message whose field maps to one.

    :param errors: messages from :func:`airflow_autopilot.core.validation.create_request_errors`.
    :param channels_given: the channels came from ``input_data_config`` (not the simple parameters).
    """
    out = []
    for error in errors:
        param = _channel_parameter(error, channels_given) or next(
            (PARAMETER_FOR_FIELD[f] for f in _FIELDS_LONGEST_FIRST if error.startswith(f)), None
        )
        out.append(f"{error} (operator parameter: {param})" if param else error)
    return out


def _maybe_int(value: Any) -> Any:
    """Jinja renders strings: turn ``"10"`` back into ``10``; anything else is left for validation."""
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return value


def _maybe_number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if v is not None}


def deep_merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """
    ``base`` updated with ``extra``; nested mappings merge key by key, anything else is replaced.

    :param base: the request built from parameters.
    :param extra: the ``extras`` parameter.
    """
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def tags_as_list(tags: Any, field: str = "tags") -> tuple[list[dict[str, Any]] | None, list[str]]:
    """
    Accept ``{"key": "value"}`` or ``[{"Key": ..., "Value": ...}]``; report keys this package reserves.

    :param tags: the ``tags`` parameter (or ``extras["Tags"]``).
    :param field: the parameter, for messages.
    :return: the tags as a list (``None`` when not given or unusable) and the problems found.
    """
    if tags is None:
        return None, []
    if isinstance(tags, Mapping):
        tags = [{"Key": str(k), "Value": "" if v is None else str(v)} for k, v in tags.items()]
    if not isinstance(tags, list):
        return None, [f"{field}: must be a dict {{key: value}} or a list of {{'Key': ..., 'Value': ...}}"]
    reserved = [
        t["Key"]
        for t in tags
        if isinstance(t, Mapping)
        and isinstance(t.get("Key"), str)
        and t["Key"].startswith(RESERVED_TAG_PREFIX)
    ]
    errors = [
        f"{field}: the key {key!r} is reserved; the operator sets {RESERVED_TAG_PREFIX}* tags to mark its jobs"
        for key in reserved
    ]
    return list(tags), errors


def merge_tags(*groups: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """
    One tag list from several: a key appears once, with the value of the last group that sets it,
    at the place it first appeared. Entries without a usable key are kept for validation to report.

    :param groups: tag lists, later ones winning (the operator's own tags last).
    """
    merged: dict[str, dict[str, Any]] = {}
    unusable: list[dict[str, Any]] = []
    for group in groups:
        for tag in group or []:
            key = tag.get("Key") if isinstance(tag, Mapping) else None
            if isinstance(key, str):
                merged[key] = dict(tag)
            else:
                unusable.append(tag)
    return [*merged.values(), *unusable]


def request_tags(p: Mapping[str, Any], errors: list[str]) -> tuple[list[dict[str, str]], Any]:
    """
    A create request's Tags: the ``tags`` parameter's, then ``extras["Tags"]``, then the owner tag
    (ours must survive, as a retry finds its job by it), counted together against SageMaker's limit.

    :param p: the operator's parameters (``tags``, ``extras``, ``owner_tag``).
    :param errors: where a problem is appended.
    :return: the tags, and ``extras`` without its ``Tags``.
    """
    given_tags, tag_errors = tags_as_list(p.get("tags"))
    errors.extend(tag_errors)
    extras = p.get("extras")
    extra_tags = None
    if isinstance(extras, Mapping) and "Tags" in extras:
        extra_tags, tag_errors = tags_as_list(extras["Tags"], "extras['Tags']")
        errors.extend(tag_errors)
        extras = {k: v for k, v in extras.items() if k != "Tags"}
    ours = [p["owner_tag"]] if p.get("owner_tag") is not None else []
    users = merge_tags(given_tags, extra_tags)
    if ours and len(users) >= MAX_TAGS:
        errors.append(
            f"tags: {len(users)} tags given (tags and extras['Tags'] together); at most {MAX_TAGS - 1} "
            f"allowed: SageMaker takes at most {MAX_TAGS} and the operator adds its own {OWNER_TAG_KEY!r} tag"
        )
        users = users[: MAX_TAGS - 1]  # the count is reported above, once; nothing is sent anyway
    return merge_tags(users, ours), extras


def build_create_request(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """
    Assemble a CreateAutoMLJob request from the operator's (rendered) parameters.

    :param params: parameter name -> value, as the operator holds them; ``job_name`` is already
        resolved, ``owner_tag`` is the ownership tag to add.
    :return: the request and the operator-level errors found while building it (the request rules
        are checked afterwards by :func:`validate_operator_request`).
    """
    errors: list[str] = []
    p = dict(params)

    # --- input channels ---------------------------------------------------------------------------
    channels: Any
    if p.get("input_data_config") is not None:
        channels = p["input_data_config"]
        for param in ("s3_input_uri", "validation_s3_input_uri", "target_attribute_name"):
            if p.get(param) is not None:
                errors.append(
                    f"{param}: give either input_data_config (full channel list) or "
                    "s3_input_uri + target_attribute_name, not both"
                )
    else:
        channels = []
        for uri, channel_type in (
            (p.get("s3_input_uri"), "training"),
            (p.get("validation_s3_input_uri"), "validation"),
        ):
            if channel_type == "validation" and uri is None:
                continue
            channel: dict[str, Any] = {
                "DataSource": {
                    "S3DataSource": {"S3DataType": p.get("s3_data_type") or "S3Prefix", "S3Uri": uri}
                },
                "TargetAttributeName": p.get("target_attribute_name"),
            }
            channel.update(
                _drop_none(
                    {"ContentType": p.get("content_type"), "CompressionType": p.get("compression_type")}
                )
            )
            if p.get("validation_s3_input_uri") is not None:
                channel["ChannelType"] = channel_type
            channels.append(channel)

    # --- objective --------------------------------------------------------------------------------
    problem_type = p.get("problem_type")
    metric = p.get("objective_metric")
    if isinstance(problem_type, str) and problem_type in METRICS_BY_PROBLEM_TYPE and metric is None:
        metric = default_metric(problem_type)  # SageMaker wants both or neither

    # --- job config -------------------------------------------------------------------------------
    algorithms = p.get("algorithms")
    if algorithms is not None and not isinstance(algorithms, (list, tuple)):
        errors.append(f"algorithms: {algorithms!r} must be a list of algorithm names, such as ['xgboost']")
        algorithms = None
    candidate_generation = _drop_none(
        {
            "FeatureSpecificationS3Uri": p.get("feature_specification_s3_uri"),
            "AlgorithmsConfig": [{"AutoMLAlgorithms": list(algorithms)}] if algorithms is not None else None,
        }
    )
    completion = _drop_none(
        {
            "MaxCandidates": _maybe_int(p.get("max_candidates")),
            "MaxRuntimePerTrainingJobInSeconds": _maybe_int(p.get("max_runtime_per_training_job_in_seconds")),
            "MaxAutoMLJobRuntimeInSeconds": _maybe_int(p.get("max_auto_ml_job_runtime_in_seconds")),
        }
    )
    fraction = p.get("validation_fraction")
    job_config = _drop_none(
        {
            "CompletionCriteria": completion or None,
            "SecurityConfig": p.get("security_config"),
            "CandidateGenerationConfig": candidate_generation or None,
            "DataSplitConfig": {"ValidationFraction": _maybe_number(fraction)}
            if fraction is not None
            else None,
            "Mode": p.get("mode"),
        }
    )

    # --- tags: the parameter's, then extras["Tags"], then ours -------------------------------------
    tags, extras = request_tags(p, errors)

    request = _drop_none(
        {
            "AutoMLJobName": p.get("job_name"),
            "InputDataConfig": channels,
            "OutputDataConfig": _drop_none(
                {"S3OutputPath": p.get("s3_output_path"), "KmsKeyId": p.get("output_kms_key_id")}
            ),
            "ProblemType": problem_type,
            "AutoMLJobObjective": {"MetricName": metric} if metric is not None else None,
            "AutoMLJobConfig": job_config or None,
            "RoleArn": p.get("role_arn"),
            "GenerateCandidateDefinitionsOnly": p.get("generate_candidate_definitions_only"),
            "Tags": tags or None,
            "ModelDeployConfig": p.get("model_deploy_config"),
        }
    )
    if extras is not None:
        if isinstance(extras, Mapping):
            request = deep_merge(request, extras)
        else:
            errors.append("extras: must be a dict of CreateAutoMLJob fields")
    return request, errors


def validate_operator_request(
    request: Mapping[str, Any], operator_errors: list[str], *, channels_given: bool = False
) -> list[str]:
    """
    Check the request with the shared rules and raise one error listing every problem.

    Top-level fields unknown to :mod:`airflow_autopilot.core.validation` can only come from ``extras``
    (fields AWS added later): they are passed through unchecked and returned so the caller can log them.

    :param request: the built request.
    :param operator_errors: errors found while building it.
    :param channels_given: the channels came from ``input_data_config`` (for parameter names).
    :return: the unknown top-level fields passed through.
    :raises AutopilotValidationError: naming each field, its rule and the operator parameter.
    """
    passthrough = sorted(set(request) - KNOWN_REQUEST_KEYS)
    known = {k: v for k, v in request.items() if k in KNOWN_REQUEST_KEYS}
    errors = operator_errors + with_parameter_names(
        create_request_errors(known), channels_given=channels_given
    )
    if errors:
        raise AutopilotValidationError(errors)
    return passthrough

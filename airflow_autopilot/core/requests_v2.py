"""Building a CreateAutoMLJobV2 request from operator parameters, naming the parameter behind each
validation error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.naming import OWNER_TAG_KEY
from airflow_autopilot.core.requests import (
    _drop_none,
    _maybe_int,
    _maybe_number,
    deep_merge,
    request_tags,
)
from airflow_autopilot.core.validation_v2 import KNOWN_V2_REQUEST_KEYS, create_v2_request_errors
from airflow_autopilot.exceptions import AutopilotValidationError

#: Request path prefix -> operator parameter(s) of AutopilotCreateJobV2Operator.
PARAMETER_FOR_V2_FIELD: Mapping[str, str] = {
    "AutoMLJobName": "job_name",
    "AutoMLJobInputDataConfig": "s3_input_uri / validation_s3_input_uri / content_type / input_data_config",
    "OutputDataConfig": "s3_output_path",
    "RoleArn": "role_arn",
    "AutoMLJobObjective": "objective_metric",
    "CompletionCriteria.MaxCandidates": "max_candidates",
    "CompletionCriteria.MaxAutoMLJobRuntimeInSeconds": "max_auto_ml_job_runtime_in_seconds",
    "CompletionCriteria.MaxRuntimePerTrainingJobInSeconds": "max_runtime_per_training_job_in_seconds",
    "AutoMLProblemTypeConfig": "problem_type_config",
    "DataSplitConfig": "validation_fraction",
    "ModelDeployConfig": "model_deploy_config",
    "Tags": f"tags / extras['Tags']; the operator adds {OWNER_TAG_KEY!r}",
}


def _parameter(error: str) -> str | None:
    field = error.split(":", 1)[0]
    for key in (
        "CompletionCriteria.MaxCandidates",
        "CompletionCriteria.MaxAutoMLJobRuntimeInSeconds",
        "CompletionCriteria.MaxRuntimePerTrainingJobInSeconds",
    ):
        if key in field:
            return PARAMETER_FOR_V2_FIELD[key]
    return next((p for f, p in PARAMETER_FOR_V2_FIELD.items() if field.startswith(f)), None)


def with_v2_parameter_names(errors: list[str], *, channels_given: bool = False) -> list[str]:
    """
    Append ``(operator parameter: ...)`` to each V2 validation message whose field maps to one.

    :param errors: messages from :func:`~airflow_autopilot.core.validation_v2.create_v2_request_errors`.
    :param channels_given: the channels came from ``input_data_config``.
    """
    out = []
    for error in errors:
        param = _parameter(error)
        if channels_given and error.startswith("AutoMLJobInputDataConfig"):
            param = "input_data_config"
        out.append(f"{error} (operator parameter: {param})" if param else error)
    return out


def build_create_v2_request(params: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """
    Assemble a CreateAutoMLJobV2 request from the V2 operator's (rendered) parameters.

    :param params: parameter name -> value; ``job_name`` is resolved, ``owner_tag`` is the tag to add.
    :return: the request and the operator-level errors found while building it.
    """
    p = dict(params)
    errors: list[str] = []
    channels: Any
    if p.get("input_data_config") is not None:
        channels = p["input_data_config"]
        for param in ("s3_input_uri", "validation_s3_input_uri"):
            if p.get(param) is not None:
                errors.append(
                    f"{param}: give either input_data_config (full channel list) or s3_input_uri, not both"
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
                }
            }
            channel.update(
                _drop_none(
                    {"ContentType": p.get("content_type"), "CompressionType": p.get("compression_type")}
                )
            )
            if p.get("validation_s3_input_uri") is not None:
                channel["ChannelType"] = channel_type
            channels.append(channel)

    problem_config = p.get("problem_type_config")
    completion = _drop_none(
        {
            "MaxCandidates": _maybe_int(p.get("max_candidates")),
            "MaxRuntimePerTrainingJobInSeconds": _maybe_int(p.get("max_runtime_per_training_job_in_seconds")),
            "MaxAutoMLJobRuntimeInSeconds": _maybe_int(p.get("max_auto_ml_job_runtime_in_seconds")),
        }
    )
    if completion:
        if isinstance(problem_config, Mapping) and len(problem_config) == 1:
            key = next(iter(problem_config))
            body = problem_config[key]
            if isinstance(body, Mapping):
                problem_config = {key: deep_merge(body, {"CompletionCriteria": completion})}
        elif problem_config is not None:
            errors.append(
                "max_candidates / max_*_in_seconds: need a problem_type_config with exactly one problem type"
            )

    tags, extras = request_tags(p, errors)
    fraction = p.get("validation_fraction")
    metric = p.get("objective_metric")
    request = _drop_none(
        {
            "AutoMLJobName": p.get("job_name"),
            "AutoMLJobInputDataConfig": channels,
            "OutputDataConfig": _drop_none(
                {"S3OutputPath": p.get("s3_output_path"), "KmsKeyId": p.get("output_kms_key_id")}
            ),
            "AutoMLProblemTypeConfig": problem_config,
            "RoleArn": p.get("role_arn"),
            "Tags": tags or None,
            "SecurityConfig": p.get("security_config"),
            "AutoMLJobObjective": {"MetricName": metric} if metric is not None else None,
            "ModelDeployConfig": p.get("model_deploy_config"),
            "DataSplitConfig": {"ValidationFraction": _maybe_number(fraction)}
            if fraction is not None
            else None,
            "AutoMLComputeConfig": p.get("compute_config"),
        }
    )
    if extras is not None:
        if isinstance(extras, Mapping):
            request = deep_merge(request, extras)
        else:
            errors.append("extras: must be a dict of CreateAutoMLJobV2 fields")
    return request, errors


def validate_operator_v2_request(
    request: Mapping[str, Any], operator_errors: list[str], *, channels_given: bool = False
) -> list[str]:
    """
    Check the V2 request with the shared rules; raise one error listing every problem.

    :param request: the built request.
    :param operator_errors: errors found while building it.
    :param channels_given: the channels came from ``input_data_config``.
    :return: top-level fields unknown to the rules (from ``extras``), passed through unchecked.
    :raises AutopilotValidationError: naming each field, its rule and the operator parameter.
    """
    passthrough = sorted(set(request) - KNOWN_V2_REQUEST_KEYS)
    known = {k: v for k, v in request.items() if k in KNOWN_V2_REQUEST_KEYS}
    errors = operator_errors + with_v2_parameter_names(
        create_v2_request_errors(known), channels_given=channels_given
    )
    if errors:
        raise AutopilotValidationError(errors, subject="Autopilot V2 job request")
    return passthrough

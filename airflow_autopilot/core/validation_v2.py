"""The CreateAutoMLJobV2 request rules (every problem type), each error naming the field and the rule."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeGuard

from airflow_autopilot.core.validation import (
    ALGORITHMS_BY_MODE,
    CHANNEL_TYPES,
    COMPRESSION_TYPES,
    MAX_CANDIDATES_RANGE,
    METRICS_BY_PROBLEM_TYPE,
    MODES,
    PROBLEM_TYPES,
    ROLE_ARN_LENGTH,
    ROLE_ARN_PATTERN,
    _deploy_config_errors,
    _s3_uri_errors,
    _short,
    _tag_errors,
    job_name_errors,
    raise_if,
)

#: ``AutoMLProblemTypeConfig`` member -> ``AutoMLProblemTypeConfigName`` (DescribeAutoMLJobV2).
CONFIG_NAMES: Mapping[str, str] = {
    "TabularJobConfig": "Tabular",
    "TimeSeriesForecastingJobConfig": "TimeSeriesForecasting",
    "TextClassificationJobConfig": "TextClassification",
    "ImageClassificationJobConfig": "ImageClassification",
    "TextGenerationJobConfig": "TextGeneration",
}
#: Objective metrics per non-tabular problem type; the first is SageMaker's default. Text
#: generation takes no objective (candidates are ranked by ValidationLoss).
METRICS_BY_CONFIG: Mapping[str, tuple[str, ...]] = {
    "TimeSeriesForecastingJobConfig": ("AverageWeightedQuantileLoss", "MAPE", "MASE", "RMSE", "WAPE"),
    "TextClassificationJobConfig": ("Accuracy",),
    "ImageClassificationJobConfig": ("Accuracy",),
    "TextGenerationJobConfig": (),
}
#: The metric text-generation candidates are ranked by.
TEXT_GENERATION_METRIC = "ValidationLoss"
#: Forecasting algorithms of ``TimeSeriesForecastingJobConfig.CandidateGenerationConfig``.
FORECAST_ALGORITHMS = frozenset({"cnn-qr", "deepar", "prophet", "npts", "arima", "ets"})
FORECAST_FREQUENCY_PATTERN = re.compile(
    r"1Y|Y|([1-9]|1[0-1])M|M|[1-4]W|W|[1-6]D|D|([1-9]|1[0-9]|2[0-3])H|H|([1-9]|[1-5][0-9])min"
)
#: AWS documents the horizon as at most 500 time steps (and at most a quarter of the series).
FORECAST_HORIZON_RANGE = (1, 500)
FORECAST_QUANTILE_PATTERN = re.compile(r"p[1-9]\d?")
MAX_FORECAST_QUANTILES = 5
ATTRIBUTE_NAME_MAX = 256
MAX_GROUPING_ATTRIBUTES = 5
BASE_MODEL_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9])*")
TEXT_GENERATION_HYPERPARAMETERS = frozenset(
    {"epochCount", "learningRate", "batchSize", "learningRateWarmupSteps"}
)
S3_DATA_TYPES_V2 = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
TABULAR_CONTENT_TYPES = ("text/csv;header=present", "x-application/vnd.amazon+parquet")
IMAGE_CONTENT_TYPES = ("image/png", "image/jpeg", "image/*")
CONTENT_TYPES_BY_CONFIG: Mapping[str, tuple[str, ...]] = {
    "TabularJobConfig": TABULAR_CONTENT_TYPES,
    "TimeSeriesForecastingJobConfig": TABULAR_CONTENT_TYPES,
    "TextClassificationJobConfig": TABULAR_CONTENT_TYPES,
    "ImageClassificationJobConfig": IMAGE_CONTENT_TYPES,
    "TextGenerationJobConfig": TABULAR_CONTENT_TYPES,
}

KNOWN_V2_REQUEST_KEYS = frozenset(
    {
        "AutoMLJobName",
        "AutoMLJobInputDataConfig",
        "OutputDataConfig",
        "AutoMLProblemTypeConfig",
        "RoleArn",
        "Tags",
        "SecurityConfig",
        "AutoMLJobObjective",
        "ModelDeployConfig",
        "DataSplitConfig",
        "AutoMLComputeConfig",
    }
)


def problem_config_key(request: Mapping[str, Any]) -> str | None:
    """The one ``AutoMLProblemTypeConfig`` member a V2 request sets, ``None`` if not exactly one.

    :param request: a CreateAutoMLJobV2 request or DescribeAutoMLJobV2 response.
    """
    config = request.get("AutoMLProblemTypeConfig")
    if not isinstance(config, Mapping):
        return None
    keys = [k for k in config if k in CONFIG_NAMES and config[k] is not None]
    return keys[0] if len(keys) == 1 else None


def allowed_metrics(config_key: str, problem_type: str | None = None) -> tuple[str, ...]:
    """The objective metrics a problem type accepts (tabular: of ``problem_type``, or all when unknown).

    :param config_key: the ``AutoMLProblemTypeConfig`` member.
    :param problem_type: the tabular ``ProblemType``, if given.
    """
    if config_key == "TabularJobConfig":
        if problem_type is not None and problem_type in METRICS_BY_PROBLEM_TYPE:
            return METRICS_BY_PROBLEM_TYPE[problem_type]
        return tuple(dict.fromkeys(m for ms in METRICS_BY_PROBLEM_TYPE.values() for m in ms))
    return METRICS_BY_CONFIG[config_key]


def _int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _attribute_errors(value: Any, field: str) -> list[str]:
    if not isinstance(value, str) or not value:
        return [f"{field}: required, a column name (a non-empty string)"]
    if len(value) > ATTRIBUTE_NAME_MAX:
        return [f"{field}: {len(value)} characters; at most {ATTRIBUTE_NAME_MAX} allowed"]
    return []


def _criteria_errors(criteria: Any, field: str) -> list[str]:
    if criteria is None:
        return []
    if not isinstance(criteria, Mapping):
        return [f"{field}: must be a mapping"]
    errors: list[str] = []
    lo, hi = MAX_CANDIDATES_RANGE
    value = criteria.get("MaxCandidates")
    if value is not None and (not _int(value) or not lo <= value <= hi):
        errors.append(f"{field}.MaxCandidates: {value!r} must be an integer from {lo} to {hi}")
    for key in ("MaxRuntimePerTrainingJobInSeconds", "MaxAutoMLJobRuntimeInSeconds"):
        value = criteria.get(key)
        if value is not None and (not _int(value) or value < 1):
            errors.append(f"{field}.{key}: {value!r} must be a positive integer")
    per_job, total = (
        criteria.get("MaxRuntimePerTrainingJobInSeconds"),
        criteria.get("MaxAutoMLJobRuntimeInSeconds"),
    )
    if _int(per_job) and _int(total) and per_job > total:
        errors.append(
            f"{field}.MaxRuntimePerTrainingJobInSeconds: {per_job} must not exceed MaxAutoMLJobRuntimeInSeconds ({total})"
        )
    return errors


def _tabular_errors(config: Mapping[str, Any], field: str) -> list[str]:
    errors = _attribute_errors(config.get("TargetAttributeName"), f"{field}.TargetAttributeName")
    problem = config.get("ProblemType")
    if problem is not None and problem not in PROBLEM_TYPES:
        errors.append(f"{field}.ProblemType: {problem!r} must be one of {sorted(PROBLEM_TYPES)}")
    weight = config.get("SampleWeightAttributeName")
    if weight is not None and (
        not isinstance(weight, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,256}", weight)
    ):
        errors.append(
            f"{field}.SampleWeightAttributeName: {weight!r} must match [a-zA-Z0-9_-]+ (1 to 256 characters)"
        )
    mode = config.get("Mode", "AUTO")
    if mode not in MODES:
        errors.append(f"{field}.Mode: {mode!r} must be one of {sorted(MODES)}")
    algorithms = (config.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig")
    if algorithms is not None:
        path = f"{field}.CandidateGenerationConfig.AlgorithmsConfig"
        if mode == "AUTO":
            errors.append(
                f"{path}: not allowed when Mode is AUTO; set Mode to ENSEMBLING or HYPERPARAMETER_TUNING"
            )
        elif mode in ALGORITHMS_BY_MODE:
            errors += _algorithm_errors(algorithms, path, ALGORITHMS_BY_MODE[mode], f"{mode} mode")
    gen = config.get("GenerateCandidateDefinitionsOnly")
    if gen is not None and not isinstance(gen, bool):
        errors.append(f"{field}.GenerateCandidateDefinitionsOnly: {gen!r} must be true or false")
    return errors


def _algorithm_errors(algorithms: Any, path: str, allowed: frozenset[str], where: str) -> list[str]:
    if not isinstance(algorithms, list) or len(algorithms) > 1:
        return [f"{path}: must be a list with at most one entry"]
    errors = []
    for entry in algorithms:
        chosen = entry.get("AutoMLAlgorithms") if isinstance(entry, Mapping) else None
        if not isinstance(chosen, list) or not chosen:
            errors.append(f"{path}[0].AutoMLAlgorithms: required, a non-empty list of algorithm names")
            continue
        bad = sorted(set(map(str, chosen)) - allowed)
        if bad:
            errors.append(
                f"{path}[0].AutoMLAlgorithms: {bad} not available in {where}; allowed: {sorted(allowed)}"
            )
    return errors


def _forecasting_errors(config: Mapping[str, Any], field: str) -> list[str]:
    errors: list[str] = []
    frequency = config.get("ForecastFrequency")
    if not isinstance(frequency, str) or not FORECAST_FREQUENCY_PATTERN.fullmatch(frequency):
        errors.append(
            f"{field}.ForecastFrequency: {frequency!r} must be a frequency such as 1Y, 6M, W, 2W, D, H, 30min "
            f"(pattern {FORECAST_FREQUENCY_PATTERN.pattern})"
        )
    horizon = config.get("ForecastHorizon")
    lo, hi = FORECAST_HORIZON_RANGE
    if not _int(horizon) or not lo <= horizon <= hi:
        errors.append(
            f"{field}.ForecastHorizon: {horizon!r} must be an integer from {lo} to {hi} (time steps)"
        )
    quantiles = config.get("ForecastQuantiles")
    if quantiles is not None:
        if not isinstance(quantiles, list) or not 1 <= len(quantiles) <= MAX_FORECAST_QUANTILES:
            errors.append(
                f"{field}.ForecastQuantiles: {_short(quantiles)} must be a list of 1 to {MAX_FORECAST_QUANTILES} quantiles"
            )
        else:
            bad = [
                q for q in quantiles if not isinstance(q, str) or not FORECAST_QUANTILE_PATTERN.fullmatch(q)
            ]
            if bad:
                errors.append(
                    f"{field}.ForecastQuantiles: {bad} must be quantiles p1 to p99, such as p10, p50, p90"
                )
            elif len(set(quantiles)) != len(quantiles):
                errors.append(f"{field}.ForecastQuantiles: {quantiles} lists a quantile twice")
    ts = config.get("TimeSeriesConfig")
    path = f"{field}.TimeSeriesConfig"
    if not isinstance(ts, Mapping):
        errors.append(
            f"{path}: required, with TargetAttributeName, TimestampAttributeName and ItemIdentifierAttributeName"
        )
    else:
        names = []
        for key in ("TargetAttributeName", "TimestampAttributeName", "ItemIdentifierAttributeName"):
            found = _attribute_errors(ts.get(key), f"{path}.{key}")
            errors += found
            if not found:
                names.append(ts[key])
        grouping = ts.get("GroupingAttributeNames")
        if grouping is not None:
            if not isinstance(grouping, list) or not 1 <= len(grouping) <= MAX_GROUPING_ATTRIBUTES:
                errors.append(
                    f"{path}.GroupingAttributeNames: must be a list of 1 to {MAX_GROUPING_ATTRIBUTES} column names"
                )
            else:
                for i, name in enumerate(grouping):
                    found = _attribute_errors(name, f"{path}.GroupingAttributeNames[{i}]")
                    errors += found
                    if not found:
                        names.append(name)
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            errors.append(
                f"{path}: the target, timestamp, item identifier and grouping columns must differ; {repeated} repeated"
            )
    algorithms = (config.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig")
    if algorithms is not None:
        errors += _algorithm_errors(
            algorithms,
            f"{field}.CandidateGenerationConfig.AlgorithmsConfig",
            FORECAST_ALGORITHMS,
            "time-series forecasting",
        )
    holidays = config.get("HolidayConfig")
    if holidays is not None and (not isinstance(holidays, list) or len(holidays) != 1):
        errors.append(f"{field}.HolidayConfig: must be a list of exactly one {{'CountryCode': ...}}")
    return errors


def _text_errors(config: Mapping[str, Any], field: str) -> list[str]:
    errors = _attribute_errors(config.get("ContentColumn"), f"{field}.ContentColumn")
    errors += _attribute_errors(config.get("TargetLabelColumn"), f"{field}.TargetLabelColumn")
    if not errors and config["ContentColumn"] == config["TargetLabelColumn"]:
        errors.append(f"{field}: ContentColumn and TargetLabelColumn must be different columns")
    return errors


def _text_generation_errors(config: Mapping[str, Any], field: str) -> list[str]:
    errors: list[str] = []
    base = config.get("BaseModelName")
    if base is not None and (
        not isinstance(base, str) or len(base) > 256 or not BASE_MODEL_NAME_PATTERN.fullmatch(base)
    ):
        errors.append(
            f"{field}.BaseModelName: {base!r} must be a model name such as Falcon7BInstruct (letters, digits, hyphens; at most 256)"
        )
    params = config.get("TextGenerationHyperParameters")
    if params is not None:
        if not isinstance(params, Mapping) or len(params) > 30:
            errors.append(f"{field}.TextGenerationHyperParameters: must be a mapping of at most 30 entries")
        else:
            unknown = sorted(set(params) - TEXT_GENERATION_HYPERPARAMETERS)
            if unknown:
                errors.append(
                    f"{field}.TextGenerationHyperParameters: {unknown} unknown; allowed: {sorted(TEXT_GENERATION_HYPERPARAMETERS)}"
                )
            bad = sorted(k for k, v in params.items() if not isinstance(v, str))
            if bad:
                errors.append(
                    f"{field}.TextGenerationHyperParameters: values of {bad} must be strings, such as '3'"
                )
    access = config.get("ModelAccessConfig")
    if access is not None and (
        not isinstance(access, Mapping) or not isinstance(access.get("AcceptEula"), bool)
    ):
        errors.append(f"{field}.ModelAccessConfig.AcceptEula: required, true or false")
    return errors


_CONFIG_CHECKS = {
    "TabularJobConfig": _tabular_errors,
    "TimeSeriesForecastingJobConfig": _forecasting_errors,
    "TextClassificationJobConfig": _text_errors,
    "ImageClassificationJobConfig": lambda config, field: [],
    "TextGenerationJobConfig": _text_generation_errors,
}


def _problem_config_errors(config: Any) -> list[str]:
    field = "AutoMLProblemTypeConfig"
    if not isinstance(config, Mapping):
        return [f"{field}: required, a mapping with exactly one of {sorted(CONFIG_NAMES)}"]
    given = [k for k in config if config[k] is not None]
    unknown = sorted(set(given) - set(CONFIG_NAMES))
    if unknown:
        return [f"{field}: {unknown} unknown; give exactly one of {sorted(CONFIG_NAMES)}"]
    if len(given) != 1:
        return [f"{field}: give exactly one of {sorted(CONFIG_NAMES)} (got {len(given)})"]
    key = given[0]
    body = config[key]
    path = f"{field}.{key}"
    if not isinstance(body, Mapping):
        return [f"{path}: must be a mapping"]
    return _CONFIG_CHECKS[key](body, path) + _criteria_errors(
        body.get("CompletionCriteria"), f"{path}.CompletionCriteria"
    )


def _channel_errors(channels: Any, config_key: str | None) -> list[str]:
    field = "AutoMLJobInputDataConfig"
    if not isinstance(channels, list) or not channels:
        return [f"{field}: required, a list of 1 or 2 channels"]
    if len(channels) > 2:
        return [f"{field}: {len(channels)} channels given; at most 2 (training and validation)"]
    content_types = CONTENT_TYPES_BY_CONFIG.get(config_key or "", TABULAR_CONTENT_TYPES + IMAGE_CONTENT_TYPES)
    errors: list[str] = []
    for i, channel in enumerate(channels):
        path = f"{field}[{i}]"
        if not isinstance(channel, Mapping):
            errors.append(f"{path}: must be a mapping")
            continue
        source = channel.get("DataSource")
        s3 = source.get("S3DataSource") if isinstance(source, Mapping) else None
        if not isinstance(s3, Mapping):
            errors.append(f"{path}.DataSource.S3DataSource: required")
        else:
            errors += _s3_uri_errors(s3.get("S3Uri"), f"{path}.DataSource.S3DataSource.S3Uri")
            if s3.get("S3DataType") not in S3_DATA_TYPES_V2:
                errors.append(
                    f"{path}.DataSource.S3DataSource.S3DataType: {s3.get('S3DataType')!r} must be one of {sorted(S3_DATA_TYPES_V2)}"
                )
        if "TargetAttributeName" in channel:
            errors.append(
                f"{path}.TargetAttributeName: not a V2 channel field; the target goes in the problem type config"
            )
        for key, allowed in (
            ("ContentType", content_types),
            ("CompressionType", COMPRESSION_TYPES),
            ("ChannelType", CHANNEL_TYPES),
        ):
            if key in channel and channel[key] not in allowed:
                errors.append(f"{path}.{key}: {channel[key]!r} must be one of {sorted(allowed)}")
    if len(channels) == 2 and all(isinstance(c, Mapping) for c in channels):
        if sorted(str(c.get("ChannelType")) for c in channels) != ["training", "validation"]:
            errors.append(
                f"{field}: with 2 channels, ChannelType must be 'training' on one and 'validation' on the other"
            )
        elif channels[0].get("ContentType") != channels[1].get("ContentType"):
            errors.append(f"{field}: both channels must have the same ContentType")
    elif (
        len(channels) == 1
        and isinstance(channels[0], Mapping)
        and channels[0].get("ChannelType", "training") != "training"
    ):
        errors.append(f"{field}[0].ChannelType: a single channel must be the 'training' channel")
    return errors


def _objective_errors(request: Mapping[str, Any], config_key: str | None) -> list[str]:
    objective = request.get("AutoMLJobObjective")
    if objective is None or config_key is None:
        return []
    if not isinstance(objective, Mapping) or not isinstance(objective.get("MetricName"), str):
        return ["AutoMLJobObjective.MetricName: required when AutoMLJobObjective is given"]
    metric = objective["MetricName"]
    if config_key == "TextGenerationJobConfig":
        return [
            "AutoMLJobObjective: not supported for TextGenerationJobConfig (candidates are ranked by ValidationLoss)"
        ]
    problem = request["AutoMLProblemTypeConfig"][config_key].get("ProblemType")
    allowed = allowed_metrics(config_key, problem)
    if metric not in allowed:
        what = f"{CONFIG_NAMES[config_key]}" + (f" {problem}" if problem in METRICS_BY_PROBLEM_TYPE else "")
        return [
            f"AutoMLJobObjective.MetricName: {metric!r} is not valid for {what}; allowed: {list(allowed)}"
        ]
    return []


def create_v2_request_errors(request: Mapping[str, Any]) -> list[str]:
    """
    Every rule a CreateAutoMLJobV2 request breaks, as messages naming the field and the rule.

    :param request: the keyword arguments for ``create_auto_ml_job_v2``.
    """
    errors: list[str] = []
    unknown = sorted(set(request) - KNOWN_V2_REQUEST_KEYS)
    if unknown:
        errors.append(
            f"{unknown}: unknown CreateAutoMLJobV2 field(s); known: {sorted(KNOWN_V2_REQUEST_KEYS)}"
        )
    errors += job_name_errors(request.get("AutoMLJobName"))
    errors += _problem_config_errors(request.get("AutoMLProblemTypeConfig"))
    key = problem_config_key(request)
    errors += _channel_errors(request.get("AutoMLJobInputDataConfig"), key)
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
    if key is not None and isinstance(request["AutoMLProblemTypeConfig"][key], Mapping):
        errors += _objective_errors(request, key)
    split = request.get("DataSplitConfig")
    if split is not None:
        fraction = split.get("ValidationFraction") if isinstance(split, Mapping) else split
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            errors.append(
                f"DataSplitConfig.ValidationFraction: {fraction!r} must be greater than 0 and less than 1"
            )
        channels = request.get("AutoMLJobInputDataConfig")
        if isinstance(channels, list) and len(channels) == 2:
            errors.append(
                "DataSplitConfig: not allowed with a validation channel (the data is already split)"
            )
    gen_only = key == "TabularJobConfig" and bool(
        request["AutoMLProblemTypeConfig"][key].get("GenerateCandidateDefinitionsOnly")
    )
    errors += _deploy_config_errors(
        {"ModelDeployConfig": request.get("ModelDeployConfig"), "GenerateCandidateDefinitionsOnly": gen_only}
    )
    errors += _tag_errors(request.get("Tags"))
    return errors


def validate_create_v2_request(request: Mapping[str, Any]) -> None:
    """
    Raise :class:`AutopilotValidationError` listing every broken rule; return quietly when valid.

    :param request: the keyword arguments for ``create_auto_ml_job_v2``.
    """
    raise_if(create_v2_request_errors(request), "Autopilot V2 job request")

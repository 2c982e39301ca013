"""The CreateAutoMLJob and CreateAutoMLJobV2 tables: each field's path, operator parameter, type,
SageMaker rule and wording, once; the operators, request builders, validation and emulator derive from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.fields.common import (
    JOB_NAME,
    ROLE_ARN,
    S3_URI,
    completion_fields,
    deploy_fields,
    deploy_rule,
    output_fields,
    runtime_rule,
    security_fields,
    tag_fields,
    validation_fraction_field,
)
from airflow_autopilot.core.fields.spec import Field, Problem, RequestSpec, drop_none, problem, values_at

# --- SageMaker's values (tuples: the first entry is SageMaker's default where there is one) ---------
CHANNEL_TYPES = ("training", "validation")
TABULAR_CONTENT_TYPES = ("text/csv;header=present", "x-application/vnd.amazon+parquet")
IMAGE_CONTENT_TYPES = ("image/png", "image/jpeg", "image/*")
COMPRESSION_TYPES = ("None", "Gzip")
S3_DATA_TYPES_V1 = ("S3Prefix", "ManifestFile")
S3_DATA_TYPES_V2 = ("S3Prefix", "ManifestFile", "AugmentedManifestFile")
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
FORECAST_FREQUENCY_PATTERN = (
    "1Y|Y|([1-9]|1[0-1])M|M|[1-4]W|W|[1-6]D|D|([1-9]|1[0-9]|2[0-3])H|H|([1-9]|[1-5][0-9])min"
)
#: AWS documents the horizon as at most 500 time steps (and at most a quarter of the series).
FORECAST_HORIZON_RANGE = (1, 500)
FORECAST_QUANTILE_PATTERN = r"p[1-9]\d?"
MAX_FORECAST_QUANTILES = 5
ATTRIBUTE_NAME_MAX = 256
MAX_GROUPING_ATTRIBUTES = 5
BASE_MODEL_NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9])*"
TEXT_GENERATION_HYPERPARAMETERS = frozenset(
    {"epochCount", "learningRate", "batchSize", "learningRateWarmupSteps"}
)
CONTENT_TYPES_BY_CONFIG: Mapping[str, tuple[str, ...]] = {
    "TabularJobConfig": TABULAR_CONTENT_TYPES,
    "TimeSeriesForecastingJobConfig": TABULAR_CONTENT_TYPES,
    "TextClassificationJobConfig": TABULAR_CONTENT_TYPES,
    "ImageClassificationJobConfig": IMAGE_CONTENT_TYPES,
    "TextGenerationJobConfig": TABULAR_CONTENT_TYPES,
}
_CONTENT_TYPE_STRICTER = (
    "SageMaker accepts only these content types for Autopilot (the model allows any text)"
)
# The owner tag is core.naming.OWNER_TAG_KEY (a test checks); not imported here, as DAG files load
# this module through the operators and need none of naming.
_TAGS_NAMED = "tags / extras['Tags']; the operator adds 'airflow-autopilot:owner'"
_TAGS_DOC = (
    '``{key: value}`` or ``[{"Key": ..., "Value": ...}]``. The operator adds one tag, '
    "``airflow-autopilot:owner``, which marks the job as this task's (it counts towards the limit of 50; "
    '``airflow-autopilot:*`` keys are reserved). ``extras["Tags"]`` is merged with ``tags`` key by key '
    "(its values win), not substituted for them."
)
_JOB_NAME_DOC = (
    "the AutoMLJobName. Default: ``<job_name_prefix>-<12 hex digits>``, derived from the DAG id, task "
    "id, run id, map index, the DAG run instance and the try chain, so retries find their job again. "
    "After this task's ``on_kill`` stopped the job, the retry starts a new one: ``<job_name>-r1``, "
    "``-r2`` ... for a given name, other digits for a generated one."
)


def default_metric(problem_type: str) -> str:
    """
    SageMaker's default objective metric for a problem type.

    :param problem_type: BinaryClassification, MulticlassClassification or Regression.
    """
    return METRICS_BY_PROBLEM_TYPE[problem_type][0]


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


# --- fields both requests share, under their own paths ---------------------------------------------
def _channel_fields(channels: str, s3_data_types: tuple[str, ...], stricter_types: str) -> tuple[Field, ...]:
    """A job's input channels: the simple parameters for the common case, ``input_data_config`` for all."""
    item = f"{channels}[]"
    return (
        Field(f"{item}", kind="structure"),
        Field(f"{item}.DataSource.S3DataSource", kind="structure", required=True),
        S3_URI.at(
            f"{item}.DataSource.S3DataSource.S3Uri",
            parameter="s3_input_uri",
            doc="S3 prefix (or manifest) of the training data.",
            required=True,
            item_parameters=("s3_input_uri", "validation_s3_input_uri"),
        ),
        Field(
            f"{item}.ChannelType",
            "validation_s3_input_uri",
            doc="S3 prefix of separate validation data (second channel).",
            enum=CHANNEL_TYPES,
        ),
    )


def _channel_options(channels: str, s3_data_types: tuple[str, ...], stricter_types: str) -> tuple[Field, ...]:
    item = f"{channels}[]"
    return (
        Field(
            f"{item}.CompressionType", "compression_type", doc="``None`` or ``Gzip``.", enum=COMPRESSION_TYPES
        ),
        Field(
            f"{item}.DataSource.S3DataSource.S3DataType",
            "s3_data_type",
            doc=" or ".join(f"``{t}``" for t in s3_data_types).replace(
                "``S3Prefix``", "``S3Prefix`` (default)", 1
            )
            + ".",
            required=True,
            enum=s3_data_types,
            stricter=stricter_types,
        ),
    )


def _channel_list(channels: str, doc: str) -> Field:
    return Field(
        channels,
        "input_data_config",
        "list",
        doc,
        required=True,
        hint="a list of 1 or 2 channels",
        min_length=1,
        max_length=2,
        items="channels",
    )


def _channel_rule(channels: str, same: tuple[str, ...]) -> Any:
    """Two channels are one training and one validation channel, alike in ``same``; one is training."""

    def channel_pair(request: Mapping[str, Any]) -> list[Problem]:
        given = request.get(channels)
        if not isinstance(given, list) or not all(isinstance(c, Mapping) for c in given):
            return []
        found = []
        if len(given) == 2:
            if sorted(str(c.get("ChannelType")) for c in given) != list(CHANNEL_TYPES):
                found.append(
                    problem(
                        channels,
                        "with 2 channels, ChannelType must be 'training' on one and 'validation' on the other",
                        server=f"{channels} with two channels must have one 'training' and one 'validation' channel.",
                    )
                )
            for key in same:
                if given[0].get(key) != given[1].get(key):
                    found.append(
                        problem(
                            channels,
                            f"both channels must have the same {key}",
                            server=f"{key} must be the same for the training and validation channels.",
                        )
                    )
        elif len(given) == 1 and given[0].get("ChannelType", "training") != "training":
            found.append(
                problem(
                    f"{channels}[0].ChannelType",
                    "a single channel must be the 'training' channel",
                    server=f"{channels} must contain a 'training' channel.",
                )
            )
        return found

    return channel_pair


def _algorithm_problems(entries: Any, path: str, allowed: frozenset[str], where: str) -> list[Problem]:
    found = []
    for i, entry in enumerate(entries if isinstance(entries, list) else []):
        chosen = entry.get("AutoMLAlgorithms") if isinstance(entry, Mapping) else None
        if not isinstance(chosen, list):
            continue
        bad = sorted(set(map(str, chosen)) - allowed)
        if bad:
            found.append(
                problem(
                    f"{path}[{i}].AutoMLAlgorithms",
                    f"{bad} not available in {where}; allowed: {sorted(allowed)}",
                    server=f"Algorithms {bad} are not supported in {where}. "
                    f"Supported algorithms: {', '.join(sorted(allowed))}.",
                )
            )
    return found


def _mode_rule(config_path: str) -> Any:
    """AlgorithmsConfig is not for AUTO mode; each mode has its algorithms."""

    def algorithms_for_mode(request: Mapping[str, Any]) -> list[Problem]:
        found: list[Problem] = []
        for path, config in values_at(request, config_path):
            if not isinstance(config, Mapping):
                continue
            generation = config.get("CandidateGenerationConfig")
            algorithms = generation.get("AlgorithmsConfig") if isinstance(generation, Mapping) else None
            if algorithms is None:
                continue
            where = f"{path}.CandidateGenerationConfig.AlgorithmsConfig"
            mode = config.get("Mode", "AUTO")
            if mode == "AUTO":
                found.append(
                    problem(
                        where,
                        "not allowed when Mode is AUTO; set Mode to ENSEMBLING or HYPERPARAMETER_TUNING",
                        server="AlgorithmsConfig cannot be set when Mode is AUTO. "
                        "Set Mode to ENSEMBLING or HYPERPARAMETER_TUNING.",
                    )
                )
            elif mode in ALGORITHMS_BY_MODE:
                found += _algorithm_problems(algorithms, where, ALGORITHMS_BY_MODE[mode], f"{mode} mode")
        return found

    return algorithms_for_mode


def _algorithm_fields(prefix: str, parameter: str | None) -> tuple[Field, ...]:
    path = f"{prefix}.CandidateGenerationConfig.AlgorithmsConfig"
    return (
        Field(
            path,
            parameter,
            "list",
            "``AutoMLAlgorithms`` for ``CandidateGenerationConfig.AlgorithmsConfig`` (not in AUTO mode)."
            if parameter
            else "",
            max_length=1,
            build=_algorithms_config,
            annotation="list[str] | None",
        ),
        Field(f"{path}[]", kind="structure"),
        Field(
            f"{path}[].AutoMLAlgorithms",
            kind="list",
            required=True,
            hint="a non-empty list of algorithm names",
            min_length=1,
            max_length=11,
            items="algorithms",
            stricter="SageMaker refuses an empty algorithm list (the model allows it)",
        ),
    )


def _algorithms_config(algorithms: Any) -> list[dict[str, Any]]:
    if not isinstance(algorithms, (list, tuple)):
        raise ValueError(f"{algorithms!r} must be a list of algorithm names, such as ['xgboost']")
    return [{"AutoMLAlgorithms": list(algorithms)}]


def _attribute(path: str, **more: Any) -> Field:
    """A column name."""
    return Field(
        path,
        kind="str",
        required=more.pop("required", True),
        hint="a column name (a non-empty string)",
        min_length=1,
        max_length=ATTRIBUTE_NAME_MAX,
        **more,
    )


def _tags() -> tuple[Field, ...]:
    return tuple(
        entry if entry.path != "Tags" else entry.at("Tags", doc=_TAGS_DOC, named_as=_TAGS_NAMED)
        for entry in tag_fields()
    )


# --- assembling what is not one field per parameter ------------------------------------------------
def _simple_channels(p: Mapping[str, Any], errors: list[str], *, target: bool) -> Any:
    """The channels: ``input_data_config`` as given, or built from the simple parameters."""
    simple = ("s3_input_uri", "validation_s3_input_uri", *(("target_attribute_name",) if target else ()))
    if p.get("input_data_config") is not None:
        also = " + target_attribute_name" if target else ""
        for param in simple:
            if p.get(param) is not None:
                errors.append(
                    f"{param}: give either input_data_config (full channel list) or s3_input_uri{also}, not both"
                )
        return p["input_data_config"]
    channels = []
    two = p.get("validation_s3_input_uri") is not None
    for uri, channel_type in (
        (p.get("s3_input_uri"), "training"),
        (p.get("validation_s3_input_uri"), "validation"),
    ):
        if channel_type == "validation" and not two:
            continue
        channel: dict[str, Any] = {
            "DataSource": {"S3DataSource": {"S3DataType": p.get("s3_data_type") or "S3Prefix", "S3Uri": uri}}
        }
        if target:
            channel["TargetAttributeName"] = p.get("target_attribute_name")
        channel.update(
            drop_none({"ContentType": p.get("content_type"), "CompressionType": p.get("compression_type")})
        )
        if two:
            channel["ChannelType"] = channel_type
        channels.append(channel)
    return channels


def _tags_and_channels(channels_path: str, *, target: bool) -> Any:
    """The channels and the Tags (``tags``, ``extras["Tags"]`` and the owner tag); returns ``extras``
    without its Tags."""

    def assemble(p: Mapping[str, Any], request: dict[str, Any], errors: list[str]) -> Any:
        from airflow_autopilot.core.requests import request_tags

        request[channels_path] = _simple_channels(p, errors, target=target)
        tags, extras = request_tags(p, errors)
        if tags:
            request["Tags"] = tags
        return extras

    return assemble


def _assemble_v1(p: Mapping[str, Any], request: dict[str, Any], errors: list[str]) -> Any:
    extras = _tags_and_channels("InputDataConfig", target=True)(p, request, errors)
    problem_type = request.get("ProblemType")
    if (
        isinstance(problem_type, str)
        and problem_type in METRICS_BY_PROBLEM_TYPE
        and "AutoMLJobObjective" not in request
    ):
        request["AutoMLJobObjective"] = {
            "MetricName": default_metric(problem_type)
        }  # SageMaker wants both or neither
    return extras


# --- CreateAutoMLJob (V1) ---------------------------------------------------------------------------
def _v1_objective(request: Mapping[str, Any]) -> list[Problem]:
    found = []
    given = request.get("ProblemType")
    objective = request.get("AutoMLJobObjective")
    metric = objective.get("MetricName") if isinstance(objective, Mapping) else None
    if (given is None) != (objective is None):
        found.append(
            problem(
                "ProblemType and AutoMLJobObjective",
                "give both or neither (neither lets Autopilot infer them)",
                about=("ProblemType", "AutoMLJobObjective"),
            )
        )
    known = {m for metrics in METRICS_BY_PROBLEM_TYPE.values() for m in metrics}
    if (
        isinstance(given, str)
        and given in METRICS_BY_PROBLEM_TYPE
        and metric
        and metric not in METRICS_BY_PROBLEM_TYPE[given]
    ):
        allowed = METRICS_BY_PROBLEM_TYPE[given]
        found.append(
            problem(
                "AutoMLJobObjective.MetricName",
                f"{metric!r} is not valid for {given}; allowed: {list(allowed)}",
                server=f"The objective metric '{metric}' is not valid for problem type {given}. "
                f"Valid metrics: {', '.join(allowed)}.",
            )
        )
    elif given is None and isinstance(metric, str) and metric not in known:
        found.append(
            problem(
                "AutoMLJobObjective.MetricName",
                f"{metric!r} is not a tabular metric; allowed: {sorted(known)}",
                server=f"The objective metric '{metric}' is not supported for tabular AutoML jobs.",
            )
        )
    return found


CREATE_AUTOML_JOB = RequestSpec(
    operation="CreateAutoMLJob",
    subject="Autopilot job request",
    fields=(
        JOB_NAME.at("AutoMLJobName", parameter="job_name", doc=_JOB_NAME_DOC, annotation="str | None"),
        *_channel_fields("InputDataConfig", S3_DATA_TYPES_V1, ""),
        Field(
            "InputDataConfig[].TargetAttributeName",
            "target_attribute_name",
            doc="the target column.",
            required=True,
            hint="the name of the target column",
            min_length=1,
        ),
        _channel_list(
            "InputDataConfig", "the full ``InputDataConfig`` channel list, instead of the three above."
        ),
        Field(
            "InputDataConfig[].ContentType",
            "content_type",
            doc="``text/csv;header=present`` or ``x-application/vnd.amazon+parquet``.",
            enum=TABULAR_CONTENT_TYPES,
            max_length=256,
            stricter=_CONTENT_TYPE_STRICTER,
        ),
        *_channel_options(
            "InputDataConfig",
            S3_DATA_TYPES_V1,
            "CreateAutoMLJob refuses AugmentedManifestFile (CreateAutoMLJobV2 takes it)",
        ),
        Field(
            "InputDataConfig[].SampleWeightAttributeName",
            pattern="[a-zA-Z0-9_-]+",
            min_length=1,
            max_length=256,
        ),
        *output_fields(),
        ROLE_ARN,
        Field(
            "ProblemType",
            "problem_type",
            doc="``BinaryClassification``, ``MulticlassClassification`` or ``Regression``.",
            enum=PROBLEM_TYPES,
        ),
        Field("AutoMLJobObjective", kind="structure"),
        Field(
            "AutoMLJobObjective.MetricName",
            "objective_metric",
            doc="``AutoMLJobObjective.MetricName``; defaults to the problem type's default metric when "
            "``problem_type`` is given (SageMaker wants both or neither).",
            required=True,
            hint="when AutoMLJobObjective is given",
        ),
        Field("AutoMLJobConfig", kind="structure"),
        *completion_fields("AutoMLJobConfig.CompletionCriteria"),
        Field(
            "AutoMLJobConfig.Mode",
            "mode",
            doc="``AUTO``, ``ENSEMBLING`` or ``HYPERPARAMETER_TUNING``.",
            enum=MODES,
        ),
        *_algorithm_fields("AutoMLJobConfig", "algorithms"),
        Field("AutoMLJobConfig.DataSplitConfig", kind="structure"),
        validation_fraction_field("AutoMLJobConfig.DataSplitConfig.ValidationFraction"),
        *security_fields(
            "AutoMLJobConfig.SecurityConfig",
            doc="``AutoMLJobConfig.SecurityConfig`` (KMS key, VPC, inter-container encryption).",
        ),
        S3_URI.at(
            "AutoMLJobConfig.CandidateGenerationConfig.FeatureSpecificationS3Uri",
            parameter="feature_specification_s3_uri",
            doc="``CandidateGenerationConfig.FeatureSpecificationS3Uri``.",
        ),
        Field(
            "GenerateCandidateDefinitionsOnly",
            "generate_candidate_definitions_only",
            "bool",
            "``GenerateCandidateDefinitionsOnly``.",
        ),
        *deploy_fields(),
        *_tags(),
    ),
    rules=(
        _channel_rule("InputDataConfig", ("ContentType", "TargetAttributeName")),
        _v1_objective,
        runtime_rule("AutoMLJobConfig.CompletionCriteria"),
        _mode_rule("AutoMLJobConfig"),
        deploy_rule("GenerateCandidateDefinitionsOnly"),
    ),
    assemble=_assemble_v1,
    assembled=frozenset({"input_data_config", "tags"}),
    assembled_by={"InputDataConfig": "input_data_config"},
)


# --- CreateAutoMLJobV2 ------------------------------------------------------------------------------
def _v2_problem_config(request: Mapping[str, Any]) -> list[Problem]:
    field = "AutoMLProblemTypeConfig"
    config = request.get(field)
    if not isinstance(config, Mapping):
        return []
    given = [k for k in config if config[k] is not None]
    unknown = sorted(set(given) - set(CONFIG_NAMES))
    if unknown:
        return [problem(field, f"{unknown} unknown; give exactly one of {sorted(CONFIG_NAMES)}")]
    if len(given) != 1:
        return [problem(field, f"give exactly one of {sorted(CONFIG_NAMES)} (got {len(given)})")]
    return []


def _v2_channels(request: Mapping[str, Any]) -> list[Problem]:
    field = "AutoMLJobInputDataConfig"
    channels = request.get(field)
    if not isinstance(channels, list):
        return []
    key = problem_config_key(request)
    allowed = CONTENT_TYPES_BY_CONFIG.get(key or "", TABULAR_CONTENT_TYPES + IMAGE_CONTENT_TYPES)
    found = []
    for i, channel in enumerate(channels):
        if not isinstance(channel, Mapping):
            continue
        if "TargetAttributeName" in channel:
            found.append(
                problem(
                    f"{field}[{i}].TargetAttributeName",
                    "not a V2 channel field; the target goes in the problem type config",
                )
            )
        if "ContentType" in channel and channel["ContentType"] not in allowed:
            found.append(
                problem(
                    f"{field}[{i}].ContentType",
                    f"{channel['ContentType']!r} must be one of {sorted(allowed)}",
                )
            )
    if len(channels) == 2 and request.get("DataSplitConfig") is not None:
        found.append(
            problem("DataSplitConfig", "not allowed with a validation channel (the data is already split)")
        )
    return found


def _v2_objective(request: Mapping[str, Any]) -> list[Problem]:
    objective = request.get("AutoMLJobObjective")
    key = problem_config_key(request)
    if not isinstance(objective, Mapping) or key is None:
        return []
    metric = objective.get("MetricName")
    if not isinstance(metric, str):
        return []
    if key == "TextGenerationJobConfig":
        return [
            problem(
                "AutoMLJobObjective",
                "not supported for TextGenerationJobConfig (candidates are ranked by ValidationLoss)",
            )
        ]
    body = request["AutoMLProblemTypeConfig"][key]
    given = body.get("ProblemType") if isinstance(body, Mapping) else None
    allowed = allowed_metrics(key, given)
    if metric in allowed:
        return []
    what = CONFIG_NAMES[key] + (f" {given}" if given in METRICS_BY_PROBLEM_TYPE else "")
    return [
        problem(
            "AutoMLJobObjective.MetricName", f"{metric!r} is not valid for {what}; allowed: {list(allowed)}"
        )
    ]


def _v2_columns(request: Mapping[str, Any]) -> list[Problem]:
    """Forecast columns differ from each other; a text classification's two columns differ."""
    found = []
    for path, ts in values_at(
        request, "AutoMLProblemTypeConfig.TimeSeriesForecastingJobConfig.TimeSeriesConfig"
    ):
        if not isinstance(ts, Mapping):
            continue
        names = [
            ts.get(k)
            for k in ("TargetAttributeName", "TimestampAttributeName", "ItemIdentifierAttributeName")
        ]
        grouping = ts.get("GroupingAttributeNames")
        names += grouping if isinstance(grouping, list) else []
        columns: list[str] = [n for n in names if isinstance(n, str) and n]
        repeated = sorted({n for n in columns if columns.count(n) > 1})
        if repeated:
            found.append(
                problem(
                    path,
                    f"the target, timestamp, item identifier and grouping columns must differ; {repeated} repeated",
                )
            )
    for path, text in values_at(request, "AutoMLProblemTypeConfig.TextClassificationJobConfig"):
        if (
            isinstance(text, Mapping)
            and text.get("ContentColumn")
            and text.get("ContentColumn") == text.get("TargetLabelColumn")
        ):
            found.append(problem(path, "ContentColumn and TargetLabelColumn must be different columns"))
    for path, algorithms in values_at(
        request,
        "AutoMLProblemTypeConfig.TimeSeriesForecastingJobConfig.CandidateGenerationConfig.AlgorithmsConfig",
    ):
        found += _algorithm_problems(algorithms, path, FORECAST_ALGORITHMS, "time-series forecasting")
    return found


def _unique_quantiles(value: Any, path: str) -> list[str]:
    if isinstance(value, list) and len(set(map(str, value))) != len(value):
        return [f"{value} lists a quantile twice"]
    return []


def _hyperparameters(value: Any, path: str) -> list[str]:
    texts = []
    unknown = sorted(set(value) - TEXT_GENERATION_HYPERPARAMETERS)
    if unknown:
        texts.append(f"{unknown} unknown; allowed: {sorted(TEXT_GENERATION_HYPERPARAMETERS)}")
    bad = sorted(k for k, v in value.items() if not isinstance(v, str))
    if bad:
        texts.append(f"values of {bad} must be strings, such as '3'")
    return texts


_TABULAR = "AutoMLProblemTypeConfig.TabularJobConfig"
_FORECAST = "AutoMLProblemTypeConfig.TimeSeriesForecastingJobConfig"
_TEXT = "AutoMLProblemTypeConfig.TextClassificationJobConfig"
_GENERATION = "AutoMLProblemTypeConfig.TextGenerationJobConfig"

PROBLEM_TYPE_CONFIG_FIELDS: tuple[Field, ...] = (
    Field(
        "AutoMLProblemTypeConfig",
        "problem_type_config",
        "structure",
        "``AutoMLProblemTypeConfig`` (exactly one problem type).",
        required=True,
        hint=f"a mapping with exactly one of {sorted(CONFIG_NAMES)}",
    ),
    *(Field(f"AutoMLProblemTypeConfig.{key}", kind="structure") for key in CONFIG_NAMES),
    # tabular
    _attribute(f"{_TABULAR}.TargetAttributeName"),
    Field(f"{_TABULAR}.ProblemType", enum=PROBLEM_TYPES),
    Field(
        f"{_TABULAR}.SampleWeightAttributeName",
        pattern="[a-zA-Z0-9_-]+",
        pattern_hint="1 to 256 characters",
        min_length=1,
        max_length=256,
    ),
    Field(f"{_TABULAR}.Mode", enum=MODES),
    *_algorithm_fields(_TABULAR, None),
    Field(f"{_TABULAR}.GenerateCandidateDefinitionsOnly", kind="bool"),
    S3_URI.at(f"{_TABULAR}.FeatureSpecificationS3Uri"),
    # time-series forecasting
    Field(
        f"{_FORECAST}.ForecastFrequency",
        required=True,
        hint="a frequency such as 1Y, 6M, W, 2W, D, H, 30min",
        pattern=FORECAST_FREQUENCY_PATTERN,
        rule=f"must be a frequency such as 1Y, 6M, W, 2W, D, H, 30min (pattern {FORECAST_FREQUENCY_PATTERN})",
        min_length=1,
        max_length=5,
    ),
    Field(
        f"{_FORECAST}.ForecastHorizon",
        kind="int",
        required=True,
        hint="an integer from 1 to 500 (time steps)",
        minimum=FORECAST_HORIZON_RANGE[0],
        maximum=FORECAST_HORIZON_RANGE[1],
        stricter="AWS documents at most 500 time steps (the model gives no maximum)",
    ),
    Field(
        f"{_FORECAST}.ForecastQuantiles",
        kind="list",
        min_length=1,
        max_length=MAX_FORECAST_QUANTILES,
        items="quantiles",
        check=_unique_quantiles,
    ),
    Field(
        f"{_FORECAST}.ForecastQuantiles[]",
        pattern=FORECAST_QUANTILE_PATTERN,
        rule="must be a quantile p1 to p99, such as p10, p50, p90",
    ),
    Field(
        f"{_FORECAST}.TimeSeriesConfig",
        kind="structure",
        required=True,
        hint="with TargetAttributeName, TimestampAttributeName and ItemIdentifierAttributeName",
    ),
    _attribute(f"{_FORECAST}.TimeSeriesConfig.TargetAttributeName"),
    _attribute(f"{_FORECAST}.TimeSeriesConfig.TimestampAttributeName"),
    _attribute(f"{_FORECAST}.TimeSeriesConfig.ItemIdentifierAttributeName"),
    Field(
        f"{_FORECAST}.TimeSeriesConfig.GroupingAttributeNames",
        kind="list",
        min_length=1,
        max_length=MAX_GROUPING_ATTRIBUTES,
        items="column names",
    ),
    _attribute(f"{_FORECAST}.TimeSeriesConfig.GroupingAttributeNames[]"),
    *_algorithm_fields(_FORECAST, None),
    Field(f"{_FORECAST}.HolidayConfig", kind="list", min_length=1, max_length=1, items="holiday calendars"),
    Field(f"{_FORECAST}.HolidayConfig[].CountryCode", pattern="[A-Z]{2}", min_length=2, max_length=2),
    S3_URI.at(f"{_FORECAST}.FeatureSpecificationS3Uri"),
    # text classification
    _attribute(f"{_TEXT}.ContentColumn"),
    _attribute(f"{_TEXT}.TargetLabelColumn"),
    # text generation
    Field(
        f"{_GENERATION}.BaseModelName",
        pattern=BASE_MODEL_NAME_PATTERN,
        rule="must be a model name such as Falcon7BInstruct (letters, digits, hyphens; at most 256)",
        min_length=1,
        max_length=256,
    ),
    Field(
        f"{_GENERATION}.TextGenerationHyperParameters",
        kind="map",
        max_length=30,
        items="hyperparameters",
        check=_hyperparameters,
    ),
    Field(f"{_GENERATION}.ModelAccessConfig", kind="structure"),
    Field(f"{_GENERATION}.ModelAccessConfig.AcceptEula", kind="bool", required=True, hint="true or false"),
)


_assemble_v2 = _tags_and_channels("AutoMLJobInputDataConfig", target=False)


CREATE_AUTOML_JOB_V2 = RequestSpec(
    operation="CreateAutoMLJobV2",
    subject="Autopilot V2 job request",
    fields=(
        JOB_NAME.at("AutoMLJobName", parameter="job_name", doc=_JOB_NAME_DOC, annotation="str | None"),
        PROBLEM_TYPE_CONFIG_FIELDS[0],
        *_channel_fields("AutoMLJobInputDataConfig", S3_DATA_TYPES_V2, ""),
        _channel_list(
            "AutoMLJobInputDataConfig",
            "the full ``AutoMLJobInputDataConfig`` channel list, instead of the above.",
        ),
        Field(
            "AutoMLJobInputDataConfig[].ContentType",
            "content_type",
            doc="the channels' ``ContentType`` (``image/png`` and the like for images).",
            max_length=256,
        ),
        *_channel_options("AutoMLJobInputDataConfig", S3_DATA_TYPES_V2, ""),
        *output_fields(),
        ROLE_ARN,
        Field("AutoMLJobObjective", kind="structure"),
        Field(
            "AutoMLJobObjective.MetricName",
            "objective_metric",
            doc="``AutoMLJobObjective.MetricName`` (allowed ones depend on the problem type).",
            required=True,
            hint="when AutoMLJobObjective is given",
        ),
        *completion_fields(
            "AutoMLProblemTypeConfig.*.CompletionCriteria",
            "merged into the problem type's ``CompletionCriteria``",
        ),
        Field("DataSplitConfig", kind="structure"),
        validation_fraction_field("DataSplitConfig.ValidationFraction"),
        *security_fields("SecurityConfig", doc="``SecurityConfig``."),
        *deploy_fields(),
        Field("AutoMLComputeConfig", "compute_config", "structure", "``AutoMLComputeConfig``."),
        Field("AutoMLComputeConfig.EmrServerlessComputeConfig", kind="structure"),
        ROLE_ARN.at(
            "AutoMLComputeConfig.EmrServerlessComputeConfig.ExecutionRoleARN",
            parameter=None,
            doc="",
            required=True,
        ),
        *_tags(),
        *PROBLEM_TYPE_CONFIG_FIELDS[1:],
    ),
    rules=(
        _v2_problem_config,
        _channel_rule("AutoMLJobInputDataConfig", ("ContentType",)),
        _v2_channels,
        _v2_objective,
        _v2_columns,
        runtime_rule("AutoMLProblemTypeConfig.*.CompletionCriteria"),
        _mode_rule(_TABULAR),
        deploy_rule(f"{_TABULAR}.GenerateCandidateDefinitionsOnly"),
    ),
    assemble=_assemble_v2,
    assembled=frozenset({"input_data_config", "tags"}),
    assembled_by={"AutoMLJobInputDataConfig": "input_data_config"},
)

"""The emulator's deterministic Autopilot candidates, for every problem type: what a candidate is
called, scores, runs as and leaves in S3, derived from the job name so reruns agree."""

from __future__ import annotations

import hashlib
import io
import tarfile
from dataclasses import dataclass
from typing import Any

from airflow_autopilot.core.fields.automl import (
    ALGORITHMS_BY_MODE,
    FORECAST_ALGORITHMS,
    METRICS_BY_PROBLEM_TYPE,
)
from airflow_autopilot.core.job import MINIMIZED_METRICS

#: The ``AutoMLProblemTypeConfig`` member of tabular jobs (every V1 job is one).
TABULAR = "TabularJobConfig"
#: Base model of a TextGenerationJobConfig without ``BaseModelName`` (AWS's default).
DEFAULT_BASE_MODEL = "Falcon7BInstruct"
#: Quantiles a forecasting job predicts when the request gives none (AWS's default).
DEFAULT_QUANTILES = ("p10", "p50", "p90")

# (low, high) of generated validation metric values.
_METRIC_RANGES: dict[str, tuple[float, float]] = {
    "MSE": (0.8, 40.0),
    "RMSE": (0.9, 6.3),
    "MAE": (0.6, 5.0),
    "R2": (0.35, 0.93),
    "LogLoss": (0.15, 0.65),
    # V2: forecasting and text generation.
    "MAPE": (0.05, 0.6),
    "MASE": (0.4, 1.6),
    "WAPE": (0.05, 0.5),
    "AverageWeightedQuantileLoss": (0.03, 0.4),
    "ValidationLoss": (0.8, 2.5),
    "TrainingLoss": (0.7, 2.2),
    "Perplexity": (2.2, 12.0),
}
_DEFAULT_RANGE = (0.62, 0.97)

_ALGORITHM_IMAGES: dict[str, str] = {
    "xgboost": "683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:1.7-1-cpu-py3",
    "linear-learner": "382416733822.dkr.ecr.{region}.amazonaws.com/linear-learner:1",
    "mlp": "683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-sklearn-automl:2.5-1-cpu-py3",
}
_ENSEMBLE_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/autogluon-inference:0.8.2-cpu-py39"
_DATA_PROCESSING_IMAGE = "683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-sklearn-automl:2.5-1-cpu-py3"
_FORECAST_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/autogluon-inference:1.1-cpu-py310"
_CLASSIFICATION_IMAGES = {
    "TextClassificationJobConfig": {
        "CPU": "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-inference:2.1-transformers4.37-cpu-py310-ubuntu22.04",
        "GPU": "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-inference:2.1-transformers4.37-gpu-py310-cu118-ubuntu20.04",
    },
    "ImageClassificationJobConfig": {
        "CPU": "763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.1-cpu-py310",
        "GPU": "763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.1-gpu-py310",
    },
}
_MODEL_FAMILIES = {
    "TextClassificationJobConfig": "text-classification",
    "ImageClassificationJobConfig": "image-classification",
}
_TEXT_GENERATION_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-tgi-inference:2.1-tgi1.4-gpu-py310-cu121-ubuntu22.04"

#: ``CandidateMetrics`` of the problem types beyond tabular, by problem type name.
_REPORTED_METRICS: dict[str, tuple[str, ...]] = {
    "TimeSeriesForecasting": ("AverageWeightedQuantileLoss", "MAPE", "MASE", "RMSE", "WAPE"),
    "TextClassification": ("Accuracy", "F1macro", "PrecisionMacro", "RecallMacro"),
    "ImageClassification": ("Accuracy", "F1macro", "PrecisionMacro", "RecallMacro"),
    "TextGeneration": ("ValidationLoss", "TrainingLoss", "Perplexity"),
}


def seeded_unit(*parts: object) -> float:
    """Return a deterministic number in [0, 1) derived from ``parts`` with SHA-256.

    :param parts: anything with a stable ``str()``.
    """
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def short_hash(*parts: object, length: int = 8) -> str:
    """Return a deterministic lowercase hex string of ``length`` characters.

    :param parts: anything with a stable ``str()``.
    :param length: number of hex digits.
    """
    return hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:length]


def metric_value(job_name: str, index: int, metric: str, dataset: str = "Validation") -> float:
    """Return the deterministic value of ``metric`` for candidate ``index`` of ``job_name``.

    Train values are slightly better than validation values.

    :param job_name: the AutoML job name (the seed).
    :param index: candidate index, from 0.
    :param metric: the metric name.
    :param dataset: ``Train`` or ``Validation``.
    """
    low, high = _METRIC_RANGES.get(metric, _DEFAULT_RANGE)
    value = low + (high - low) * seeded_unit(job_name, index, metric)
    if dataset == "Train":
        if metric in MINIMIZED_METRICS:
            value *= 0.9
        else:
            value = min(1.0, value + (1.0 - value) * 0.25)
    return round(value, 6)


def is_better(metric: str, a: float, b: float) -> bool:
    """Return whether value ``a`` beats ``b`` for ``metric``.

    :param metric: the objective metric name.
    :param a: candidate value.
    :param b: value to beat.
    """
    return a < b if metric in MINIMIZED_METRICS else a > b


def resolve_algorithms(config_key: str, config: dict[str, Any]) -> tuple[str, list[str]]:
    """Return a job's effective mode and the algorithms (or model families) its candidates use in turn.

    Tabular ``AUTO`` resolves to ENSEMBLING, as for data under 100 MB; the other problem types train
    ensembles of their own models.

    :param config_key: the job's ``AutoMLProblemTypeConfig`` member.
    :param config: its value (for V1 jobs, the ``AutoMLJobConfig``, which has the same members).
    """
    configured = (config.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig") or []
    if config_key == "TimeSeriesForecastingJobConfig":
        chosen = (configured or [{}])[0]
        return "ENSEMBLING", list(chosen.get("AutoMLAlgorithms") or sorted(FORECAST_ALGORITHMS))
    if config_key == "TextGenerationJobConfig":
        return "ENSEMBLING", [str(config.get("BaseModelName") or DEFAULT_BASE_MODEL)]
    if config_key in _MODEL_FAMILIES:
        return "ENSEMBLING", [_MODEL_FAMILIES[config_key]]
    mode = config.get("Mode") or "AUTO"
    if mode == "AUTO":
        mode = "ENSEMBLING"
    if configured:
        return mode, list(configured[0]["AutoMLAlgorithms"])
    return mode, list(ALGORITHMS_BY_MODE[mode])


@dataclass(frozen=True)
class CandidatePlan:
    """A candidate's fixed facts; its status depends on the job's clock."""

    index: int
    name: str
    algorithm: str
    processing_job: str
    transform_job: str
    created_offset: float
    completed_offset: float
    objective_value: float


@dataclass(frozen=True)
class CandidateContext:
    """Job facts needed to render candidates."""

    job_name: str
    account_id: str
    region: str
    partition: str
    output_path: str
    problem_type: str
    metric: str
    mode: str


def plan_candidates(
    job_name: str,
    count: int,
    algorithms: list[str],
    metric: str,
    tuning_start: float,
    tuning_length: float,
) -> list[CandidatePlan]:
    """Lay out ``count`` candidates finishing one after the other over the tuning window.

    :param job_name: the job name (seed of every generated value).
    :param count: number of candidates.
    :param algorithms: algorithms used round-robin.
    :param metric: the objective metric.
    :param tuning_start: offset in seconds from job creation when ModelTuning starts.
    :param tuning_length: seconds the full tuning stage lasts.
    """
    plans = []
    step = tuning_length / count
    for index in range(count):
        suffix = short_hash(job_name, "candidate", index)
        plans.append(
            CandidatePlan(
                index=index,
                name=f"{job_name}-t{index + 1:03d}-{suffix}",
                algorithm=algorithms[index % len(algorithms)],
                processing_job=f"{job_name}-dpp{index % 10}-{short_hash(job_name, 'dpp', index)}",
                transform_job=f"{job_name}-dpp{index % 10}-rpb-{short_hash(job_name, 'rpb', index)}",
                created_offset=tuning_start + index * step,
                completed_offset=tuning_start + (index + 1) * step,
                objective_value=metric_value(job_name, index, metric),
            )
        )
    return plans


def model_data_urls(ctx: CandidateContext, plan: CandidatePlan) -> tuple[str, str]:
    """Return the S3 URIs of the data-processing model and the algorithm model of a candidate.

    :param ctx: job context.
    :param plan: the candidate.
    """
    base = f"{ctx.output_path}/{ctx.job_name}"
    processing = f"{base}/data-processor-models/{plan.processing_job}/output/model.tar.gz"
    algorithm = f"{base}/tuning/{ctx.job_name}-t{plan.index + 1:03d}/{plan.name}/output/model.tar.gz"
    return processing, algorithm


def artifact_locations(ctx: CandidateContext, plan: CandidatePlan) -> dict[str, str]:
    """Return ``CandidateArtifactLocations`` of a candidate.

    :param ctx: job context.
    :param plan: the candidate.
    """
    base = f"{ctx.output_path}/{ctx.job_name}/documentation"
    return {
        "Explainability": f"{base}/explainability/output/{plan.name}",
        "ModelInsights": f"{base}/model_monitor/output/{plan.name}",
    }


def model_objects(ctx: CandidateContext, plan: CandidatePlan) -> dict[str, bytes]:
    """Return the two model archives a completed candidate leaves in S3, by URI.

    :param ctx: job context.
    :param plan: the candidate.
    """
    processing_url, algorithm_url = model_data_urls(ctx, plan)
    return {
        processing_url: tiny_model_archive(plan.processing_job),
        algorithm_url: tiny_model_archive(plan.name),
    }


def tiny_model_archive(name: str) -> bytes:
    """Return a small valid ``model.tar.gz`` holding one text file.

    :param name: text stored inside, to tell archives apart.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        payload = f"autopilot-emulator model artifact: {name}\n".encode()
        info = tarfile.TarInfo("model.txt")
        info.size = len(payload)
        archive.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


def notebook_locations(job_name: str, output_path: str) -> dict[str, str]:
    """Return ``AutoMLJobArtifacts``: where the job's two notebooks are.

    :param job_name: the AutoML job name.
    :param output_path: the job's ``S3OutputPath`` without a trailing slash.
    """
    base = f"{output_path}/{job_name}/sagemaker-automl-candidates/{job_name}-pr-1-{short_hash(job_name, 'pr')}/notebooks"
    return {
        "CandidateDefinitionNotebookLocation": f"{base}/SageMakerAutopilotCandidateDefinitionNotebook.ipynb",
        "DataExplorationNotebookLocation": f"{base}/SageMakerAutopilotDataExplorationNotebook.ipynb",
    }


def inference_containers(ctx: CandidateContext, plan: CandidatePlan) -> list[dict[str, Any]]:
    """Return the candidate's ``InferenceContainers`` like real tabular Autopilot.

    Classification gets three containers (data processing, algorithm, inverse label transform),
    regression two.

    :param ctx: job context.
    :param plan: the candidate.
    """
    processing_url, algorithm_url = model_data_urls(ctx, plan)
    classification = ctx.problem_type != "Regression"
    if ctx.mode == "ENSEMBLING":
        algorithm_image = _ENSEMBLE_IMAGE
    else:
        algorithm_image = _ALGORITHM_IMAGES.get(plan.algorithm, _ALGORITHM_IMAGES["xgboost"])
    processing = _container(
        ctx,
        _DATA_PROCESSING_IMAGE,
        processing_url,
        {
            "AUTOML_SPARSE_ENCODE_RECORDIO_PROTOBUF": "1",
            "AUTOML_TRANSFORM_MODE": "feature-transform",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/x-recordio-protobuf",
            "SAGEMAKER_PROGRAM": "sagemaker_serve",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        },
    )
    algorithm = _container(
        ctx,
        algorithm_image,
        algorithm_url,
        {
            "MAX_CONTENT_LENGTH": "20971520",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
            "SAGEMAKER_INFERENCE_SUPPORTED": (
                "predicted_label,probability,probabilities" if classification else "predicted_label"
            ),
        },
    )
    if not classification:
        return [processing, algorithm]
    inverse = _container(
        ctx,
        _DATA_PROCESSING_IMAGE,
        processing_url,
        {
            "AUTOML_TRANSFORM_MODE": "inverse-label-transform",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "SAGEMAKER_INFERENCE_INPUT": "predicted_label",
            "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
            "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label,probability,labels,probabilities",
            "SAGEMAKER_PROGRAM": "sagemaker_serve",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        },
    )
    return [processing, algorithm, inverse]


def _container(
    ctx: CandidateContext, image: str, model_url: str, environment: dict[str, str]
) -> dict[str, Any]:
    """One inference container: ``image`` (a template of the region), its model and environment."""
    return {"Image": image.format(region=ctx.region), "ModelDataUrl": model_url, "Environment": environment}


def _arn(ctx: CandidateContext, kind: str, name: str) -> str:
    return f"arn:{ctx.partition}:sagemaker:{ctx.region}:{ctx.account_id}:{kind}/{name.lower()}"


def candidate_steps(ctx: CandidateContext, plan: CandidatePlan) -> list[dict[str, str]]:
    """Return ``CandidateSteps``: processing job, training job and transform job with their ARNs.

    :param ctx: job context.
    :param plan: the candidate.
    """
    return [
        {
            "CandidateStepType": "AWS::SageMaker::ProcessingJob",
            "CandidateStepArn": _arn(ctx, "processing-job", plan.processing_job),
            "CandidateStepName": plan.processing_job,
        },
        {
            "CandidateStepType": "AWS::SageMaker::TrainingJob",
            "CandidateStepArn": _arn(ctx, "training-job", plan.name),
            "CandidateStepName": plan.name,
        },
        {
            "CandidateStepType": "AWS::SageMaker::TransformJob",
            "CandidateStepArn": _arn(ctx, "transform-job", plan.transform_job),
            "CandidateStepName": plan.transform_job,
        },
    ]


def candidate_metrics(ctx: CandidateContext, plan: CandidatePlan) -> list[dict[str, Any]]:
    """Return ``CandidateMetrics``: every metric the problem type reports, on the Train and Validation sets.

    :param ctx: job context.
    :param plan: the candidate.
    """
    if ctx.problem_type in METRICS_BY_PROBLEM_TYPE:
        # Classification candidates also report LogLoss, which is no objective metric of Autopilot V1.
        unnamed: tuple[str, ...] = () if ctx.problem_type == "Regression" else ("LogLoss",)
        reported = (*METRICS_BY_PROBLEM_TYPE[ctx.problem_type], *unnamed)
    else:
        reported = _REPORTED_METRICS[ctx.problem_type]
        # MetricName's enum lacks the text-generation metrics.
        unnamed = reported if ctx.problem_type == "TextGeneration" else ()
    metrics = []
    for metric in reported:
        for dataset in ("Train", "Validation"):
            datum = {
                "MetricName": metric,
                "StandardMetricName": metric,
                "Value": metric_value(ctx.job_name, plan.index, metric, dataset),
                "Set": dataset,
            }
            if metric in unnamed:
                # MetricName's enum (AutoMLMetricEnum) lacks it; only the extended one has it.
                del datum["MetricName"]
            metrics.append(datum)
    return metrics


def result_fields(
    ctx: CandidateContext, plan: CandidatePlan, config_key: str, config: dict[str, Any]
) -> dict[str, Any]:
    """Return a completed candidate's containers and ``CandidateProperties``.

    Tabular: ``InferenceContainers`` (see :func:`inference_containers`). Time series:
    ``InferenceContainers`` (data processing, then the forecasting ensemble). Text and image
    classification: ``InferenceContainerDefinitions`` with a CPU and a GPU list. Text generation:
    one GPU serving container in ``InferenceContainers``.

    :param ctx: job context.
    :param plan: the candidate.
    :param config_key: the job's ``AutoMLProblemTypeConfig`` member.
    :param config: its value.
    """
    fields: dict[str, Any] = {}
    if config_key in _CLASSIFICATION_IMAGES:
        fields["InferenceContainerDefinitions"] = _classification_containers(ctx, plan, config_key)
    elif config_key == "TimeSeriesForecastingJobConfig":
        fields["InferenceContainers"] = _forecast_containers(ctx, plan, config)
    elif config_key == "TextGenerationJobConfig":
        fields["InferenceContainers"] = _text_generation_containers(ctx, plan, config)
    else:
        fields["InferenceContainers"] = inference_containers(ctx, plan)
    fields["CandidateProperties"] = {
        "CandidateArtifactLocations": artifact_locations(ctx, plan),
        "CandidateMetrics": candidate_metrics(ctx, plan),
    }
    return fields


def deploy_containers(fields: dict[str, Any]) -> list[dict[str, Any]]:
    """The containers a ModelDeployConfig deploys of a candidate with these :func:`result_fields`.

    :param fields: the candidate's result fields.
    """
    if "InferenceContainers" in fields:
        return list(fields["InferenceContainers"])
    return list(fields["InferenceContainerDefinitions"]["CPU"])  # the emulator deploys on CPU


def _forecast_containers(
    ctx: CandidateContext, plan: CandidatePlan, config: dict[str, Any]
) -> list[dict[str, Any]]:
    processing_url, algorithm_url = model_data_urls(ctx, plan)
    quantiles = ",".join(config.get("ForecastQuantiles") or DEFAULT_QUANTILES)
    return [
        _container(
            ctx,
            _DATA_PROCESSING_IMAGE,
            processing_url,
            {"AUTOML_TRANSFORM_MODE": "feature-transform", "SAGEMAKER_PROGRAM": "sagemaker_serve"},
        ),
        _container(
            ctx,
            _FORECAST_IMAGE,
            algorithm_url,
            {
                "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
                "AUTOML_FORECAST_FREQUENCY": str(config.get("ForecastFrequency")),
                "AUTOML_FORECAST_HORIZON": str(config.get("ForecastHorizon")),
                "AUTOML_FORECAST_QUANTILES": quantiles,
            },
        ),
    ]


def _text_generation_containers(
    ctx: CandidateContext, plan: CandidatePlan, config: dict[str, Any]
) -> list[dict[str, Any]]:
    _, algorithm_url = model_data_urls(ctx, plan)
    environment = {
        "HF_MODEL_ID": "/opt/ml/model",
        "SM_NUM_GPUS": "1",
        "AUTOML_BASE_MODEL": str(config.get("BaseModelName") or DEFAULT_BASE_MODEL),
    }
    return [_container(ctx, _TEXT_GENERATION_IMAGE, algorithm_url, environment)]


def _classification_containers(
    ctx: CandidateContext, plan: CandidatePlan, config_key: str
) -> dict[str, list[dict[str, Any]]]:
    _, algorithm_url = model_data_urls(ctx, plan)
    environment = {
        "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
        "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label,probability,probabilities,labels",
    }
    return {
        unit: [_container(ctx, image, algorithm_url, dict(environment))]
        for unit, image in _CLASSIFICATION_IMAGES[config_key].items()
    }

"""Deterministic candidates of the V2-only problem types: algorithms, containers and metrics."""

from __future__ import annotations

from typing import Any

from airflow_autopilot.core.validation_v2 import FORECAST_ALGORITHMS
from airflow_autopilot.emulator import candidates as cand

#: Base model of a TextGenerationJobConfig without ``BaseModelName`` (AWS's default).
DEFAULT_BASE_MODEL = "Falcon7BInstruct"
#: Quantiles a forecasting job predicts when the request gives none (AWS's default).
DEFAULT_QUANTILES = ("p10", "p50", "p90")

#: Metrics reported per V2 problem type (``CandidateMetrics``).
CANDIDATE_METRICS: dict[str, tuple[str, ...]] = {
    "TimeSeriesForecastingJobConfig": ("AverageWeightedQuantileLoss", "MAPE", "MASE", "RMSE", "WAPE"),
    "TextClassificationJobConfig": ("Accuracy", "F1macro", "PrecisionMacro", "RecallMacro"),
    "ImageClassificationJobConfig": ("Accuracy", "F1macro", "PrecisionMacro", "RecallMacro"),
    "TextGenerationJobConfig": ("ValidationLoss", "TrainingLoss", "Perplexity"),
}

_FORECAST_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/autogluon-inference:1.1-cpu-py310"
_FORECAST_PROCESSING_IMAGE = (
    "683313688378.dkr.ecr.{region}.amazonaws.com/sagemaker-sklearn-automl:2.5-1-cpu-py3"
)
_IMAGES = {
    "TextClassificationJobConfig": {
        "CPU": "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-inference:2.1-transformers4.37-cpu-py310-ubuntu22.04",
        "GPU": "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-inference:2.1-transformers4.37-gpu-py310-cu118-ubuntu20.04",
    },
    "ImageClassificationJobConfig": {
        "CPU": "763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.1-cpu-py310",
        "GPU": "763104351884.dkr.ecr.{region}.amazonaws.com/pytorch-inference:2.1-gpu-py310",
    },
}
_TEXT_GENERATION_IMAGE = "763104351884.dkr.ecr.{region}.amazonaws.com/huggingface-pytorch-tgi-inference:2.1-tgi1.4-gpu-py310-cu121-ubuntu22.04"


def algorithms_for(config_key: str, config: dict[str, Any]) -> list[str]:
    """The algorithms (or model families) a V2 job's candidates are trained with, round-robin.

    :param config_key: the ``AutoMLProblemTypeConfig`` member.
    :param config: its value.
    """
    if config_key == "TimeSeriesForecastingJobConfig":
        chosen = ((config.get("CandidateGenerationConfig") or {}).get("AlgorithmsConfig") or [{}])[0]
        return list(chosen.get("AutoMLAlgorithms") or sorted(FORECAST_ALGORITHMS))
    if config_key == "TextGenerationJobConfig":
        return [str(config.get("BaseModelName") or DEFAULT_BASE_MODEL)]
    return ["text-classification" if config_key == "TextClassificationJobConfig" else "image-classification"]


def _model_url(ctx: cand.CandidateContext, plan: cand.CandidatePlan) -> str:
    _, algorithm = cand.model_data_urls(ctx, plan)
    return algorithm


def result_fields(
    config_key: str,
    ctx: cand.CandidateContext,
    plan: cand.CandidatePlan,
    config: dict[str, Any],
    base_model: str,
) -> dict[str, Any]:
    """A completed V2 candidate's containers and ``CandidateProperties``.

    Time series: ``InferenceContainers`` (data processing, then the forecasting ensemble). Text and
    image classification: ``InferenceContainerDefinitions`` with a CPU and a GPU list. Text
    generation: one GPU serving container in ``InferenceContainers``.

    :param config_key: the ``AutoMLProblemTypeConfig`` member.
    :param ctx: job context.
    :param plan: the candidate.
    :param config: the problem type config of the request.
    :param base_model: the text-generation base model.
    """
    region = ctx.region
    url = _model_url(ctx, plan)
    fields: dict[str, Any] = {}
    if config_key == "TimeSeriesForecastingJobConfig":
        quantiles = ",".join(config.get("ForecastQuantiles") or DEFAULT_QUANTILES)
        processing_url, _ = cand.model_data_urls(ctx, plan)
        fields["InferenceContainers"] = [
            {
                "Image": _FORECAST_PROCESSING_IMAGE.format(region=region),
                "ModelDataUrl": processing_url,
                "Environment": {
                    "AUTOML_TRANSFORM_MODE": "feature-transform",
                    "SAGEMAKER_PROGRAM": "sagemaker_serve",
                },
            },
            {
                "Image": _FORECAST_IMAGE.format(region=region),
                "ModelDataUrl": url,
                "Environment": {
                    "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
                    "AUTOML_FORECAST_FREQUENCY": str(config.get("ForecastFrequency")),
                    "AUTOML_FORECAST_HORIZON": str(config.get("ForecastHorizon")),
                    "AUTOML_FORECAST_QUANTILES": quantiles,
                },
            },
        ]
    elif config_key == "TextGenerationJobConfig":
        fields["InferenceContainers"] = [
            {
                "Image": _TEXT_GENERATION_IMAGE.format(region=region),
                "ModelDataUrl": url,
                "Environment": {
                    "HF_MODEL_ID": "/opt/ml/model",
                    "SM_NUM_GPUS": "1",
                    "AUTOML_BASE_MODEL": base_model,
                },
            }
        ]
    else:
        definitions = {}
        for unit, image in _IMAGES[config_key].items():
            definitions[unit] = [
                {
                    "Image": image.format(region=region),
                    "ModelDataUrl": url,
                    "Environment": {
                        "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
                        "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label,probability,probabilities,labels",
                    },
                }
            ]
        fields["InferenceContainerDefinitions"] = definitions
    metrics = []
    for metric in CANDIDATE_METRICS[config_key]:
        for dataset in ("Train", "Validation"):
            datum = {
                "StandardMetricName": metric,
                "Value": cand.metric_value(ctx.job_name, plan.index, metric, dataset),
                "Set": dataset,
            }
            if config_key != "TextGenerationJobConfig":
                datum["MetricName"] = metric  # MetricName's enum lacks the text-generation metrics
            metrics.append(datum)
    fields["CandidateProperties"] = {
        "CandidateArtifactLocations": cand.artifact_locations(ctx, plan),
        "CandidateMetrics": metrics,
    }
    return fields

"""CreateAutoMLJobV2 rules (Airflow-free core): each problem type's config, metrics, forecasting
settings, column names, data split, deploy config; each message names the field and the rule."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from airflow_autopilot.core.fields.automl import allowed_metrics, problem_config_key
from airflow_autopilot.core.job import metric_direction
from airflow_autopilot.core.validation import create_v2_request_errors

ROLE = "arn:aws:iam::123456789012:role/Autopilot"
TS = {
    "ForecastFrequency": "W",
    "ForecastHorizon": 4,
    "TimeSeriesConfig": {
        "TargetAttributeName": "y",
        "TimestampAttributeName": "t",
        "ItemIdentifierAttributeName": "id",
    },
}


def request(config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    base = {
        "AutoMLJobName": "job",
        "AutoMLJobInputDataConfig": [
            {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}}}
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
        "AutoMLProblemTypeConfig": config,
        "RoleArn": ROLE,
    }
    base.update(extra)
    return base


@pytest.mark.parametrize(
    "config",
    [
        {"TabularJobConfig": {"TargetAttributeName": "y"}},
        {"TimeSeriesForecastingJobConfig": TS},
        {"TextClassificationJobConfig": {"ContentColumn": "text", "TargetLabelColumn": "label"}},
        {"ImageClassificationJobConfig": {}},
        {"TextGenerationJobConfig": {}},
    ],
)
def test_minimal_request_of_every_problem_type_is_valid(config):
    assert create_v2_request_errors(request(config)) == []
    assert problem_config_key(request(config)) == next(iter(config))


def ts(**changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(TS)
    config.update(changes)
    return {"TimeSeriesForecastingJobConfig": config}


@pytest.mark.parametrize(
    ("req", "expected"),
    [
        (request({}), "AutoMLProblemTypeConfig: give exactly one of"),
        (
            request({"TabularJobConfig": {"TargetAttributeName": "y"}, "ImageClassificationJobConfig": {}}),
            "(got 2)",
        ),
        (request({"VideoJobConfig": {}}), "['VideoJobConfig'] unknown"),
        (request({"TabularJobConfig": {}}), "TabularJobConfig.TargetAttributeName: required"),
        (
            request({"TabularJobConfig": {"TargetAttributeName": "y", "ProblemType": "Ranking"}}),
            "ProblemType: 'Ranking'",
        ),
        (request(ts(ForecastFrequency="2X")), "ForecastFrequency: '2X' must be a frequency"),
        (request(ts(ForecastFrequency="12M")), "ForecastFrequency: '12M'"),
        (request(ts(ForecastHorizon=0)), "ForecastHorizon: 0 must be an integer from 1 to 500"),
        (request(ts(ForecastHorizon="4")), "ForecastHorizon: '4'"),
        (request(ts(ForecastQuantiles=["p10", "p100"])), "'p100' must be a quantile p1 to p99"),
        (
            request(ts(ForecastQuantiles=["p1", "p2", "p3", "p4", "p5", "p6"])),
            "6 quantiles given; at most 5 allowed",
        ),
        (request(ts(ForecastQuantiles=["p50", "p50"])), "lists a quantile twice"),
        (
            request(
                ts(
                    TimeSeriesConfig={
                        "TargetAttributeName": "y",
                        "TimestampAttributeName": "y",
                        "ItemIdentifierAttributeName": "id",
                    }
                )
            ),
            "must differ; ['y'] repeated",
        ),
        (
            request(ts(TimeSeriesConfig={"TargetAttributeName": "y"})),
            "TimeSeriesConfig.TimestampAttributeName: required",
        ),
        (
            request(ts(CandidateGenerationConfig={"AlgorithmsConfig": [{"AutoMLAlgorithms": ["xgboost"]}]})),
            "['xgboost'] not available in time-series forecasting",
        ),
        (
            request({"TextClassificationJobConfig": {"ContentColumn": "a", "TargetLabelColumn": "a"}}),
            "must be different columns",
        ),
        (request({"TextClassificationJobConfig": {"ContentColumn": "a"}}), "TargetLabelColumn: required"),
        (request({"TextGenerationJobConfig": {"BaseModelName": "bad name"}}), "BaseModelName: 'bad name'"),
        (
            request({"TextGenerationJobConfig": {"TextGenerationHyperParameters": {"epochs": "3"}}}),
            "['epochs'] unknown",
        ),
        (
            request({"TextGenerationJobConfig": {"TextGenerationHyperParameters": {"epochCount": 3}}}),
            "must be strings",
        ),
        (
            request({"TextGenerationJobConfig": {}}, AutoMLJobObjective={"MetricName": "Accuracy"}),
            "not supported for TextGenerationJobConfig",
        ),
        (
            request({"TimeSeriesForecastingJobConfig": TS}, AutoMLJobObjective={"MetricName": "Accuracy"}),
            "'Accuracy' is not valid for TimeSeriesForecasting",
        ),
        (
            request(
                {"TabularJobConfig": {"TargetAttributeName": "y", "ProblemType": "Regression"}},
                AutoMLJobObjective={"MetricName": "F1"},
            ),
            "'F1' is not valid for Tabular Regression",
        ),
        (
            request({"ImageClassificationJobConfig": {}}, DataSplitConfig={"ValidationFraction": 0}),
            "ValidationFraction: 0 must be greater than 0",
        ),
        (
            request({"ImageClassificationJobConfig": {"CompletionCriteria": {"MaxCandidates": 0}}}),
            "CompletionCriteria.MaxCandidates: 0 must be an integer from 1 to 750",
        ),
        (
            request(
                {"ImageClassificationJobConfig": {}},
                ModelDeployConfig={"AutoGenerateEndpointName": True, "EndpointName": "e"},
            ),
            "EndpointName must not be given",
        ),
        (
            request(
                {"ImageClassificationJobConfig": {}},
                AutoMLJobInputDataConfig=[
                    {
                        "ContentType": "text/plain",
                        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/"}},
                    }
                ],
            ),
            "ContentType: 'text/plain' must be one of ['image/*', 'image/jpeg', 'image/png']",
        ),
        (
            request(
                {"TabularJobConfig": {"TargetAttributeName": "y"}},
                AutoMLJobInputDataConfig=[
                    {
                        "TargetAttributeName": "y",
                        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/"}},
                    }
                ],
            ),
            "not a V2 channel field",
        ),
        (
            request({"TabularJobConfig": {"TargetAttributeName": "y"}}, AutoMLJobName="bad_name"),
            "AutoMLJobName: 'bad_name' must match",
        ),
        (request({"TabularJobConfig": {"TargetAttributeName": "y"}}, Tags=[{"Key": ""}]), "Tags[0].Key"),
    ],
)
def test_each_broken_rule_names_its_field(req, expected):
    errors = create_v2_request_errors(req)
    assert any(expected in e for e in errors), errors


def test_forecast_and_generation_metrics_are_minimized():
    for metric in (*allowed_metrics("TimeSeriesForecastingJobConfig"), "ValidationLoss", "Perplexity"):
        assert metric_direction(metric) == "Minimize", metric
    assert allowed_metrics("TabularJobConfig", "Regression") == ("MSE", "RMSE", "MAE", "R2")

from __future__ import annotations

import copy

import pytest

from airflow_autopilot.core.validation import (
    create_request_errors,
    default_metric,
    job_name_errors,
    validate_create_request,
)
from airflow_autopilot.exceptions import AutopilotValidationError

VALID = {
    "AutoMLJobName": "churn-2024-01",
    "InputDataConfig": [
        {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/train/"}},
            "TargetAttributeName": "churn",
        }
    ],
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/output"},
    "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
}


def with_changes(**changes):
    request = copy.deepcopy(VALID)
    for key, value in changes.items():
        if value is None:
            request.pop(key, None)
        else:
            request[key] = value
    return request


def test_valid_minimal_request_passes():
    assert create_request_errors(VALID) == []
    validate_create_request(VALID)


def test_valid_full_request_passes():
    request = with_changes(
        ProblemType="Regression",
        AutoMLJobObjective={"MetricName": "RMSE"},
        AutoMLJobConfig={
            "CompletionCriteria": {"MaxCandidates": 750, "MaxAutoMLJobRuntimeInSeconds": 3600},
            "Mode": "ENSEMBLING",
            "CandidateGenerationConfig": {
                "AlgorithmsConfig": [{"AutoMLAlgorithms": ["xgboost", "catboost"]}]
            },
            "DataSplitConfig": {"ValidationFraction": 0.3},
        },
        ModelDeployConfig={"AutoGenerateEndpointName": False, "EndpointName": "ep"},
        Tags=[{"Key": "team", "Value": "ml"}],
    )
    assert create_request_errors(request) == []


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("bad_name", "must match"),
        ("a" * 33, "at most 32"),
        ("-leading", "must match"),
        ("trailing-", "must match"),
        ("", "required"),
        (None, "required"),
    ],
)
def test_job_name_rules(name, fragment):
    errors = job_name_errors(name)
    assert len(errors) == 1
    assert errors[0].startswith("AutoMLJobName:")
    assert fragment in errors[0]


def test_job_name_with_double_hyphen_and_32_chars_is_valid():
    assert job_name_errors("a--b") == []
    assert job_name_errors("a" * 32) == []


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"RoleArn": "not-an-arn-but-long-enough"}, "RoleArn", "IAM role ARN"),
        ({"RoleArn": None}, "RoleArn", "required"),
        (
            {"OutputDataConfig": {"S3OutputPath": "bucket/output"}},
            "OutputDataConfig.S3OutputPath",
            "must match",
        ),
        (
            {"OutputDataConfig": {"S3OutputPath": "s3://b/" + "x" * 1030}},
            "OutputDataConfig.S3OutputPath",
            "at most 1024",
        ),
        ({"InputDataConfig": []}, "InputDataConfig", "1 or 2"),
        ({"InputDataConfig": VALID["InputDataConfig"] * 3}, "InputDataConfig", "at most 2"),
        (
            {"ProblemType": "Ranking", "AutoMLJobObjective": {"MetricName": "F1"}},
            "ProblemType",
            "must be one of",
        ),
        ({"ProblemType": "Regression"}, "ProblemType and AutoMLJobObjective", "both or neither"),
        (
            {"ProblemType": "Regression", "AutoMLJobObjective": {"MetricName": "F1"}},
            "AutoMLJobObjective.MetricName",
            "not valid for Regression",
        ),
        (
            {"AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 751}}},
            "AutoMLJobConfig.CompletionCriteria.MaxCandidates",
            "from 1 to 750",
        ),
        (
            {"AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 0}}},
            "AutoMLJobConfig.CompletionCriteria.MaxCandidates",
            "from 1 to 750",
        ),
        (
            {"AutoMLJobConfig": {"DataSplitConfig": {"ValidationFraction": 1.0}}},
            "AutoMLJobConfig.DataSplitConfig.ValidationFraction",
            "less than 1",
        ),
        (
            {
                "AutoMLJobConfig": {
                    "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["xgboost"]}]}
                }
            },
            "AutoMLJobConfig.CandidateGenerationConfig.AlgorithmsConfig",
            "not allowed when Mode is AUTO",
        ),
        (
            {
                "AutoMLJobConfig": {
                    "Mode": "HYPERPARAMETER_TUNING",
                    "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["catboost"]}]},
                }
            },
            "AutoMLJobConfig.CandidateGenerationConfig.AlgorithmsConfig[0].AutoMLAlgorithms",
            "not available in HYPERPARAMETER_TUNING",
        ),
        (
            {"ModelDeployConfig": {"AutoGenerateEndpointName": True, "EndpointName": "ep"}},
            "ModelDeployConfig",
            "must not be given",
        ),
        (
            {"ModelDeployConfig": {"AutoGenerateEndpointName": False}},
            "ModelDeployConfig.EndpointName",
            "required",
        ),
        ({"Tags": [{"Key": "k", "Value": "v"}] * 51}, "Tags", "at most 50"),
        ({"GenerateCandidateDefinitionsOnly": "yes"}, "GenerateCandidateDefinitionsOnly", "true or false"),
        ({"AutoMLJobNme": "typo"}, "['AutoMLJobNme']", "unknown CreateAutoMLJob field"),
    ],
)
def test_each_rule_names_field_and_rule(changes, field, rule):
    errors = create_request_errors(with_changes(**changes))
    matching = [e for e in errors if e.startswith(field + ":") or e.startswith(field + " ")]
    assert matching, errors
    assert any(rule in e for e in matching), errors


def test_channel_rules():
    channel = VALID["InputDataConfig"][0]
    bad = dict(channel, ContentType="application/json", CompressionType="Zip")
    bad["DataSource"] = {"S3DataSource": {"S3DataType": "AugmentedManifestFile", "S3Uri": "ftp://x"}}
    errors = create_request_errors(with_changes(InputDataConfig=[bad]))
    assert any(e.startswith("InputDataConfig[0].ContentType:") for e in errors)
    assert any(e.startswith("InputDataConfig[0].CompressionType:") for e in errors)
    assert any(e.startswith("InputDataConfig[0].DataSource.S3DataSource.S3DataType:") for e in errors)
    assert any(e.startswith("InputDataConfig[0].DataSource.S3DataSource.S3Uri:") for e in errors)


def test_two_channels_need_training_and_validation_with_same_target():
    train = dict(VALID["InputDataConfig"][0], ChannelType="training")
    valid = dict(VALID["InputDataConfig"][0], ChannelType="validation")
    assert create_request_errors(with_changes(InputDataConfig=[train, valid])) == []
    errors = create_request_errors(
        with_changes(InputDataConfig=[train, dict(valid, TargetAttributeName="y")])
    )
    assert any("same TargetAttributeName" in e for e in errors)
    errors = create_request_errors(with_changes(InputDataConfig=[train, train]))
    assert any("'training' on one and 'validation'" in e for e in errors)


def test_all_problems_reported_together():
    request = with_changes(AutoMLJobName="bad_name", RoleArn=None, OutputDataConfig=None)
    with pytest.raises(AutopilotValidationError) as info:
        validate_create_request(request)
    assert len(info.value.errors) == 3
    assert "AutoMLJobName" in str(info.value) and "RoleArn" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_default_metrics():
    assert default_metric("BinaryClassification") == "F1"
    assert default_metric("MulticlassClassification") == "Accuracy"
    assert default_metric("Regression") == "MSE"


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("None", "'None' is what a template renders for an empty value"),
        ("null", "'null' is what a template renders"),
        ("   ", "required, got a blank string"),
        ({"AutoMLJobName": "x"}, "expected a string, got dict {'AutoMLJobName': 'x'}"),
        (["a"], "expected a string, got list"),
    ],
)
def test_job_name_renderings_of_empty_values_and_wrong_types(name, fragment):
    errors = job_name_errors(name, "job_name")
    assert len(errors) == 1 and errors[0].startswith("job_name: ")
    assert fragment in errors[0]
    if isinstance(name, str):
        assert "xcom_pull" in errors[0]  # the likely cause: an upstream XCom that is missing


def test_validation_errors_say_what_was_invalid():
    from airflow_autopilot.core.validation import validate_job_name

    with pytest.raises(AutopilotValidationError, match=r"^Invalid AutopilotJobSensor arguments \(1 problem"):
        validate_job_name("None", "job_name", subject="AutopilotJobSensor arguments")
    with pytest.raises(AutopilotValidationError, match=r"^Invalid Autopilot job request"):
        validate_create_request(with_changes(AutoMLJobName="null"))


@pytest.mark.parametrize(
    ("value", "kwargs", "ok"),
    [
        (1, {}, True),
        (0.5, {}, True),
        (0, {}, False),
        (0, {"allow_zero": True}, True),
        (-1, {"allow_zero": True}, False),
        (float("inf"), {}, False),
        (float("nan"), {}, False),
        (None, {}, False),
        (None, {"allow_none": True}, True),
        (True, {}, False),
        ("5", {}, False),
        (10**12, {}, False),
    ],
)
def test_seconds_rule(value, kwargs, ok):
    from airflow_autopilot.core.validation import seconds_errors

    errors = seconds_errors(value, "poll_interval", **kwargs)
    assert (errors == []) is ok
    assert all(e.startswith("poll_interval: ") for e in errors)

"""The emulator's CreateAutoMLJobV2 jobs of every problem type, through real boto3, in-process."""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore.exceptions import ClientError
from test_emulator_inprocess import BUCKET, END_STATUSES, ROLE, client, seed_bucket, tags

from airflow_autopilot.emulator.sample_data import sample_objects

TS_CONFIG = {
    "ForecastFrequency": "W",
    "ForecastHorizon": 4,
    "TimeSeriesConfig": {
        "TargetAttributeName": "demand",
        "TimestampAttributeName": "week",
        "ItemIdentifierAttributeName": "item_id",
    },
}
#: Minimal (required fields only) problem type config and input prefix of each problem type.
PROBLEMS: dict[str, tuple[dict[str, Any], str, str | None]] = {
    "TabularJobConfig": ({"TargetAttributeName": "churn"}, "train/", None),
    "TimeSeriesForecastingJobConfig": (TS_CONFIG, "demand/", None),
    "TextClassificationJobConfig": (
        {"ContentColumn": "review", "TargetLabelColumn": "sentiment"},
        "reviews/",
        None,
    ),
    "ImageClassificationJobConfig": ({}, "images/", "image/png"),
    "TextGenerationJobConfig": ({}, "fine-tuning/", None),
}


@pytest.fixture
def sm(autopilot_emulator: Any) -> Any:
    seed_bucket()
    s3 = client("s3")
    for key, body in sample_objects().items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return client("sagemaker")


def create_v2(
    sm: Any,
    name: str,
    kind: str,
    config: dict[str, Any] | None = None,
    prefix: str | None = None,
    **kwargs: Any,
) -> str:
    default_config, default_prefix, content_type = PROBLEMS[kind]
    channel: dict[str, Any] = {
        "DataSource": {
            "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{prefix or default_prefix}"}
        }
    }
    if content_type:
        channel["ContentType"] = content_type
    return sm.create_auto_ml_job_v2(
        AutoMLJobName=name,
        AutoMLJobInputDataConfig=[channel],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        AutoMLProblemTypeConfig={kind: default_config if config is None else config},
        RoleArn=ROLE,
        **kwargs,
    )["AutoMLJobArn"]


def finish(emu: Any, sm: Any, name: str) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    seen: list[tuple[str, str]] = []
    for _ in range(200):
        described = sm.describe_auto_ml_job_v2(AutoMLJobName=name)
        state = (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"])
        if not seen or seen[-1] != state:
            seen.append(state)
        if described["AutoMLJobStatus"] in END_STATUSES:
            return described, seen
        emu.advance(0.5)
    raise AssertionError(f"{name} did not finish")


def output_shape_errors(operation: str, response: dict[str, Any]) -> list[str]:
    """Members of ``response`` (recursively) that botocore's output shape of ``operation`` lacks."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    problems: list[str] = []

    def walk(shape: Any, value: Any, path: str) -> None:
        if shape.type_name == "structure":
            assert isinstance(value, dict), path
            for key, item in value.items():
                if key not in shape.members:
                    problems.append(f"{path}.{key}")
                else:
                    walk(shape.members[key], item, f"{path}.{key}")
            problems.extend(f"{path}.{m} (required)" for m in shape.required_members if m not in value)
        elif shape.type_name == "list":
            for i, item in enumerate(value):
                walk(shape.member, item, f"{path}[{i}]")
        elif shape.type_name == "map":
            for key, item in value.items():
                if shape.key.enum and key not in shape.key.enum:
                    problems.append(f"{path} key {key}")
                walk(shape.value, item, f"{path}[{key}]")
        elif shape.type_name == "string" and shape.enum and value not in shape.enum:
            problems.append(f"{path}={value!r} not in enum")

    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    walk(model.operation_model(operation).output_shape, body, "$")
    return problems


@pytest.mark.parametrize("kind", sorted(PROBLEMS))
def test_minimal_v2_job_of_every_problem_type_completes_with_a_best_candidate(autopilot_emulator, sm, kind):
    name = f"v2-{kind[:10].lower()}"
    arn = create_v2(sm, name, kind)
    assert arn.endswith(f":automl-job/{name}")
    described, seen = finish(autopilot_emulator, sm, name)
    assert described["AutoMLJobStatus"] == "Completed", described.get("FailureReason")
    assert seen[0] == ("InProgress", "Starting") and seen[-1] == ("Completed", "Completed")
    assert len(seen) >= 4
    assert described["AutoMLProblemTypeConfigName"] == kind.removesuffix("JobConfig")
    best = described["BestCandidate"]
    assert best["CandidateStatus"] == "Completed"
    if kind in ("TextClassificationJobConfig", "ImageClassificationJobConfig"):
        assert set(best["InferenceContainerDefinitions"]) == {"CPU", "GPU"}
        assert "InferenceContainers" not in best
        assert "gpu" in best["InferenceContainerDefinitions"]["GPU"][0]["Image"]
    else:
        assert best["InferenceContainers"]
    candidates = sm.list_candidates_for_auto_ml_job(AutoMLJobName=name)["Candidates"]
    assert best["CandidateName"] in {c["CandidateName"] for c in candidates}
    # Text-generation candidates are ranked by ValidationLoss, which the model's FinalAutoMLJobObjectiveMetric
    # enum lacks (botocore does not check enums in answers); nothing else may leave the model.
    allowed = {
        "FinalAutoMLJobObjectiveMetric.MetricName='ValidationLoss'",
        "FinalAutoMLJobObjectiveMetric.StandardMetricName='ValidationLoss'",
    }
    for operation, body in (
        ("DescribeAutoMLJobV2", described),
        ("ListCandidatesForAutoMLJob", {"Candidates": candidates}),
    ):
        errors = output_shape_errors(operation, body)
        assert [e for e in errors if not any(a in e for a in allowed)] == []


def test_forecasting_job_reports_forecast_metrics_and_resolved_objective(autopilot_emulator, sm):
    create_v2(
        sm,
        "demand",
        "TimeSeriesForecastingJobConfig",
        config={**TS_CONFIG, "ForecastQuantiles": ["p10", "p90"]},
    )
    described, seen = finish(autopilot_emulator, sm, "demand")
    assert ("InProgress", "TrainingModels") in seen and ("InProgress", "ModelTuning") not in seen
    best = described["BestCandidate"]
    assert best["FinalAutoMLJobObjectiveMetric"]["MetricName"] == "AverageWeightedQuantileLoss"
    assert best["FinalAutoMLJobObjectiveMetric"]["Type"] == "Minimize"
    metrics = {m["StandardMetricName"] for m in best["CandidateProperties"]["CandidateMetrics"]}
    assert metrics == {"AverageWeightedQuantileLoss", "MAPE", "MASE", "RMSE", "WAPE"}
    assert (
        described["ResolvedAttributes"]["AutoMLJobObjective"]["MetricName"] == "AverageWeightedQuantileLoss"
    )
    assert best["InferenceContainers"][-1]["Environment"]["AUTOML_FORECAST_QUANTILES"] == "p10,p90"
    values = [
        c["FinalAutoMLJobObjectiveMetric"]["Value"]
        for c in sm.list_candidates_for_auto_ml_job(AutoMLJobName="demand", MaxResults=100)["Candidates"]
    ]
    assert best["FinalAutoMLJobObjectiveMetric"]["Value"] == min(values)


def test_text_generation_job_resolves_its_base_model_and_ranks_by_validation_loss(autopilot_emulator, sm):
    create_v2(sm, "llm", "TextGenerationJobConfig", config={"BaseModelName": "Llama2-7B"})
    described, _ = finish(autopilot_emulator, sm, "llm")
    resolved = described["ResolvedAttributes"]["AutoMLProblemTypeResolvedAttributes"]
    assert resolved == {"TextGenerationResolvedAttributes": {"BaseModelName": "Llama2-7B"}}
    metric = described["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]
    assert (metric["MetricName"], metric["Type"]) == ("ValidationLoss", "Minimize")
    names = {
        m["StandardMetricName"] for m in described["BestCandidate"]["CandidateProperties"]["CandidateMetrics"]
    }
    assert {"ValidationLoss", "Perplexity"} <= names


@pytest.mark.parametrize(
    ("kind", "config", "prefix", "reason"),
    [
        (
            "TimeSeriesForecastingJobConfig",
            {**TS_CONFIG, "ForecastFrequency": "D"},
            None,
            "does not match the data",
        ),
        (
            "TimeSeriesForecastingJobConfig",
            {
                **TS_CONFIG,
                "TimeSeriesConfig": {**TS_CONFIG["TimeSeriesConfig"], "TargetAttributeName": "sales"},
            },
            None,
            "['sales']",
        ),
        ("TimeSeriesForecastingJobConfig", {**TS_CONFIG, "ForecastHorizon": 40}, None, "too long"),
        (
            "TextClassificationJobConfig",
            {"ContentColumn": "text", "TargetLabelColumn": "sentiment"},
            None,
            "['text']",
        ),
        ("ImageClassificationJobConfig", None, "reviews/", "one folder per label"),
        ("TextGenerationJobConfig", None, "reviews/", "['input', 'output']"),
    ],
)
def test_v2_input_that_does_not_fit_the_problem_type_fails_the_job_with_a_reason(
    autopilot_emulator, sm, kind, config, prefix, reason
):
    create_v2(sm, "bad-input", kind, config=config, prefix=prefix)
    described, _ = finish(autopilot_emulator, sm, "bad-input")
    assert described["AutoMLJobStatus"] == "Failed"
    assert reason in described["FailureReason"]
    assert "BestCandidate" not in described


@pytest.mark.parametrize(
    ("outcome", "status", "secondary"),
    [
        ("failed", "Failed", "Failed"),
        ("stopped", "Stopped", "Stopped"),
        ("runtime-limit", "Completed", "MaxAutoMLJobRuntimeReached"),
    ],
)
def test_v2_jobs_honour_the_outcome_controls(autopilot_emulator, sm, outcome, status, secondary):
    create_v2(sm, "ctl", "TextClassificationJobConfig", Tags=tags(outcome=outcome))
    described, _ = finish(autopilot_emulator, sm, "ctl")
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == (status, secondary)


def test_v2_job_stops_and_deploys(autopilot_emulator, sm):
    create_v2(sm, "stop-me", "ImageClassificationJobConfig")
    sm.stop_auto_ml_job(AutoMLJobName="stop-me")
    assert sm.describe_auto_ml_job_v2(AutoMLJobName="stop-me")["AutoMLJobStatus"] == "Stopping"
    assert finish(autopilot_emulator, sm, "stop-me")[0]["AutoMLJobStatus"] == "Stopped"
    create_v2(
        sm, "deploy-me", "ImageClassificationJobConfig", ModelDeployConfig={"AutoGenerateEndpointName": True}
    )
    described, seen = finish(autopilot_emulator, sm, "deploy-me")
    assert ("InProgress", "DeployingModel") in seen
    endpoint = described["ModelDeployResult"]["EndpointName"]
    assert client("sagemaker").describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"


def test_v1_describe_refuses_a_v2_job_as_sagemaker_does(sm):
    create_v2(sm, "only-v2", "TabularJobConfig")
    with pytest.raises(ClientError) as err:
        sm.describe_auto_ml_job(AutoMLJobName="only-v2")
    assert err.value.response["Error"]["Code"] == "ValidationException"


@pytest.mark.parametrize(
    ("kind", "config", "extra", "part"),
    [
        ("TimeSeriesForecastingJobConfig", {**TS_CONFIG, "ForecastFrequency": "2X"}, {}, "forecastFrequency"),
        (
            "TimeSeriesForecastingJobConfig",
            {**TS_CONFIG, "ForecastQuantiles": ["p0"]},
            {},
            "forecastQuantiles",
        ),
        (
            "TextClassificationJobConfig",
            None,
            {"AutoMLJobObjective": {"MetricName": "MSE"}},
            "'MSE' is not valid",
        ),
        ("TabularJobConfig", None, {"DataSplitConfig": {"ValidationFraction": 1.5}}, "validationFraction"),
    ],
)
def test_invalid_v2_request_is_a_validation_exception_and_creates_nothing(sm, kind, config, extra, part):
    with pytest.raises(ClientError) as err:
        create_v2(sm, "invalid", kind, config=config, **extra)
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert part in err.value.response["Error"]["Message"]
    assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"] == []


def test_v2_jobs_take_the_fault_and_slowness_tags(autopilot_emulator, sm):
    create_v2(sm, "faulty", "TextGenerationJobConfig", Tags=tags(throttle="1", outcome="slow"))
    with pytest.raises(ClientError) as raised:
        sm.describe_auto_ml_job_v2(AutoMLJobName="faulty")
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    create_v2(sm, "brisk", "TextGenerationJobConfig")
    autopilot_emulator.advance(6.0)
    brisk = sm.describe_auto_ml_job_v2(AutoMLJobName="brisk")["AutoMLJobStatus"]
    slow = sm.describe_auto_ml_job_v2(AutoMLJobName="faulty")["AutoMLJobStatus"]
    assert (brisk, slow) == ("Completed", "InProgress")


@pytest.mark.parametrize(
    ("kind", "data_type", "content_type"),
    # Parquet where the problem type takes it (images take image content types only).
    dict.fromkeys(
        (kind, data_type, content_type)
        for kind in sorted(PROBLEMS)
        for data_type, content_type in (
            ("S3Prefix", PROBLEMS[kind][2] or "x-application/vnd.amazon+parquet"),
            ("ManifestFile", PROBLEMS[kind][2]),
            ("S3Prefix", PROBLEMS[kind][2]),
        )
    ),
)
def test_every_problem_type_fails_an_input_with_no_objects_whatever_its_format(
    autopilot_emulator, sm, kind, data_type, content_type
):
    channel: dict[str, Any] = {
        "DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": f"s3://{BUCKET}/nothing/"}}
    }
    if content_type:
        channel["ContentType"] = content_type
    sm.create_auto_ml_job_v2(
        AutoMLJobName="empty",
        AutoMLJobInputDataConfig=[channel],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        AutoMLProblemTypeConfig={kind: PROBLEMS[kind][0]},
        RoleArn=ROLE,
    )
    described, _ = finish(autopilot_emulator, sm, "empty")
    assert described["AutoMLJobStatus"] == "Failed"
    assert "No input data found" in described["FailureReason"]
    assert "AutoMLJobInputDataConfig" in described["FailureReason"]


@pytest.mark.parametrize(
    ("kind", "prefix", "header"),
    [
        ("TextClassificationJobConfig", "reviews/", b"review,sentiment"),
        ("TextGenerationJobConfig", "fine-tuning/", b"input,output"),
        ("TimeSeriesForecastingJobConfig", "demand/", b"item_id,week,demand"),
    ],
)
def test_a_csv_error_names_its_line_for_every_problem_type(autopilot_emulator, sm, kind, prefix, header):
    client("s3").put_object(Bucket=BUCKET, Key=f"{prefix}zz-bad.csv", Body=header + b'\n1,"a"x,2\n')
    create_v2(sm, "bad-csv", kind)
    described, _ = finish(autopilot_emulator, sm, "bad-csv")
    assert described["AutoMLJobStatus"] == "Failed"
    assert "as CSV (line 2)" in described["FailureReason"]
    assert "(zz-bad.csv)" not in described["FailureReason"] and "zz-bad.csv" in described["FailureReason"]

"""The Autopilot emulator in-process (moto ``mock_aws``), driven through real boto3 clients."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_autopilot.emulator import controls
from airflow_autopilot.emulator.candidates import metric_value

ROLE = "arn:aws:iam::123456789012:role/AutopilotRole"
BUCKET = "emu-data"
NO_RETRY = Config(retries={"max_attempts": 0, "mode": "standard"})
BINARY_CSV = b"age,income,churn\n" + b"".join(
    f"{20 + i},{1000 + 37 * i},{'yes' if i % 3 else 'no'}\n".encode() for i in range(30)
)
MULTICLASS_CSV = b"a,b,species\n" + b"".join(
    f"{i},{i * 2},{['setosa', 'versicolor', 'virginica'][i % 3]}\n".encode() for i in range(30)
)
REGRESSION_CSV = b"rooms,area,price\n" + b"".join(
    f"{i % 5},{50 + i},{100000 + i * 1234.5}\n".encode() for i in range(30)
)
END_STATUSES = ("Completed", "Failed", "Stopped")


_CLIENTS: dict[tuple[str, bool], Any] = {}


def client(service: str, retries: bool = False) -> Any:
    """Return a cached boto3 client (creating clients is the slow part of these tests).

    moto's ``mock_aws`` intercepts every botocore client while active, so one client serves all tests.
    """
    key = (service, retries)
    if key not in _CLIENTS:
        import boto3

        config = Config(retries={"max_attempts": 3, "mode": "standard"}) if retries else NO_RETRY
        _CLIENTS[key] = boto3.client(
            service,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=config,
        )
    return _CLIENTS[key]


def seed_bucket() -> None:
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="train/data.csv", Body=BINARY_CSV)


@pytest.fixture
def emu(autopilot_emulator: Any) -> Any:
    """The in-process emulator with a bucket holding a binary-classification CSV."""
    seed_bucket()
    return autopilot_emulator


@pytest.fixture
def sm(emu: Any) -> Any:
    """A SageMaker client without retries, so injected faults surface."""
    return client("sagemaker")


def create(sm: Any, name: str, prefix: str = "train/", target: str = "churn", **kwargs: Any) -> str:
    """Create a V1 AutoML job on the emulator and return its ARN."""
    request: dict[str, Any] = {
        "AutoMLJobName": name,
        "InputDataConfig": [
            {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{prefix}"}
                },
                "TargetAttributeName": target,
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/output"},
        "RoleArn": ROLE,
    }
    request.update(kwargs)
    return sm.create_auto_ml_job(**request)["AutoMLJobArn"]


def finish(emu: Any, sm: Any, name: str) -> dict[str, Any]:
    """Jump the emulator clock until the job is terminal; return the final description."""
    for _ in range(50):
        described = sm.describe_auto_ml_job(AutoMLJobName=name)
        if described["AutoMLJobStatus"] in END_STATUSES:
            return described
        emu.advance(5.0)
    raise AssertionError(f"{name} did not finish")


def tags(**values: str) -> list[dict[str, str]]:
    return [
        {"Key": f"autopilot-emulator:{key.replace('_', '-')}", "Value": value}
        for key, value in values.items()
    ]


def all_candidates(sm: Any, name: str, **kwargs: Any) -> list[dict[str, Any]]:
    return sm.list_candidates_for_auto_ml_job(AutoMLJobName=name, MaxResults=100, **kwargs)["Candidates"]


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("overrides", "message_part"),
    [
        ({"AutoMLJobName": "bad_name"}, "regular expression"),
        ({"AutoMLJobName": "a" * 40}, "length"),
        ({"AutoMLJobName": "-leading-dash"}, "regular expression"),
        ({"AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 751}}}, "between 1 and 750"),
        ({"AutoMLJobConfig": {"DataSplitConfig": {"ValidationFraction": 1.0}}}, "validationFraction"),
        ({"AutoMLJobConfig": {"DataSplitConfig": {"ValidationFraction": 0.0}}}, "validationFraction"),
        (
            {
                "AutoMLJobConfig": {
                    "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["xgboost"]}]}
                }
            },
            "Mode is AUTO",
        ),
        (
            {
                "AutoMLJobConfig": {
                    "Mode": "ENSEMBLING",
                    "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["mlp"]}]},
                }
            },
            "not supported in ENSEMBLING",
        ),
        (
            {
                "AutoMLJobConfig": {
                    "Mode": "HYPERPARAMETER_TUNING",
                    "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["lightgbm"]}]},
                }
            },
            "not supported in HYPERPARAMETER_TUNING",
        ),
        ({"ProblemType": "BinaryClassification", "AutoMLJobObjective": {"MetricName": "MSE"}}, "not valid"),
        ({"ProblemType": "Regression", "AutoMLJobObjective": {"MetricName": "F1"}}, "not valid"),
        ({"ModelDeployConfig": {"AutoGenerateEndpointName": True, "EndpointName": "ep"}}, "EndpointName"),
        ({"ModelDeployConfig": {"AutoGenerateEndpointName": False}}, "EndpointName"),
        ({"RoleArn": "arn:aws:iam::123:role/short-account"}, "roleArn"),
        ({"OutputDataConfig": {"S3OutputPath": "ftp://nope/out"}}, "s3OutputPath"),
        ({"Tags": tags(outcome="explode")}, "Unknown autopilot-emulator:outcome"),
    ],
)
def test_create_rejects_invalid_requests_with_validation_exception(
    sm: Any, overrides: dict[str, Any], message_part: str
) -> None:
    name = overrides.pop("AutoMLJobName", "valid-name")
    with pytest.raises(ClientError) as raised:
        create(sm, name, **overrides)
    error = raised.value.response
    assert error["Error"]["Code"] == "ValidationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert message_part in error["Error"]["Message"]
    assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"] == []


def test_valid_mode_and_algorithms_are_accepted_and_used(emu: Any, sm: Any) -> None:
    create(
        sm,
        "hpo-job",
        AutoMLJobConfig={
            "Mode": "HYPERPARAMETER_TUNING",
            "CandidateGenerationConfig": {"AlgorithmsConfig": [{"AutoMLAlgorithms": ["linear-learner"]}]},
            "CompletionCriteria": {"MaxCandidates": 2},
        },
    )
    finish(emu, sm, "hpo-job")
    for candidate in all_candidates(sm, "hpo-job"):
        assert "linear-learner" in candidate["InferenceContainers"][1]["Image"]


def test_taken_name_and_unknown_job_raise_modeled_errors(sm: Any) -> None:
    create(sm, "dup-job")
    with pytest.raises(sm.exceptions.ResourceInUse):
        create(sm, "dup-job")
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.describe_auto_ml_job(AutoMLJobName="missing-job")
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.list_candidates_for_auto_ml_job(AutoMLJobName="missing-job")
    with pytest.raises(sm.exceptions.ResourceNotFound):
        sm.stop_auto_ml_job(AutoMLJobName="missing-job")


# ------------------------------------------------------------------- lifecycle


def _poll_statuses(emu: Any, sm: Any, name: str) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
    """Describe the job at every quarter of a 10 s stage, moving the emulator's clock between calls
    (so that no stage is skipped however slow a call is)."""
    seen: list[tuple[str, str]] = []
    descriptions: list[dict[str, Any]] = []
    for _ in range(200):
        described = sm.describe_auto_ml_job(AutoMLJobName=name)
        status = (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"])
        if not seen or seen[-1] != status:
            seen.append(status)
            descriptions.append(described)
        if status[0] in END_STATUSES:
            break
        emu.advance(2.5)
    return seen, descriptions


@pytest.mark.parametrize("deploy", [False, True])
def test_poller_sees_every_stage_in_order(emu: Any, sm: Any, deploy: bool) -> None:
    emu.configure(stage_seconds=10.0)
    extra = {"ModelDeployConfig": {"AutoGenerateEndpointName": True}} if deploy else {}
    create(sm, f"order-{int(deploy)}", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 2}}, **extra)
    seen, descriptions = _poll_statuses(emu, sm, f"order-{int(deploy)}")
    expected = [
        ("InProgress", "Starting"),
        ("InProgress", "AnalyzingData"),
        ("InProgress", "FeatureEngineering"),
        ("InProgress", "ModelTuning"),
        ("InProgress", "MaxCandidatesReached"),
        ("InProgress", "GeneratingExplainabilityReport"),
        ("InProgress", "GeneratingModelInsightsReport"),
    ]
    expected += [("InProgress", "DeployingModel")] if deploy else []
    expected += [("Completed", "Completed")]
    assert seen == expected
    modified = [d["LastModifiedTime"] for d in descriptions]
    assert modified == sorted(modified) and len(set(modified)) == len(modified)
    assert all("EndTime" not in d for d in descriptions[:-1])
    assert descriptions[-1]["EndTime"] == descriptions[-1]["LastModifiedTime"]
    assert descriptions[-1]["EndTime"] > descriptions[-1]["CreationTime"]


def test_candidates_appear_progressively_during_model_tuning(emu: Any, sm: Any) -> None:
    emu.configure(stage_seconds=10.0)
    create(sm, "progressive", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 4}})
    emu.advance(30.0 + 0.1)  # ModelTuning starts at 3 stages; 4 candidates over 2 stages
    assert sm.describe_auto_ml_job(AutoMLJobName="progressive")["AutoMLJobSecondaryStatus"] == "ModelTuning"
    completed_counts = []
    for _ in range(4):
        candidates = all_candidates(sm, "progressive")
        completed_counts.append(sum(c["CandidateStatus"] == "Completed" for c in candidates))
        assert sum(c["CandidateStatus"] == "InProgress" for c in candidates) == 1
        emu.advance(5.0)
    assert completed_counts == [0, 1, 2, 3]
    described = sm.describe_auto_ml_job(AutoMLJobName="progressive")
    assert described["AutoMLJobSecondaryStatus"] == "MaxCandidatesReached"
    assert described["ResolvedAttributes"]["CompletionCriteria"]["MaxCandidates"] == 4
    assert len(all_candidates(sm, "progressive", StatusEquals="Completed")) == 4


def test_stage_seconds_come_from_tag_env_and_configure(
    emu: Any, sm: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUTOPILOT_EMULATOR_STAGE_SECONDS", "7")
    create(sm, "from-env")
    create(sm, "from-tag", Tags=tags(stage_seconds="3"))
    emu.configure(stage_seconds=2)
    create(sm, "from-configure")
    create(sm, "emu-slow-job")
    assert emu.job("from-env").stage_seconds == 7
    assert emu.job("from-tag").stage_seconds == 3
    assert emu.job("from-configure").stage_seconds == 2
    assert emu.job("emu-slow-job").stage_seconds == 2 * controls.SLOW_FACTOR
    emu.advance(2.5)  # one stage of the configured job, not of the env-var job
    assert (
        sm.describe_auto_ml_job(AutoMLJobName="from-configure")["AutoMLJobSecondaryStatus"] == "AnalyzingData"
    )
    assert sm.describe_auto_ml_job(AutoMLJobName="from-env")["AutoMLJobSecondaryStatus"] == "Starting"


def test_env_var_caps_candidates(emu: Any, sm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTOPILOT_EMULATOR_MAX_CANDIDATES", "2")
    create(sm, "capped", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 50}})
    described = finish(emu, sm, "capped")
    assert len(all_candidates(sm, "capped")) == 2
    assert described["ResolvedAttributes"]["CompletionCriteria"]["MaxCandidates"] == 2


# --------------------------------------------------------------- data awareness


@pytest.mark.parametrize(
    ("body", "target", "problem_type", "metric", "direction"),
    [
        (BINARY_CSV, "churn", "BinaryClassification", "F1", "Maximize"),
        (MULTICLASS_CSV, "species", "MulticlassClassification", "Accuracy", "Maximize"),
        (REGRESSION_CSV, "price", "Regression", "MSE", "Minimize"),
    ],
)
def test_problem_type_and_metric_inferred_from_target(
    emu: Any, sm: Any, body: bytes, target: str, problem_type: str, metric: str, direction: str
) -> None:
    client("s3").put_object(Bucket=BUCKET, Key=f"{target}/part-0.csv", Body=body)
    create(sm, f"infer-{target}", prefix=f"{target}/", target=target)
    described = finish(emu, sm, f"infer-{target}")
    assert described["AutoMLJobStatus"] == "Completed"
    assert "ProblemType" not in described and "AutoMLJobObjective" not in described
    resolved = described["ResolvedAttributes"]
    assert resolved["ProblemType"] == problem_type
    assert resolved["AutoMLJobObjective"] == {"MetricName": metric}
    best = described["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]
    assert (best["MetricName"], best["Type"]) == (metric, direction)
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in all_candidates(sm, f"infer-{target}")]
    assert best["Value"] == (min(values) if direction == "Minimize" else max(values))
    containers = described["BestCandidate"]["InferenceContainers"]
    assert len(containers) == (2 if problem_type == "Regression" else 3)


@pytest.mark.parametrize(
    ("prefix", "target", "output", "reason_part"),
    [
        ("nothing-here/", "churn", f"s3://{BUCKET}/output", "No input data found"),
        ("train/", "label", f"s3://{BUCKET}/output", "target column 'label'"),
        ("train/", "churn", "s3://no-such-output-bucket/out", "S3OutputPath bucket 'no-such-output-bucket'"),
    ],
)
def test_bad_input_fails_at_analyzing_data(
    emu: Any, sm: Any, prefix: str, target: str, output: str, reason_part: str
) -> None:
    emu.configure(stage_seconds=10)
    create(sm, "bad-input", prefix=prefix, target=target, OutputDataConfig={"S3OutputPath": output})
    emu.advance(15)
    described = sm.describe_auto_ml_job(AutoMLJobName="bad-input")
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == (
        "InProgress",
        "AnalyzingData",
    )
    emu.advance(10)
    described = sm.describe_auto_ml_job(AutoMLJobName="bad-input")
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == ("Failed", "Failed")
    assert reason_part in described["FailureReason"]
    assert "BestCandidate" not in described and "ResolvedAttributes" not in described
    assert all_candidates(sm, "bad-input") == []


def test_explicit_problem_type_is_kept_and_gzip_input_is_read(emu: Any, sm: Any) -> None:
    import gzip

    client("s3").put_object(Bucket=BUCKET, Key="gz/data.csv.gz", Body=gzip.compress(MULTICLASS_CSV))
    create(
        sm,
        "explicit",
        prefix="gz/",
        target="species",
        ProblemType="MulticlassClassification",
        AutoMLJobObjective={"MetricName": "F1macro"},
        InputDataConfig=[
            {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/gz/"}},
                "TargetAttributeName": "species",
                "CompressionType": "Gzip",
            }
        ],
    )
    described = finish(emu, sm, "explicit")
    assert described["ProblemType"] == "MulticlassClassification"
    assert described["ResolvedAttributes"]["AutoMLJobObjective"] == {"MetricName": "F1macro"}
    assert described["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]["MetricName"] == "F1macro"


# ------------------------------------------------------------------ candidates


def test_candidates_are_complete_deterministic_and_artifacts_exist(emu: Any, sm: Any) -> None:
    create(sm, "cands", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 3}})
    described = finish(emu, sm, "cands")
    candidates = all_candidates(sm, "cands")
    assert len(candidates) == 3 and len({c["CandidateName"] for c in candidates}) == 3
    s3 = client("s3")
    for index, candidate in enumerate(candidates):
        assert candidate["CandidateStatus"] == "Completed" and candidate["ObjectiveStatus"] == "Succeeded"
        assert candidate["FinalAutoMLJobObjectiveMetric"]["Value"] == metric_value("cands", index, "F1")
        steps = {s["CandidateStepType"]: s for s in candidate["CandidateSteps"]}
        assert set(steps) == {
            "AWS::SageMaker::ProcessingJob",
            "AWS::SageMaker::TrainingJob",
            "AWS::SageMaker::TransformJob",
        }
        assert steps["AWS::SageMaker::TrainingJob"]["CandidateStepArn"].startswith(
            "arn:aws:sagemaker:us-east-1:123456789012:training-job/"
        )
        containers = candidate["InferenceContainers"]
        assert len(containers) == 3
        assert containers[2]["Environment"]["AUTOML_TRANSFORM_MODE"] == "inverse-label-transform"
        assert "probability" in containers[1]["Environment"]["SAGEMAKER_INFERENCE_SUPPORTED"]
        assert containers[1]["Environment"]["SAGEMAKER_INFERENCE_OUTPUT"] == "predicted_label"
        for container in containers:
            assert container["ModelDataUrl"].startswith(f"s3://{BUCKET}/output/cands/")
            key = container["ModelDataUrl"].split(f"s3://{BUCKET}/", 1)[1]
            body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
                assert archive.getnames() == ["model.txt"]
        props = candidate["CandidateProperties"]
        assert set(props["CandidateArtifactLocations"]) == {"Explainability", "ModelInsights"}
        sets = {(m["StandardMetricName"], m["Set"]) for m in props["CandidateMetrics"]}
        assert {("F1", "Train"), ("F1", "Validation"), ("AUC", "Validation")} <= sets
    best = max(candidates, key=lambda c: c["FinalAutoMLJobObjectiveMetric"]["Value"])
    assert described["BestCandidate"]["CandidateName"] == best["CandidateName"]
    # Same name after a reset: same metric values (seeded by the job name).
    emu.reset()
    seed_bucket()
    create(sm, "cands", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 3}})
    again = finish(emu, sm, "cands")
    assert (
        again["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]
        == described["BestCandidate"]["FinalAutoMLJobObjectiveMetric"]
    )


def test_list_candidates_filters_sorts_and_paginates(emu: Any, sm: Any) -> None:
    create(sm, "paged", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 7}})
    finish(emu, sm, "paged")
    pages, token = [], None
    while True:
        kwargs = {"NextToken": token} if token else {}
        page = sm.list_candidates_for_auto_ml_job(AutoMLJobName="paged", MaxResults=3, **kwargs)
        pages.append([c["CandidateName"] for c in page["Candidates"]])
        token = page.get("NextToken")
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    names = [n for p in pages for n in p]
    assert names == [c["CandidateName"] for c in all_candidates(sm, "paged")]
    assert len(set(names)) == 7
    default_page = sm.list_candidates_for_auto_ml_job(AutoMLJobName="paged")
    assert len(default_page["Candidates"]) == 7 and "NextToken" not in default_page

    by_metric = all_candidates(sm, "paged", SortBy="FinalObjectiveMetricValue", SortOrder="Descending")
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in by_metric]
    assert values == sorted(values, reverse=True) and len(values) == 7
    ascending = all_candidates(sm, "paged", SortBy="FinalObjectiveMetricValue", SortOrder="Ascending")
    assert [c["CandidateName"] for c in ascending] == [c["CandidateName"] for c in reversed(by_metric)]
    newest_first = all_candidates(sm, "paged", SortBy="CreationTime", SortOrder="Descending")
    assert [c["CandidateName"] for c in newest_first] == list(reversed(names))

    one = all_candidates(sm, "paged", CandidateNameEquals=names[4])
    assert [c["CandidateName"] for c in one] == [names[4]]
    assert all_candidates(sm, "paged", StatusEquals="Failed") == []
    assert len(all_candidates(sm, "paged", StatusEquals="Completed")) == 7
    with pytest.raises(ClientError) as raised:
        sm.list_candidates_for_auto_ml_job(AutoMLJobName="paged", NextToken="garbage")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


# -------------------------------------------------------------------- outcomes


def test_failed_outcome(emu: Any, sm: Any) -> None:
    create(sm, "will-fail", Tags=tags(outcome="failed"))
    described = finish(emu, sm, "will-fail")
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == ("Failed", "Failed")
    assert "outcome=failed" in described["FailureReason"]
    assert described["PartialFailureReasons"][0]["PartialFailureMessage"]
    assert "BestCandidate" not in described
    statuses = {c["CandidateStatus"] for c in all_candidates(sm, "will-fail")}
    assert "Failed" in statuses
    summary = sm.list_auto_ml_jobs(NameContains="will-fail")["AutoMLJobSummaries"][0]
    assert summary["AutoMLJobStatus"] == "Failed" and "outcome=failed" in summary["FailureReason"]


@pytest.mark.parametrize("how", ["tag", "prefix"])
def test_stopped_outcome_goes_through_stopping(emu: Any, sm: Any, how: str) -> None:
    emu.configure(stage_seconds=10)
    name = "emu-stopped-job" if how == "prefix" else "stop-by-tag"
    create(sm, name, **({"Tags": tags(outcome="stopped")} if how == "tag" else {}))
    emu.advance(45)  # Stopping starts after one stage of ModelTuning (at 40 s)
    described = sm.describe_auto_ml_job(AutoMLJobName=name)
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == ("Stopping", "Stopping")
    assert "EndTime" not in described
    emu.advance(10)
    described = sm.describe_auto_ml_job(AutoMLJobName=name)
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == ("Stopped", "Stopped")
    assert "EndTime" in described and "FailureReason" not in described


def test_runtime_limit_outcomes(emu: Any, sm: Any) -> None:
    create(sm, "emu-runtime-limit-a", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 4}})
    create(
        sm, "emu-runtime-limit-no-candidate-b", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 4}}
    )
    with_best = finish(emu, sm, "emu-runtime-limit-a")
    without = finish(emu, sm, "emu-runtime-limit-no-candidate-b")
    for described in (with_best, without):
        assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == (
            "Completed",
            "MaxAutoMLJobRuntimeReached",
        )
    completed = all_candidates(sm, "emu-runtime-limit-a", StatusEquals="Completed")
    assert 1 <= len(completed) < 4
    assert with_best["BestCandidate"]["CandidateName"] in {c["CandidateName"] for c in completed}
    assert "BestCandidate" not in without
    assert all_candidates(sm, "emu-runtime-limit-no-candidate-b", StatusEquals="Completed") == []


def test_candidate_definitions_only(emu: Any, sm: Any) -> None:
    create(sm, "defs-only", GenerateCandidateDefinitionsOnly=True)
    described = finish(emu, sm, "defs-only")
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == (
        "Completed",
        "CandidateDefinitionsGenerated",
    )
    assert "BestCandidate" not in described and described["GenerateCandidateDefinitionsOnly"] is True
    s3 = client("s3")
    for key in ("CandidateDefinitionNotebookLocation", "DataExplorationNotebookLocation"):
        uri = described["AutoMLJobArtifacts"][key]
        s3.head_object(Bucket=BUCKET, Key=uri.split(f"s3://{BUCKET}/", 1)[1])
    assert all_candidates(sm, "defs-only") == []


def test_deploy_creates_real_endpoint(emu: Any, sm: Any) -> None:
    create(sm, "auto-ep", ModelDeployConfig={"AutoGenerateEndpointName": True})
    create(
        sm, "named-ep", ModelDeployConfig={"AutoGenerateEndpointName": False, "EndpointName": "my-endpoint"}
    )
    auto = finish(emu, sm, "auto-ep")
    named = finish(emu, sm, "named-ep")
    assert named["ModelDeployResult"] == {"EndpointName": "my-endpoint"}
    generated = auto["ModelDeployResult"]["EndpointName"]
    assert generated.startswith("auto-ep-")
    for endpoint_name, job in ((generated, auto), ("my-endpoint", named)):
        endpoint = sm.describe_endpoint(EndpointName=endpoint_name)
        assert endpoint["EndpointStatus"] == "InService"
        config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
        variant = config["ProductionVariants"][0]
        assert variant["InstanceType"] == "ml.m5.large"
        model = sm.describe_model(ModelName=variant["ModelName"])
        images = [c["Image"] for c in model["Containers"]]
        assert images == [c["Image"] for c in job["BestCandidate"]["InferenceContainers"]]
    # A second job asking for the same endpoint name cannot deploy.
    create(sm, "named-ep-2", ModelDeployConfig={"EndpointName": "my-endpoint"})
    clash = finish(emu, sm, "named-ep-2")
    assert (clash["AutoMLJobStatus"], clash["AutoMLJobSecondaryStatus"]) == (
        "Completed",
        "ModelDeploymentError",
    )
    assert "EndpointName" not in clash["ModelDeployResult"]


def test_deploy_error_outcome(emu: Any, sm: Any) -> None:
    create(
        sm,
        "deploy-err",
        ModelDeployConfig={"AutoGenerateEndpointName": True},
        Tags=tags(outcome="deploy-error"),
    )
    described = finish(emu, sm, "deploy-err")
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == (
        "Completed",
        "ModelDeploymentError",
    )
    assert described["ModelDeployResult"] == {}
    assert "BestCandidate" in described
    assert "deploy-error" in described["PartialFailureReasons"][0]["PartialFailureMessage"]
    assert sm.list_endpoints()["Endpoints"] == []


def deployed_endpoint(emu: Any, sm: Any, job: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A finished job whose best candidate serves on ``<job>-endpoint``: its description and variant."""
    create(sm, job, ModelDeployConfig={"EndpointName": f"{job}-endpoint"})
    finish(emu, sm, job)
    endpoint = sm.describe_endpoint(EndpointName=f"{job}-endpoint")
    config = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    return endpoint, config["ProductionVariants"][0]


def test_update_endpoint_is_updating_for_a_stage_then_switches_config(emu: Any, sm: Any) -> None:
    old, variant = deployed_endpoint(emu, sm, "upd")
    sm.create_endpoint_config(
        EndpointConfigName="upd-config-2",
        ProductionVariants=[{**variant, "VariantName": "Blue", "InitialInstanceCount": 2}],
    )
    emu.configure(stage_seconds=10)
    arn = sm.update_endpoint(EndpointName="upd-endpoint", EndpointConfigName="upd-config-2")["EndpointArn"]
    assert arn == old["EndpointArn"]
    updating = sm.describe_endpoint(EndpointName="upd-endpoint")
    # Still the old config while Updating; the new one is pending.
    assert (updating["EndpointStatus"], updating["EndpointConfigName"]) == (
        "Updating",
        old["EndpointConfigName"],
    )
    assert updating["PendingDeploymentSummary"]["EndpointConfigName"] == "upd-config-2"
    with pytest.raises(ClientError, match="Cannot update in-progress endpoint"):
        sm.update_endpoint(EndpointName="upd-endpoint", EndpointConfigName="upd-config-2")
    emu.advance(10)
    updated = sm.describe_endpoint(EndpointName="upd-endpoint")
    assert (updated["EndpointStatus"], updated["EndpointConfigName"]) == ("InService", "upd-config-2")
    assert updated["ProductionVariants"][0]["VariantName"] == "Blue"
    assert "PendingDeploymentSummary" not in updated and "FailureReason" not in updated
    with pytest.raises(ClientError) as raised:
        sm.update_endpoint(EndpointName="nope", EndpointConfigName="upd-config-2")
    assert raised.value.response["Error"]["Code"] == "ValidationException"


def test_update_endpoint_rollback_outcome_returns_to_the_previous_config(emu: Any, sm: Any) -> None:
    old, variant = deployed_endpoint(emu, sm, "rb")
    sm.create_endpoint_config(
        EndpointConfigName="rb-config-2",
        ProductionVariants=[variant],
        Tags=[{"Key": controls.TAG_UPDATE_OUTCOME, "Value": controls.UPDATE_OUTCOME_ROLLBACK}],
    )
    emu.configure(stage_seconds=10)
    sm.update_endpoint(EndpointName="rb-endpoint", EndpointConfigName="rb-config-2")
    seen = []
    for _ in range(3):
        described = sm.describe_endpoint(EndpointName="rb-endpoint")
        seen.append((described["EndpointStatus"], described["EndpointConfigName"]))
        emu.advance(10)
    assert seen == [
        ("Updating", old["EndpointConfigName"]),
        ("RollingBack", old["EndpointConfigName"]),
        ("InService", old["EndpointConfigName"]),
    ]
    assert described["FailureReason"] == controls.ROLLBACK_FAILURE_REASON
    assert described["LastModifiedTime"] > old["LastModifiedTime"]
    sm.create_endpoint_config(
        EndpointConfigName="rb-config-3",
        ProductionVariants=[variant],
        Tags=[{"Key": controls.TAG_UPDATE_OUTCOME, "Value": "explode"}],
    )
    with pytest.raises(ClientError, match="Unknown autopilot-emulator:update-outcome value 'explode'"):
        sm.update_endpoint(EndpointName="rb-endpoint", EndpointConfigName="rb-config-3")


def test_create_model_package_is_idempotent_per_client_token(emu: Any, sm: Any) -> None:
    sm.create_model_package_group(ModelPackageGroupName="tokens")
    spec = {
        "Containers": [{"Image": "img"}],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["text/csv"],
    }

    def create_version(token: str | None) -> str:
        kwargs = {"ClientToken": token} if token else {}
        return sm.create_model_package(ModelPackageGroupName="tokens", InferenceSpecification=spec, **kwargs)[
            "ModelPackageArn"
        ]

    first = create_version("token-a")
    assert create_version("token-a") == first
    other = create_version("token-b")
    assert other != first and create_version(None) not in (first, other)
    versions = sm.list_model_packages(ModelPackageGroupName="tokens")["ModelPackageSummaryList"]
    assert sorted(v["ModelPackageVersion"] for v in versions) == [1, 2, 3]


# ------------------------------------------------------------------------ stop


def test_stop_goes_stopping_then_stopped_and_is_noop_when_done(emu: Any, sm: Any) -> None:
    emu.configure(stage_seconds=10)
    create(sm, "to-stop", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 4}})
    emu.advance(36)  # ModelTuning, one candidate done, one in progress
    sm.stop_auto_ml_job(AutoMLJobName="to-stop")
    described = sm.describe_auto_ml_job(AutoMLJobName="to-stop")
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == ("Stopping", "Stopping")
    assert {c["CandidateStatus"] for c in all_candidates(sm, "to-stop")} == {"Completed", "Stopping"}
    emu.advance(10)
    described = sm.describe_auto_ml_job(AutoMLJobName="to-stop")
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == ("Stopped", "Stopped")
    assert {c["CandidateStatus"] for c in all_candidates(sm, "to-stop")} == {"Completed", "Stopped"}
    assert "BestCandidate" in described
    end = described["EndTime"]
    emu.advance(100)
    sm.stop_auto_ml_job(AutoMLJobName="to-stop")  # no error on a terminal job
    again = sm.describe_auto_ml_job(AutoMLJobName="to-stop")
    assert again["AutoMLJobStatus"] == "Stopped" and again["EndTime"] == end


def test_stop_before_analysis_never_reads_input(emu: Any, sm: Any) -> None:
    create(sm, "early-stop", prefix="nothing/")
    sm.stop_auto_ml_job(AutoMLJobName="early-stop")
    described = finish(emu, sm, "early-stop")
    assert described["AutoMLJobStatus"] == "Stopped"
    assert "FailureReason" not in described and "ResolvedAttributes" not in described


# ----------------------------------------------------------------------- faults


def test_tag_faults_throttle_server_error_not_found(emu: Any, sm: Any) -> None:
    create(sm, "faulty", Tags=tags(throttle="2", server_errors="1", not_found="1"))
    codes = []
    for _ in range(5):
        try:
            sm.describe_auto_ml_job(AutoMLJobName="faulty")
            codes.append(("ok", 200))
        except ClientError as error:
            codes.append(
                (error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"])
            )
    assert codes == [
        ("ThrottlingException", 400),
        ("ThrottlingException", 400),
        ("InternalFailure", 500),
        ("ResourceNotFound", 400),
        ("ok", 200),
    ]
    assert emu.request_counts()["DescribeAutoMLJob"] == 5


def test_faults_are_per_job_and_default_retries_absorb_a_throttle(emu: Any, sm: Any) -> None:
    create(sm, "calm")
    create(sm, "noisy")
    emu.inject_faults(job_name="noisy", throttle=1)
    assert sm.describe_auto_ml_job(AutoMLJobName="calm")["AutoMLJobName"] == "calm"
    with pytest.raises(ClientError) as raised:
        sm.list_candidates_for_auto_ml_job(AutoMLJobName="noisy")
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    emu.inject_faults(throttle=1)  # any next request, any operation
    with pytest.raises(ClientError):
        sm.list_auto_ml_jobs()
    retrying = client("sagemaker", retries=True)
    emu.inject_faults(job_name="noisy", throttle=1)
    described = retrying.describe_auto_ml_job(AutoMLJobName="noisy")
    assert described["ResponseMetadata"]["RetryAttempts"] == 1


# ------------------------------------------------------------------ moto interop


def test_v1_and_v2_jobs_share_moto_listing_and_describe_rules(emu: Any, sm: Any) -> None:
    create(sm, "v1-job", Tags=[{"Key": "team", "Value": "ml"}])
    sm.create_auto_ml_job_v2(
        AutoMLJobName="v2-job",
        AutoMLJobInputDataConfig=[
            {
                "ChannelType": "training",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}},
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/out2"},
        AutoMLProblemTypeConfig={
            "TabularJobConfig": {
                "TargetAttributeName": "churn",
                "ProblemType": "BinaryClassification",
                "CompletionCriteria": {"MaxCandidates": 2},
            }
        },
        RoleArn=ROLE,
    )
    names = sorted(s["AutoMLJobName"] for s in sm.list_auto_ml_jobs()["AutoMLJobSummaries"])
    assert names == ["v1-job", "v2-job"]
    with pytest.raises(ClientError) as raised:
        sm.describe_auto_ml_job(AutoMLJobName="v2-job")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "DescribeAutoMLJobV2" in raised.value.response["Error"]["Message"]
    assert sm.describe_auto_ml_job_v2(AutoMLJobName="v2-job")["AutoMLJobName"] == "v2-job"
    finish(emu, sm, "v1-job")
    v2_view = sm.describe_auto_ml_job_v2(AutoMLJobName="v1-job")
    assert v2_view["AutoMLProblemTypeConfigName"] == "Tabular"
    assert v2_view["AutoMLProblemTypeConfig"]["TabularJobConfig"]["TargetAttributeName"] == "churn"
    resolved = v2_view["ResolvedAttributes"]["AutoMLProblemTypeResolvedAttributes"]
    assert resolved["TabularResolvedAttributes"]["ProblemType"] == "BinaryClassification"
    assert v2_view["AutoMLJobStatus"] == "Completed"
    arn = sm.describe_auto_ml_job(AutoMLJobName="v1-job")["AutoMLJobArn"]
    assert {"Key": "team", "Value": "ml"} in sm.list_tags(ResourceArn=arn)["Tags"]
    # V2 jobs run on the emulator's clock too (moto's stayed InProgress forever).
    completed = sm.list_auto_ml_jobs(StatusEquals="Completed")["AutoMLJobSummaries"]
    assert [s["AutoMLJobName"] for s in completed] == ["v2-job", "v1-job"]


def test_request_counts_per_operation(emu: Any, sm: Any) -> None:
    create(sm, "counted")
    emu.reset_request_counts()
    for _ in range(3):
        sm.describe_auto_ml_job(AutoMLJobName="counted")
    sm.list_candidates_for_auto_ml_job(AutoMLJobName="counted")
    assert emu.request_counts() == {"DescribeAutoMLJob": 3, "ListCandidatesForAutoMLJob": 1}


def test_mock_autopilot_decorator_installs_and_cleans_up() -> None:
    from airflow_autopilot.emulator import mock_autopilot, urls

    @mock_autopilot(stage_seconds=60)
    def run() -> str:
        sm = client("sagemaker")
        create(sm, "decorated")
        return str(sm.describe_auto_ml_job(AutoMLJobName="decorated")["AutoMLJobStatus"])

    assert run() == "InProgress"
    assert urls.is_installed()
    urls.install()  # idempotent
    assert urls.is_installed()


def test_pytest_plugin_module_is_import_light() -> None:
    code = (
        "import sys, airflow_autopilot.emulator.pytest_plugin, airflow_autopilot.emulator as e; "
        "print(json.dumps(sorted(m for m in ('moto', 'boto3', 'botocore') if m in sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []


def test_job_names_are_case_insensitive_with_lowercase_arns(autopilot_emulator, make_job) -> None:
    """SageMaker job names are unique regardless of case, and ARNs carry them in lowercase."""
    make_job("MixedCase-Job", tags={"team": "ml"})
    client = autopilot_emulator.client()
    described = client.describe_auto_ml_job(AutoMLJobName="MixedCase-Job")
    assert described["AutoMLJobName"] == "MixedCase-Job"
    assert described["AutoMLJobArn"].endswith(":automl-job/mixedcase-job")
    assert {"Key": "team", "Value": "ml"} in client.list_tags(ResourceArn=described["AutoMLJobArn"])["Tags"]
    assert client.describe_auto_ml_job(AutoMLJobName="mixedcase-JOB")["AutoMLJobName"] == "MixedCase-Job"
    with pytest.raises(ClientError) as raised:
        make_job("mixedcase-job")
    assert raised.value.response["Error"]["Code"] == "ResourceInUse"
    assert [s["AutoMLJobName"] for s in client.list_auto_ml_jobs()["AutoMLJobSummaries"]] == ["MixedCase-Job"]


def test_a_manifest_that_is_not_there_fails_the_job_and_one_that_is_is_trusted(emu: Any, sm: Any) -> None:
    def manifest_channel(key: str) -> list[dict[str, Any]]:
        source = {"S3DataType": "ManifestFile", "S3Uri": f"s3://{BUCKET}/{key}"}
        return [{"DataSource": {"S3DataSource": source}, "TargetAttributeName": "churn"}]

    client("s3").put_object(Bucket=BUCKET, Key="manifests/train.manifest", Body=b'[{"prefix": "s3://x/"}]')
    create(sm, "no-manifest", InputDataConfig=manifest_channel("manifests/missing.manifest"))
    create(sm, "manifest", InputDataConfig=manifest_channel("manifests/train.manifest"))
    missing = finish(emu, sm, "no-manifest")
    assert missing["AutoMLJobStatus"] == "Failed"
    assert "No input data found" in missing["FailureReason"] and "InputDataConfig" in missing["FailureReason"]
    assert finish(emu, sm, "manifest")["AutoMLJobStatus"] == "Completed"

"""The SageMaker Python SDK v2 (``AutoML``, ``AutoMLV2``) reading the emulator's jobs over HTTP.

A client nobody here wrote: ``make test-sdk`` runs this in its own venv (.sdk-venv); elsewhere the
SDK is absent and the module skips.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

# Before the import: the SDK prints a v3 migration notice on import otherwise.
os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")
sagemaker = pytest.importorskip("sagemaker", minversion="2")

import boto3  # noqa: E402
from sagemaker.automl.automl import AutoML  # noqa: E402
from sagemaker.automl.automlv2 import AutoMLV2  # noqa: E402
from sagemaker.automl.candidate_estimator import CandidateEstimator  # noqa: E402

from airflow_autopilot.emulator.sample_data import churn_csv, sample_objects  # noqa: E402
from airflow_autopilot.emulator.server import FAKE_ACCESS_KEY, FAKE_SECRET_KEY, EmulatorServer  # noqa: E402

if int(sagemaker.__version__.split(".")[0]) != 2:
    pytest.skip(f"SageMaker SDK v2 expected, found {sagemaker.__version__}", allow_module_level=True)

REGION = "us-east-1"
BUCKET = "sdk-data"
ROLE = "arn:aws:iam::123456789012:role/AutopilotRole"
#: SDK defaults in place of its config files; telemetry off (it would call out of the machine).
SDK_CONFIG = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}
TS_CONFIG = {
    "ForecastFrequency": "W",
    "ForecastHorizon": 4,
    "TimeSeriesConfig": {
        "TargetAttributeName": "demand",
        "TimestampAttributeName": "week",
        "ItemIdentifierAttributeName": "item_id",
    },
}
#: Problem type config, input prefix and channel content type of each V2 job the SDK reads.
V2_JOBS: dict[str, tuple[str, dict[str, Any], str, str | None]] = {
    "Tabular": ("TabularJobConfig", {"TargetAttributeName": "churn"}, "train/", None),
    "TimeSeriesForecasting": ("TimeSeriesForecastingJobConfig", TS_CONFIG, "demand/", None),
    "TextClassification": (
        "TextClassificationJobConfig",
        {"ContentColumn": "review", "TargetLabelColumn": "sentiment"},
        "reviews/",
        None,
    ),
    "ImageClassification": ("ImageClassificationJobConfig", {}, "images/", "image/png"),
    "TextGeneration": ("TextGenerationJobConfig", {}, "fine-tuning/", None),
}


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any connection the SDK opens to anything but the emulator's loopback address."""
    connect = socket.socket.connect

    def guarded(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in ("127.0.0.1", "::1"):
            raise AssertionError(f"connection outside the machine: {address!r}")
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    with EmulatorServer(stage_seconds=1.0) as emu:
        boto = boto_session()
        s3 = boto.client("s3", endpoint_url=emu.endpoint_url)
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key="train/churn.csv", Body=churn_csv().encode())
        for key, body in sample_objects().items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        yield emu
        emu.reset()


def boto_session() -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=FAKE_ACCESS_KEY, aws_secret_access_key=FAKE_SECRET_KEY, region_name=REGION
    )


@pytest.fixture(scope="module")
def session(server: EmulatorServer) -> Any:
    """An SDK session whose every client is the emulator; no config files, STS or bucket look-ups."""
    boto = boto_session()
    return sagemaker.Session(
        boto_session=boto,
        sagemaker_client=boto.client("sagemaker", endpoint_url=server.endpoint_url),
        sagemaker_runtime_client=boto.client("sagemaker-runtime", endpoint_url=server.endpoint_url),
        default_bucket=BUCKET,
        sagemaker_config=SDK_CONFIG,
    )


def run_to_end(server: EmulatorServer, session: Any, name: str, describe: str) -> dict[str, Any]:
    """Advance the emulator's clock until the job ends; return its last description."""
    for _ in range(400):
        described: dict[str, Any] = getattr(session.sagemaker_client, describe)(AutoMLJobName=name)
        if described["AutoMLJobStatus"] in ("Completed", "Failed", "Stopped"):
            return described
        server.advance(1.0)
    raise AssertionError(f"{name} did not end")


def test_v1_attach_best_candidate_and_list_candidates(server, session):
    name = "sdk-v1-churn"
    session.sagemaker_client.create_auto_ml_job(
        AutoMLJobName=name,
        InputDataConfig=[
            {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}},
                "TargetAttributeName": "churn",
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        RoleArn=ROLE,
    )
    described = run_to_end(server, session, name, "describe_auto_ml_job")
    assert described["AutoMLJobStatus"] == "Completed"

    job = AutoML.attach(name, sagemaker_session=session)
    assert job.current_job_name == name
    assert job.target_attribute_name == "churn"
    assert job.role == ROLE
    assert job.output_path == f"s3://{BUCKET}/output"

    best = job.best_candidate()
    assert best == described["BestCandidate"]
    assert best["CandidateStatus"] == "Completed"
    assert best["InferenceContainers"]

    candidates = job.list_candidates()
    assert best["CandidateName"] in [c["CandidateName"] for c in candidates]
    by_score = job.list_candidates(sort_by="FinalObjectiveMetricValue", sort_order="Descending")
    values = [c["FinalAutoMLJobObjectiveMetric"]["Value"] for c in by_score]
    assert values == sorted(values, reverse=True)
    assert len(job.list_candidates(max_results=1)) == 1

    # The step jobs the candidate names exist (the SDK describes each training and transform job).
    steps = CandidateEstimator(best, sagemaker_session=session).get_steps()
    named = [
        s["CandidateStepName"] for s in best["CandidateSteps"] if "Processing" not in s["CandidateStepType"]
    ]
    assert [step.name for step in steps] == named
    assert {
        step.description.get("TrainingJobStatus") or step.description.get("TransformJobStatus")
        for step in steps
    } == {"Completed"}

    # The inference containers carry the keys they can answer with, as the SDK's model building checks.
    model = job.create_model(name="sdk-v1-model", candidate=best, inference_response_keys=["predicted_label"])
    assert len(model.models) == len(best["InferenceContainers"])


@pytest.mark.parametrize("problem_type", sorted(V2_JOBS))
def test_v2_attach_and_best_candidate(server, session, problem_type):
    config_name, config, prefix, content_type = V2_JOBS[problem_type]
    name = f"sdk-v2-{problem_type.lower()[:20]}"
    channel: dict[str, Any] = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{prefix}"}}
    }
    if content_type:
        channel["ContentType"] = content_type
    session.sagemaker_client.create_auto_ml_job_v2(
        AutoMLJobName=name,
        AutoMLJobInputDataConfig=[channel],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        AutoMLProblemTypeConfig={config_name: config},
        RoleArn=ROLE,
    )
    described = run_to_end(server, session, name, "describe_auto_ml_job_v2")
    assert described["AutoMLJobStatus"] == "Completed"

    job = AutoMLV2.attach(name, sagemaker_session=session)
    assert job.current_job_name == name
    assert job.role == ROLE
    assert job.output_path == f"s3://{BUCKET}/output"
    assert type(job.problem_config).__name__ == f"AutoML{problem_type}Config"
    if problem_type == "TimeSeriesForecasting":
        assert job.problem_config.forecast_frequency == "W"
        assert job.problem_config.forecast_horizon == 4
        assert job.problem_config.item_identifier_attribute_name == "item_id"
    if problem_type == "TextClassification":
        assert job.problem_config.content_column == "review"
        assert job.problem_config.target_label_column == "sentiment"

    best = job.best_candidate()
    assert best == described["BestCandidate"]
    assert best["CandidateStatus"] == "Completed"
    containers = best.get("InferenceContainers") or best.get("InferenceContainerDefinitions")
    assert containers, best
    assert best["CandidateName"] in [c["CandidateName"] for c in job.list_candidates()]

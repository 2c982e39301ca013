"""
Builders several test files share: AWS client errors, sensors and create operators with the suite's
settings, task contexts, candidates, a task instance that records XCom pushes, and a fresh Python
interpreter for the import-lightness and DAG-parse checks.

Fixtures and constants live in ``tests/conftest.py``; these are plain functions and classes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any

import boto3
from botocore.exceptions import ClientError

from airflow_autopilot.operators import AutopilotCreateJobOperator
from airflow_autopilot.sensors import AutopilotJobSensor
from tests.conftest import DATA_BUCKET, ONE_ATTEMPT, ROLE_ARN, ROOT


def client_error(code: str, status: int = 400, operation: str = "DescribeAutoMLJob") -> ClientError:
    """The ``ClientError`` botocore raises for an AWS error response ``code`` with HTTP ``status``."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} happened"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


def sensor(job_name: str, **kwargs) -> AutopilotJobSensor:
    """An ``AutopilotJobSensor`` on the emulator's region: one botocore attempt, 0.05 s pokes, 60 s timeout."""
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("aws_conn_id", None)
    kwargs.setdefault("region_name", "us-east-1")
    kwargs.setdefault("botocore_config", ONE_ATTEMPT)
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("timeout", 60)
    return AutopilotJobSensor(job_name=job_name, **kwargs)


#: When the DAG run of :func:`make_context` started (part of the run instance's identity).
RUN_STARTED = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)


def make_context(
    op,
    *,
    dag_id="dag",
    run_id="manual__1",
    map_index=-1,
    max_tries=None,
    try_number=1,
    run_started=RUN_STARTED,
):
    """The task-instance and DAG-run identity ``execute`` reads, and an XCom push the console link writes to."""
    pushed: dict = {}
    ti = SimpleNamespace(
        dag_id=dag_id,
        task_id=op.task_id,
        run_id=run_id,
        map_index=map_index,
        max_tries=op.retries if max_tries is None else max_tries,
        try_number=try_number,
        task=op,
        xcom_push=lambda key, value: pushed.__setitem__(key, value),
    )
    dag_run = SimpleNamespace(dag_id=dag_id, run_id=run_id, start_date=run_started, run_after=run_started)
    return {"ti": ti, "dag_run": dag_run, "pushed": pushed}


def create_kwargs(**overrides):
    """The create operator's arguments over the training data the fixtures upload (3 candidates, 0.2 s polls)."""
    kwargs = dict(
        s3_input_uri=f"s3://{DATA_BUCKET}/train/",
        target_attribute_name="churn",
        s3_output_path=f"s3://{DATA_BUCKET}/output",
        role_arn=ROLE_ARN,
        max_candidates=3,
        poll_interval=0.2,
    )
    kwargs.update(overrides)
    return kwargs


def operator(task_id="create", **overrides):
    """An ``AutopilotCreateJobOperator`` on the in-process emulator: 2 candidates, 0.05 s polls, sync wait."""
    kwargs = create_kwargs(
        max_candidates=2, poll_interval=0.05, aws_conn_id=None, region_name="us-east-1", deferrable=False
    )
    kwargs.update(overrides)
    return AutopilotCreateJobOperator(task_id=task_id, **kwargs)


def candidate(name="cand-1", value=0.8, metric="F1", kind="Maximize", containers=None):
    """A ``BestCandidate`` as the best-candidate operator pushes it (two inference containers)."""
    metric_block = {"MetricName": metric, "Value": value}
    if kind is not None:
        metric_block["Type"] = kind
    return {
        "CandidateName": name,
        "FinalAutoMLJobObjectiveMetric": metric_block,
        "InferenceContainers": containers
        or [
            {
                "Image": "img/processing",
                "ModelDataUrl": "s3://b/m1.tar.gz",
                "Environment": {
                    "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label,probability,probabilities",
                    "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
                },
            },
            {"Image": "img/algo", "ModelDataUrl": "s3://b/m2.tar.gz", "Environment": {}},
        ],
    }


class RecordingTI:
    """A task instance that only collects ``xcom_push`` calls (links, the promotion gate's decision)."""

    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def error_alarm(server: Any, name: str) -> None:
    """A CloudWatch alarm on an endpoint's 5XX errors in moto's CloudWatch (quiet: INSUFFICIENT_DATA
    until the test sets it with ``server.fire_alarm``)."""
    server.client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="Invocation5XXErrors",
        Namespace="AWS/SageMaker",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def sagemaker(server):
    """A boto3 SageMaker client on the emulator server."""
    return boto3.client("sagemaker", region_name="us-east-1", endpoint_url=server.endpoint_url)


def endpoint_backend(name: str) -> Any:
    """moto's in-process record of an endpoint, to give it states moto never reports (Updating, Failed)."""
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends["123456789012"]["us-east-1"].endpoints[name]


def fast_trigger(trigger_class: type, *args: Any, timeout: float = 60.0, **kwargs: Any) -> Any:
    """A trigger with the suite's fast settings: 0.05 s polls, one botocore attempt, 0.1 s backoff cap."""
    kwargs.setdefault("poll_interval", 0.05)
    kwargs.setdefault("botocore_config", ONE_ATTEMPT)
    kwargs.setdefault("max_backoff", 0.1)
    kwargs.setdefault("timeout_at", (datetime.now(timezone.utc) + timedelta(seconds=timeout)).isoformat())
    return trigger_class(*args, **kwargs)


def run_python(
    code: str, *args: str, env: dict[str, str] | None = None, timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """
    Run ``python -c CODE ARGS`` in a fresh interpreter of this virtualenv, from the repository root,
    with this process's environment plus ``env``: what a new process imports or parses, untouched by
    everything the test process has loaded.
    """
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        timeout=timeout,
        check=check,
    )

"""
Shared test set-up: an isolated Airflow home on SQLite, created once per session; the fixtures and
constants the unit, integration and system tests share. Builders that are not fixtures live in
``tests/helpers.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_HOME = tempfile.mkdtemp(prefix="autopilot-airflow-home-")
os.environ.setdefault("AIRFLOW_HOME", _HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

import pytest  # noqa: E402

from airflow_autopilot._compat import allow_sqlite_in_unit_test_mode  # noqa: E402
from airflow_autopilot.demo.examples import example_dags_folder  # noqa: E402

allow_sqlite_in_unit_test_mode()


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """An initialised Airflow metadata database (SQLite), for ``dag.test()`` runs."""
    from airflow.utils.db import initdb

    initdb()
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture(scope="session")
def run_dag(airflow_db):
    """
    Run a DAG object with the real ``dag.test()`` and return ``(dag_run, xcoms)``: see
    :func:`airflow_autopilot.demo.runner.run_dag`.
    """
    from airflow_autopilot.demo.runner import run_dag

    return run_dag


ROOT = Path(__file__).resolve().parents[1]
#: The installed package's example DAGs: dags/ in an editable install, site-packages from a wheel.
DAGS = example_dags_folder()
#: botocore config with its retries off, so that this package's own retry logic is what is tested
ONE_ATTEMPT = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
TRAINING_CSV = "age,income,churn\n" + "".join(
    f"{20 + i % 50},{1000 + 37 * i},{'yes' if i % 3 else 'no'}\n" for i in range(60)
)
DATA_BUCKET = "autopilot-test-data"
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerAutopilot"


def job_request(name: str, *, target: str = "churn", tags: dict[str, str] | None = None, **overrides):
    """A valid CreateAutoMLJob request over the data ``make_job`` uploads."""
    request = {
        "AutoMLJobName": name,
        "InputDataConfig": [
            {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA_BUCKET}/train/"}
                },
                "TargetAttributeName": target,
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{DATA_BUCKET}/output"},
        "RoleArn": ROLE_ARN,
    }
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    request.update(overrides)
    return request


def upload_training_data(endpoint_url: str | None = None) -> None:
    """Upload the training CSV to ``s3://DATA_BUCKET/train/`` (in-process, or on ``endpoint_url``)."""
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint_url)
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_object(Bucket=DATA_BUCKET, Key="train/data.csv", Body=TRAINING_CSV.encode())


@pytest.fixture
def make_job(request):
    """
    Create a V1 job on the active emulator (in-process, or the server when the test uses
    ``autopilot_emulator_server``) through real boto3.

    Uploads a small binary-classification CSV first. ``make_job(name, outcome=..., **request_overrides)``
    returns the request used.
    """
    import boto3

    endpoint = None
    if "autopilot_emulator_server" in request.fixturenames:
        endpoint = request.getfixturevalue("autopilot_emulator_server").endpoint_url
    clients = {"region_name": "us-east-1", "endpoint_url": endpoint}

    def _make(name: str, *, outcome: str | None = None, tags: dict[str, str] | None = None, **overrides):
        upload_training_data(endpoint)
        tags = dict(tags or {})
        if outcome:
            tags["autopilot-emulator:outcome"] = outcome
        request = job_request(name, tags=tags, **overrides)
        boto3.client("sagemaker", **clients).create_auto_ml_job(**request)
        return request

    return _make


@pytest.fixture
def server(autopilot_emulator_server, monkeypatch):
    """
    The emulator server with fast stages (0.1 s) and the training CSV uploaded, with plain boto3
    (``make_job``) pointed at it too.
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL", autopilot_emulator_server.endpoint_url)
    autopilot_emulator_server.configure(stage_seconds=0.1)
    upload_training_data(autopilot_emulator_server.endpoint_url)
    return autopilot_emulator_server

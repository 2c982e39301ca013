"""The Autopilot emulator as a loopback server: boto3 over HTTP, the Amazon provider's hook, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

ROLE = "arn:aws:iam::123456789012:role/AutopilotRole"
CSV = b"x,y,label\n" + b"".join(f"{i},{i * 3},{i % 2}\n".encode() for i in range(20))


def _create(sm: Any, name: str, **kwargs: Any) -> None:
    sm.create_auto_ml_job(
        AutoMLJobName=name,
        InputDataConfig=[
            {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://srv-bucket/in/"}},
                "TargetAttributeName": "label",
            }
        ],
        OutputDataConfig={"S3OutputPath": "s3://srv-bucket/out"},
        RoleArn=ROLE,
        **kwargs,
    )


@pytest.fixture
def server(autopilot_emulator_server: Any) -> Any:
    s3 = autopilot_emulator_server.client("s3")
    s3.create_bucket(Bucket="srv-bucket")
    s3.put_object(Bucket="srv-bucket", Key="in/data.csv", Body=CSV)
    return autopilot_emulator_server


def test_server_fixture_points_airflow_and_boto3_at_loopback(server: Any) -> None:
    assert server.endpoint_url.startswith("http://127.0.0.1:")
    conn = json.loads(os.environ["AIRFLOW_CONN_AWS_DEFAULT"])
    assert conn == {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"region_name": "us-east-1", "endpoint_url": server.endpoint_url},
    }
    assert os.environ["AWS_DEFAULT_REGION"] == "us-east-1"


def test_job_lifecycle_faults_and_counts_over_http(server: Any) -> None:
    sm = server.client("sagemaker", config=Config(retries={"max_attempts": 0, "mode": "standard"}))
    _create(sm, "srv-job", ModelDeployConfig={"AutoGenerateEndpointName": True})
    with pytest.raises(sm.exceptions.ResourceInUse):
        _create(sm, "srv-job")
    server.inject_faults(job_name="srv-job", throttle=1, server_errors=1)
    codes = []
    for _ in range(2):
        with pytest.raises(ClientError) as raised:
            sm.describe_auto_ml_job(AutoMLJobName="srv-job")
        codes.append(
            (
                raised.value.response["Error"]["Code"],
                raised.value.response["ResponseMetadata"]["HTTPStatusCode"],
            )
        )
    assert codes == [("ThrottlingException", 400), ("InternalFailure", 500)]
    server.advance(60)
    described = sm.describe_auto_ml_job(AutoMLJobName="srv-job")
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == ("Completed", "Completed")
    assert described["CreationTime"].tzinfo is not None
    endpoint = described["ModelDeployResult"]["EndpointName"]
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    assert len(sm.list_candidates_for_auto_ml_job(AutoMLJobName="srv-job")["Candidates"]) == 5
    with urllib.request.urlopen(
        server.endpoint_url + "/moto-api/autopilot-emulator/request-counts"
    ) as response:
        counts = json.loads(response.read())
    assert counts == server.request_counts()
    assert counts["DescribeAutoMLJob"] == 3 and counts["CreateAutoMLJob"] == 2
    request = urllib.request.Request(
        server.endpoint_url + "/moto-api/autopilot-emulator/request-counts", method="POST"
    )
    urllib.request.urlopen(request).close()
    assert server.request_counts() == {}


def test_faults_and_settings_over_http(server: Any) -> None:
    sm = server.client("sagemaker", config=Config(retries={"max_attempts": 0, "mode": "standard"}))
    body = json.dumps({"throttle": 1}).encode()
    request = urllib.request.Request(
        server.endpoint_url + "/moto-api/autopilot-emulator/faults", data=body, method="POST"
    )
    urllib.request.urlopen(request).close()
    with pytest.raises(ClientError) as raised:
        sm.list_auto_ml_jobs()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"
    body = json.dumps({"stage_seconds": 4}).encode()
    request = urllib.request.Request(
        server.endpoint_url + "/moto-api/autopilot-emulator/configure", data=body, method="POST"
    )
    with urllib.request.urlopen(request) as response:
        assert json.loads(response.read())["stage_seconds"] == 4
    _create(sm, "srv-configured")
    assert server.job("srv-configured").stage_seconds == 4


def test_amazon_provider_sagemaker_hook_runs_a_v1_job(server: Any) -> None:
    from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook

    hook = SageMakerHook(aws_conn_id="aws_default")
    conn = hook.get_conn()
    assert conn.meta.endpoint_url == server.endpoint_url
    _create(conn, "hook-job", AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 2}})
    server.advance(60)
    assert conn.describe_auto_ml_job(AutoMLJobName="hook-job")["AutoMLJobStatus"] == "Completed"
    candidates = conn.list_candidates_for_auto_ml_job(AutoMLJobName="hook-job")["Candidates"]
    assert len(candidates) == 2
    conn.stop_auto_ml_job(AutoMLJobName="hook-job")  # terminal: no-op, no error
    assert conn.describe_auto_ml_job(AutoMLJobName="hook-job")["AutoMLJobStatus"] == "Completed"


def test_cli_serves_on_loopback_and_prints_connection() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_autopilot.emulator", "--port", "0", "--stage-seconds", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        url = lines[0].rsplit(" ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        assert lines[1].strip() == f"AWS_ENDPOINT_URL={url}"
        conn_value = lines[2].strip().split("=", 1)[1].strip("'")
        assert json.loads(conn_value)["extra"]["endpoint_url"] == url
        with urllib.request.urlopen(
            url + "/moto-api/autopilot-emulator/request-counts", timeout=10
        ) as response:
            assert json.loads(response.read()) == {}
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert process.returncode == 0

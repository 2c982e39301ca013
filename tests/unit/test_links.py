"""AutopilotJobLink: the console URL, what persist stores, and the URL Airflow stores after a run."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import pytest
from airflow.sdk import DAG

from airflow_autopilot.links import AutopilotJobLink, console_url
from airflow_autopilot.sensors import AutopilotJobSensor


@pytest.mark.parametrize(
    ("partition", "region", "url"),
    [
        (
            "aws",
            "us-east-1",
            "https://console.aws.amazon.com/sagemaker/home?region=us-east-1#/automl-jobs/my-job",
        ),
        (
            "aws-cn",
            "cn-north-1",
            "https://console.amazonaws.cn/sagemaker/home?region=cn-north-1#/automl-jobs/my-job",
        ),
        (
            "aws-us-gov",
            "us-gov-west-1",
            "https://console.amazonaws-us-gov.com/sagemaker/home?region=us-gov-west-1#/automl-jobs/my-job",
        ),
        ("aws-iso", "us-iso-east-1", ""),  # no known console domain: no link rather than a wrong one
    ],
)
def test_console_url_per_partition(partition, region, url):
    assert console_url("my-job", region, partition) == url


def test_console_url_needs_name_and_region():
    assert console_url("", "us-east-1") == "" and console_url("j", "") == ""


class RecordingTI:
    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


def test_persist_stores_what_get_link_needs_and_respects_do_xcom_push():
    op = AutopilotJobSensor(task_id="t", job_name="j1")
    ti = RecordingTI()
    AutopilotJobLink.persist({"ti": ti}, op, job_name="j1", region_name="eu-west-1", partition="aws")
    assert ti.pushed == {
        "autopilot_job_details": {
            "job_name": "j1",
            "region_name": "eu-west-1",
            "partition": "aws",
            "aws_domain": "aws.amazon.com",
        }
    }
    quiet = AutopilotJobSensor(task_id="q", job_name="j1", do_xcom_push=False)
    ti = RecordingTI()
    AutopilotJobLink.persist({"ti": ti}, quiet, job_name="j1", region_name="eu-west-1")
    assert ti.pushed == {}


def test_airflow_stores_the_console_url_after_the_task(run_dag, autopilot_emulator, make_job):
    autopilot_emulator.configure(stage_seconds=0.05)
    make_job("link-job")
    with DAG("links_console_url", schedule=None, start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:
        AutopilotJobSensor(
            task_id="wait_link",
            job_name="link-job",
            aws_conn_id=None,
            region_name="us-east-1",
            poke_interval=0.05,
        )
    _, xcoms = run_dag(dag)
    assert xcoms["wait_link:_link_AutopilotJobLink"] == (
        "https://console.aws.amazon.com/sagemaker/home?region=us-east-1#/automl-jobs/link-job"
    )


def test_links_and_sensors_modules_are_import_light():
    code = (
        "import sys, airflow_autopilot.links, airflow_autopilot.sensors, airflow_autopilot.core.waiting;"
        "print(sorted(m for m in ('boto3', 'botocore', 'aiobotocore', 'moto') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"

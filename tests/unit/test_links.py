"""AutopilotJobLink: the console URL per partition and what persist stores (its import-lightness is
checked with the other DAG-facing modules', in tests/unit/test_provider.py)."""

from __future__ import annotations

import pytest

from airflow_autopilot.links import AutopilotJobLink, console_url
from airflow_autopilot.sensors import AutopilotJobSensor
from tests.helpers import RecordingTI


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

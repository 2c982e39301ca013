"""Where the emulator answers as SageMaker does although moto did not: list validation and order,
request-shape errors, candidate step jobs (in-process and on the server, through real boto3)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from test_emulator_inprocess import END_STATUSES, client, create, finish, seed_bucket


@pytest.fixture
def sm(autopilot_emulator: Any) -> Any:
    seed_bucket()
    return client("sagemaker")


def error_of(call: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return raised.value.response["Error"]


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"MaxResults": 101}, "maxResults"),
        ({"StatusEquals": "Done"}, "statusEquals"),
        ({"SortBy": "Size"}, "sortBy"),
        ({"SortOrder": "Up"}, "sortOrder"),
        ({"NameContains": "bad_name!"}, "nameContains"),
        ({"NextToken": "garbage"}, "NextToken"),
    ],
)
def test_list_auto_ml_jobs_validates_like_sagemaker(sm, kwargs, where):
    error = error_of(sm.list_auto_ml_jobs, **kwargs)
    assert error["Code"] == "ValidationException"
    assert where in error["Message"]


def test_list_auto_ml_jobs_default_order_is_name_descending_and_pages(autopilot_emulator, sm):
    for name in ("job-b", "job-a", "job-c"):
        create(sm, name)
        autopilot_emulator.advance(0.1)
    listed = [s["AutoMLJobName"] for s in sm.list_auto_ml_jobs()["AutoMLJobSummaries"]]
    assert listed == ["job-c", "job-b", "job-a"]
    by_time = sm.list_auto_ml_jobs(SortBy="CreationTime", SortOrder="Ascending")["AutoMLJobSummaries"]
    assert [s["AutoMLJobName"] for s in by_time] == ["job-b", "job-a", "job-c"]
    pages = sm.get_paginator("list_auto_ml_jobs").paginate(PaginationConfig={"PageSize": 2})
    assert [[s["AutoMLJobName"] for s in page["AutoMLJobSummaries"]] for page in pages] == [
        ["job-c", "job-b"],
        ["job-a"],
    ]
    assert [s["AutoMLJobName"] for s in sm.list_auto_ml_jobs(NameContains="JOB-A")["AutoMLJobSummaries"]] == [
        "job-a"
    ]


def test_a_job_created_between_pages_neither_repeats_nor_hides_a_listed_job(sm):
    for name in ("job-a", "job-c", "job-e"):
        create(sm, name)
    first = sm.list_auto_ml_jobs(MaxResults=2)
    assert [s["AutoMLJobName"] for s in first["AutoMLJobSummaries"]] == ["job-e", "job-c"]
    create(sm, "job-d")  # sorts into the first page, which was already read
    rest = sm.list_auto_ml_jobs(MaxResults=2, NextToken=first["NextToken"])
    assert [s["AutoMLJobName"] for s in rest["AutoMLJobSummaries"]] == ["job-a"]
    assert "NextToken" not in rest


def test_a_next_token_only_continues_the_listing_it_came_from(sm):
    for name in ("job-a", "job-b", "job-c"):
        create(sm, name)
    token = sm.list_auto_ml_jobs(MaxResults=1, SortOrder="Ascending")["NextToken"]
    error = error_of(sm.list_auto_ml_jobs, MaxResults=1, SortOrder="Descending", NextToken=token)
    assert (error["Code"], "NextToken" in error["Message"]) == ("ValidationException", True)
    listed = sm.list_auto_ml_jobs(MaxResults=1, SortOrder="Ascending", NextToken=token)["AutoMLJobSummaries"]
    assert [s["AutoMLJobName"] for s in listed] == ["job-b"]


def test_a_candidates_next_token_only_continues_its_own_job(autopilot_emulator, sm):
    for name in ("job-a", "job-b"):
        create(sm, name, AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 3}})
        finish(autopilot_emulator, sm, name)
    names = [
        c["CandidateName"] for c in sm.list_candidates_for_auto_ml_job(AutoMLJobName="job-a")["Candidates"]
    ]
    token = sm.list_candidates_for_auto_ml_job(AutoMLJobName="job-a", MaxResults=1)["NextToken"]
    error = error_of(sm.list_candidates_for_auto_ml_job, AutoMLJobName="job-b", NextToken=token)
    assert (error["Code"], "NextToken" in error["Message"]) == ("ValidationException", True)
    page = sm.list_candidates_for_auto_ml_job(AutoMLJobName="job-a", MaxResults=1, NextToken=token)
    assert [c["CandidateName"] for c in page["Candidates"]] == names[1:2]


@pytest.mark.parametrize(
    ("kwargs", "where"),
    [
        ({"StatusEquals": "Done"}, "statusEquals"),
        ({"SortBy": "Name"}, "sortBy"),
        ({"SortOrder": "Up"}, "sortOrder"),
    ],
)
def test_list_candidates_validates_its_enums(sm, kwargs, where):
    create(sm, "cands")
    error = error_of(sm.list_candidates_for_auto_ml_job, AutoMLJobName="cands", **kwargs)
    assert (error["Code"], where in error["Message"]) == ("ValidationException", True)


@pytest.mark.parametrize(
    ("operation", "kwargs", "part"),
    [
        ("describe_auto_ml_job", {}, "Value null at 'autoMLJobName'"),
        (
            "describe_auto_ml_job_v2",
            {"AutoMLJobName": 5},
            "'autoMLJobName' failed to satisfy constraint: Member must be a string",
        ),
        ("stop_auto_ml_job", {"AutoMLJobName": ["x"]}, "Member must be a string"),
        ("create_auto_ml_job", {"AutoMLJobName": "tags", "Tags": [{"Key": "a"}]}, "'tags.member.value'"),
    ],
)
def test_requests_that_skip_client_validation_get_a_validation_exception(
    autopilot_emulator, operation, kwargs, part
):
    import boto3

    raw = boto3.client("sagemaker", config=Config(parameter_validation=False, retries={"max_attempts": 0}))
    error = error_of(getattr(raw, operation), **kwargs)
    assert error["Code"] == "ValidationException"
    assert part in error["Message"]


def test_malformed_json_is_a_400_validation_exception_on_the_server(autopilot_emulator_server):
    request = urllib.request.Request(
        autopilot_emulator_server.endpoint_url,
        data=b'{"AutoMLJobName": ',
        headers={
            "X-Amz-Target": "SageMaker.DescribeAutoMLJob",
            "Content-Type": "application/x-amz-json-1.1",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sagemaker/aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=10)
    assert raised.value.code == 400
    body = json.loads(raised.value.read())
    assert body["__type"].endswith("ValidationException")
    assert "not valid JSON" in body.get("message", body.get("Message", ""))


def test_candidate_step_jobs_exist_and_are_completed(autopilot_emulator, sm):
    create(sm, "steps")
    for _ in range(60):
        if sm.describe_auto_ml_job(AutoMLJobName="steps")["AutoMLJobStatus"] in END_STATUSES:
            break
        autopilot_emulator.advance(0.5)
    candidate = sm.list_candidates_for_auto_ml_job(AutoMLJobName="steps", StatusEquals="Completed")[
        "Candidates"
    ][0]
    steps = {s["CandidateStepType"]: s["CandidateStepName"] for s in candidate["CandidateSteps"]}
    training = sm.describe_training_job(TrainingJobName=steps["AWS::SageMaker::TrainingJob"])
    assert training["TrainingJobStatus"] == "Completed"
    processing = sm.describe_processing_job(ProcessingJobName=steps["AWS::SageMaker::ProcessingJob"])
    assert processing["ProcessingJobStatus"] == "Completed"
    transform = sm.describe_transform_job(TransformJobName=steps["AWS::SageMaker::TransformJob"])
    assert transform["TransformJobStatus"] == "Completed"


def test_list_auto_ml_jobs_time_filters_take_aware_datetimes(autopilot_emulator, sm):
    from datetime import datetime, timedelta, timezone

    from airflow_autopilot.emulator import settings

    create(sm, "early")
    autopilot_emulator.advance(10)
    middle = datetime.fromtimestamp(settings.now(), tz=timezone.utc)
    autopilot_emulator.advance(10)
    create(sm, "late")
    after = sm.list_auto_ml_jobs(CreationTimeAfter=middle)["AutoMLJobSummaries"]
    assert [s["AutoMLJobName"] for s in after] == ["late"]
    before = sm.list_auto_ml_jobs(CreationTimeBefore=middle - timedelta(seconds=1))["AutoMLJobSummaries"]
    assert [s["AutoMLJobName"] for s in before] == ["early"]

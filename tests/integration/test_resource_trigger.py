"""AutopilotResourceTrigger against the emulator server: a transform job that fails on bad input, and
a model package version decided while the trigger waits."""

from __future__ import annotations

import asyncio

import pytest

from airflow_autopilot.triggers import AutopilotResourceTrigger
from tests.conftest import DATA_BUCKET, ROLE_ARN
from tests.helpers import fast_trigger


async def collect(trigger: AutopilotResourceTrigger) -> list:
    return [event.payload async for event in trigger.run()]


def best_candidate_containers(server, make_job) -> list:
    make_job("trig-job")
    sm = server.client("sagemaker")
    for _ in range(200):
        job = sm.describe_auto_ml_job(AutoMLJobName="trig-job")
        if job["AutoMLJobStatus"] == "Completed":
            return job["BestCandidate"]["InferenceContainers"]
        server.advance(0.1)  # the job's next stage, without waiting for it
    raise AssertionError("the job did not complete")


@pytest.mark.emulated_time
async def test_a_failed_transform_job_yields_one_failure_event_with_the_reason(server, make_job):
    containers = await asyncio.to_thread(best_candidate_containers, server, make_job)
    sm, s3 = server.client("sagemaker"), server.client("s3")
    s3.put_object(Bucket=DATA_BUCKET, Key="bad/x.csv", Body="1,2,3,4\n")
    sm.create_model(ModelName="m1", ExecutionRoleArn=ROLE_ARN, Containers=containers)
    sm.create_transform_job(
        TransformJobName="t1",
        ModelName="m1",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA_BUCKET}/bad/"}}
        },
        TransformOutput={"S3OutputPath": f"s3://{DATA_BUCKET}/out"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    (event,) = await collect(fast_trigger(AutopilotResourceTrigger, "transform-job", "t1", aws_conn_id=None))
    assert event["status"] == "failure" and event["kind"] == "transform-job"
    assert "has 4 columns; the model expects 2" in event["message"]
    assert event["description"]["TransformJobStatus"] == "Failed"


@pytest.mark.emulated_time
async def test_an_approval_decided_while_waiting_yields_success(server, make_job):
    containers = await asyncio.to_thread(best_candidate_containers, server, make_job)
    sm = server.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="g1")
    arn = sm.create_model_package(
        ModelPackageGroupName="g1",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification={
            "Containers": [{"Image": c["Image"], "ModelDataUrl": c["ModelDataUrl"]} for c in containers],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]
    task = asyncio.ensure_future(
        collect(fast_trigger(AutopilotResourceTrigger, "model-package", arn, aws_conn_id=None))
    )
    await asyncio.sleep(0.5)
    assert not task.done()  # still PendingManualApproval
    await asyncio.to_thread(server.set_approval, arn, "Approved", "fine") if hasattr(
        server, "set_approval"
    ) else None
    if not hasattr(server, "set_approval"):
        await asyncio.to_thread(sm.update_model_package, ModelPackageArn=arn, ModelApprovalStatus="Approved")
    (event,) = await asyncio.wait_for(task, 10)
    assert event["status"] == "success" and event["description"]["ModelApprovalStatus"] == "Approved"

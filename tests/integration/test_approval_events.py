"""
Model versions approved anywhere: the emulator sends EventBridge's "SageMaker Model Package State
Change" when a version is created or its approval status changes; moto's EventBridge delivers the
approvals to an SQS queue, and the Amazon provider's SQS trigger (what SqsQueueWatcher stands for)
reads them into one event.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from airflow_autopilot.core.events import approved_versions, create_approval_route

GROUP = "evt-approvals"
CONTAINER = {
    "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1",
    "ModelDataUrl": "s3://b/model.tar.gz",
}


def register(sagemaker, status: str) -> str:
    return sagemaker.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelApprovalStatus=status,
        InferenceSpecification={
            "Containers": [CONTAINER],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        },
    )["ModelPackageArn"]


def receive_all(sqs, url: str) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])


def test_approvals_reach_the_queue_with_the_documented_detail(server):
    sagemaker, sqs, events = server.client(), server.client("sqs"), server.client("events")
    url = create_approval_route(
        sqs, events, queue_name="approvals-a", rule_name="approvals-a", group_names=[GROUP]
    )
    assert (
        create_approval_route(
            sqs, events, queue_name="approvals-a", rule_name="approvals-a", group_names=[GROUP]
        )
        == url
    )
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    approved_at_once = register(sagemaker, "Approved")
    pending = register(sagemaker, "PendingManualApproval")
    messages = receive_all(sqs, url)
    assert [json.loads(m["Body"])["detail"]["ModelPackageArn"] for m in messages] == [approved_at_once]
    event = json.loads(messages[0]["Body"])
    assert event["source"] == "aws.sagemaker"
    assert event["detail-type"] == "SageMaker Model Package State Change"
    assert event["resources"] == [approved_at_once]
    detail = event["detail"]
    assert detail["ModelPackageGroupName"] == GROUP
    assert detail["ModelApprovalStatus"] == "Approved"
    assert detail["ModelPackageVersion"] == 1
    assert detail["ModelPackageStatus"] == "Completed"
    for m in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    # A person approves the pending version (UpdateModelPackage): one event; again: none (no change).
    sagemaker.update_model_package(ModelPackageArn=pending, ModelApprovalStatus="Approved")
    sagemaker.update_model_package(ModelPackageArn=pending, ModelApprovalStatus="Approved")
    later = receive_all(sqs, url)
    assert [v["model_package_arn"] for v in approved_versions(later)] == [pending]
    assert len(later) == 1


@pytest.mark.skipif(
    not hasattr(__import__("airflow.triggers.base", fromlist=["x"]), "BaseEventTrigger"),
    reason="event-driven scheduling needs Airflow 3",
)
def test_the_amazon_sqs_trigger_reads_an_approval_once(server):
    from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

    from airflow_autopilot.event_triggers import SqsQueueWatcher

    sagemaker, sqs, events = server.client(), server.client("sqs"), server.client("events")
    url = create_approval_route(
        sqs, events, queue_name="approvals-b", rule_name="approvals-b", group_names=[GROUP]
    )
    sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
    arn = register(sagemaker, "PendingManualApproval")
    server.set_approval(arn, "Approved")  # the emulator's control: the same backend call
    classpath, kwargs = SqsQueueWatcher(url, wait_time_seconds=1).serialize()
    trigger = SqsSensorTrigger(**kwargs)

    async def first_event():
        async for event in trigger.run():
            return event.payload

    payload = asyncio.run(asyncio.wait_for(first_event(), timeout=20))
    assert [v["model_package_arn"] for v in approved_versions(payload["message_batch"])] == [arn]
    assert receive_all(sqs, url) == []  # deleted on reception: read once

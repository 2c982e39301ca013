"""What the emulator tells EventBridge: SageMaker's "SageMaker Model Package State Change" event, sent
through moto's own EventBridge (and on to its rules' targets, such as an SQS queue) (docs/events.md)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from moto.events.models import events_backends

SOURCE = "aws.sagemaker"
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def model_package_detail(package: Any) -> dict[str, Any]:
    """The event's ``detail``: the version as DescribeModelPackage shows it (ModelPackageGroupName,
    ModelPackageVersion, ModelPackageArn, ModelApprovalStatus, ModelPackageStatus, CreationTime...).

    :param package: moto's model package.
    """
    detail = json.loads(json.dumps(package.gen_response_object(), default=_json_safe))
    detail.setdefault("ModelPackageStatus", "Completed")
    return dict(detail)


def send_model_package_state_change(package: Any, account_id: str, region: str) -> None:
    """
    Put the version's state-change event on the account's default event bus, as SageMaker does when
    a version is created or its approval status changes; moto delivers it to every matching rule.

    :param package: moto's model package.
    :param account_id: the account that holds it.
    :param region: its region.
    """
    detail = model_package_detail(package)
    events_backends[account_id][region].put_events(
        [
            {
                "Source": SOURCE,
                "DetailType": MODEL_PACKAGE_STATE_CHANGE,
                "Detail": json.dumps(detail),
                "Resources": [detail["ModelPackageArn"]],
                # No "Time": moto's delivery to targets takes only its own numeric default.
            }
        ]
    )

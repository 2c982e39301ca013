"""
Deploys each model version approved anywhere (a person in SageMaker Studio, the CLI, an SDK): SageMaker
sends "SageMaker Model Package State Change" to EventBridge, a rule routes the approvals to an SQS queue
(:func:`airflow_autopilot.core.events.create_approval_route`), and the Amazon provider's SQS trigger
watches the queue for this DAG's Asset (Airflow 3). Idempotent, keyed by the version's ARN: the model and
endpoint configuration are named after the version, so a second run for it changes nothing.

Settings: ``AUTOPILOT_EXAMPLE_APPROVAL_QUEUE_URL`` (the queue), ``AUTOPILOT_EXAMPLE_ENDPOINT``
(default autopilot-approved), ``AUTOPILOT_EXAMPLE_ROLE_ARN``. On Airflow 2.11 the DAG is defined
unscheduled (docs/events.md). No AWS call happens at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, AirflowSkipException, Asset, task

from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS
from airflow_autopilot.assets import triggering_extras

QUEUE_URL = os.environ.get(
    "AUTOPILOT_EXAMPLE_APPROVAL_QUEUE_URL", "http://127.0.0.1:5000/123456789012/autopilot-approvals"
)
ENDPOINT = os.environ.get("AUTOPILOT_EXAMPLE_ENDPOINT", "autopilot-approved")
ROLE_ARN = os.environ.get("AUTOPILOT_EXAMPLE_ROLE_ARN", "arn:aws:iam::123456789012:role/SageMakerAutopilot")
POLL_SECONDS = int(float(os.environ.get("AUTOPILOT_EXAMPLE_POLL_SECONDS", "30")))

if AIRFLOW_V_3_0_PLUS:
    from airflow.sdk import AssetWatcher

    from airflow_autopilot.event_triggers import SqsQueueWatcher

    APPROVALS = Asset(
        name="autopilot-approved-versions",
        uri="sqs://autopilot/approved-versions",
        watchers=[
            AssetWatcher(
                name="autopilot-approved-versions",
                # Long polling: one receive waits up to 20 s and returns as soon as a message comes.
                trigger=SqsQueueWatcher(QUEUE_URL),
            )
        ],
    )
    SCHEDULE: list | None = [APPROVALS]
else:  # Airflow 2.11: no event-driven scheduling (docs/events.md, On Airflow 2.11)
    APPROVALS = Asset(uri="sqs://autopilot/approved-versions")
    SCHEDULE = None

with DAG(
    dag_id="example_autopilot_deploy_on_approval",
    description="Deploy each model version approved anywhere (EventBridge -> SQS -> AssetWatcher)",
    schedule=SCHEDULE,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["autopilot", "example", "event-driven"],
) as dag:

    @task(multiple_outputs=False)
    def approved_version(**context) -> dict:
        """The newest approved version among the triggering messages; skip a manual run."""
        from airflow_autopilot.core.events import approved_versions

        messages = [
            m
            for extra in triggering_extras(context, APPROVALS)
            for m in (extra.get("payload") or {}).get("message_batch", [])
        ]
        versions = approved_versions(messages)
        if not versions:
            raise AirflowSkipException("No approved version in the triggering messages (a manual run)")
        print(f"Approved: {[v['model_package_arn'] for v in versions]}; deploying the newest")
        return versions[-1]

    @task
    def deploy(version: dict) -> dict:
        """Put the version behind the endpoint (model and config named after the version)."""
        from airflow_autopilot.hooks.model import AutopilotModelHook

        hook = AutopilotModelHook()
        package = hook.describe_model_package(version["model_package_arn"])
        containers = [
            {k: c[k] for k in ("Image", "ModelDataUrl", "Environment") if c.get(k)}
            for c in package["InferenceSpecification"]["Containers"]
        ]
        name = f"{package['ModelPackageGroupName']}-v{package['ModelPackageVersion']}"[:63]
        hook.deploy(
            ENDPOINT,
            model_name=name,
            config_name=name,
            role_arn=ROLE_ARN,
            containers=containers,
            instance_type="ml.m5.large",
            instance_count=1,
            tags=[{"Key": "autopilot:model-package-arn", "Value": version["model_package_arn"]}],
            poll_interval=POLL_SECONDS,
        )
        return {
            "endpoint_name": ENDPOINT,
            "model_name": name,
            "model_package_arn": version["model_package_arn"],
        }

    deploy(approved_version())

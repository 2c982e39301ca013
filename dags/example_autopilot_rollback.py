"""
Undo a promotion on demand: put the endpoint back on the previous Approved model version.

rollback -> smoke_test

Trigger it from the Airflow UI (or ``airflow dags trigger``) when the model that
dags/example_autopilot_promotion.py promoted misbehaves. ``rollback`` finds the newest Approved
version of the Model Package Group older than the one the endpoint serves (or the version
``model_package_arn`` names) and deploys it with the same guardrails as the promotion: a canary
shift of the traffic and the alarm that rolls it back. With the promotion's deploy parameters the
version's model and endpoint config are the ones that served before, reused by name. ``smoke_test``
then checks the restored model answers (it restores nothing itself).

Parameters (Airflow Params): the endpoint, the group or a version ARN, the role, the rollout and
the alarm. ``AUTOPILOT_EXAMPLE_POLL_SECONDS`` (default 60) sets how often the waits poll. No AWS
call happens at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_autopilot.operators.rollback import AutopilotRollbackEndpointOperator
from airflow_autopilot.operators.smoke_test import AutopilotEndpointSmokeTestOperator

POLL_SECONDS = float(os.environ.get("AUTOPILOT_EXAMPLE_POLL_SECONDS", "60"))

with DAG(
    dag_id="example_autopilot_rollback",
    description="Put an endpoint back on the previous Approved model version, with guardrails",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    tags=["autopilot", "example"],
    params={
        "endpoint_name": Param("autopilot-churn", type="string"),
        "model_package_group": Param("autopilot-churn", type="string"),
        "model_package_arn": Param(
            "", type="string", description="a version to put back instead of the previous Approved one"
        ),
        "role_arn": Param(
            "arn:aws:iam::123456789012:role/SageMakerAutopilot",
            type="string",
            description="SageMaker execution role (for a model that must be created again)",
        ),
        "rollout": Param("canary:10%:600s", type="string", description="how the traffic shifts back"),
        "rollback_alarm": Param("autopilot-churn-5xx", type="string"),
    },
) as dag:
    rollback = AutopilotRollbackEndpointOperator(
        task_id="rollback",
        endpoint_name="{{ params.endpoint_name }}",
        # Exactly one of them: a named version, else the group's previous Approved version.
        model_package_group_name="{{ None if params.model_package_arn else params.model_package_group }}",
        model_package_arn="{{ params.model_package_arn or None }}",
        role_arn="{{ params.role_arn }}",
        # The promotion's deploy parameters: its model and endpoint config are reused.
        inference_response_keys=["predicted_label", "probability"],
        rollout="{{ params.rollout }}",
        auto_rollback_alarms=["{{ params.rollback_alarm }}"],
        deferrable=True,
        poll_interval=POLL_SECONDS,
    )
    smoke_test = AutopilotEndpointSmokeTestOperator(
        task_id="smoke_test",
        deployment="{{ ti.xcom_pull(task_ids='rollback', key='rollout') }}",
        endpoint_name="{{ params.endpoint_name }}",
        # Two customers of the promotion's sample data (age, tenure, charges, support calls, contract).
        rows=["22,42,85.09,2,year", "58,8,114.74,9,month"],
        accept="application/jsonlines",
        expected_response_keys=["predicted_label", "probability"],
        expected_labels=["no", "yes"],
        # The rolled-back model is the last known good one: nothing to restore after it.
        restore_on_failure=False,
        poll_interval=POLL_SECONDS,
    )
    rollback >> smoke_test

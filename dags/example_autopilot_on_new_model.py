"""
Runs when example_autopilot_promotion approves a new version in its Model Package Group: reads the
version from the asset event's extra (no XCom across DAGs) and acts only on an Approved one.

Scheduled on ``sagemaker://<account>.<region>/model-package-group/<group>``; the group, account and
region come from ``AUTOPILOT_EXAMPLE_MODEL_PACKAGE_GROUP`` (default autopilot-churn),
``AUTOPILOT_EXAMPLE_ACCOUNT_ID`` (default 123456789012, the emulator's) and ``AUTOPILOT_EXAMPLE_REGION``
(default us-east-1). No AWS call happens at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, AirflowSkipException, task

from airflow_autopilot.assets import model_package_group_asset, triggering_extras

NEW_MODEL = model_package_group_asset(
    os.environ.get("AUTOPILOT_EXAMPLE_MODEL_PACKAGE_GROUP", "autopilot-churn"),
    account_id=os.environ.get("AUTOPILOT_EXAMPLE_ACCOUNT_ID", "123456789012"),
    region=os.environ.get("AUTOPILOT_EXAMPLE_REGION", "us-east-1"),
)

with DAG(
    dag_id="example_autopilot_on_new_model",
    description="Runs on each new model version of the promotion DAG's Model Package Group",
    schedule=[NEW_MODEL],
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["autopilot", "example"],
) as dag:

    @task(multiple_outputs=False)
    def read_new_model(**context) -> dict:
        """Return the newest triggering version's metadata; skip unless it is Approved."""
        extras = triggering_extras(context, NEW_MODEL)
        if not extras:
            raise AirflowSkipException("Not triggered by a new model version (a manual run)")
        model = extras[-1]
        print(
            f"New version {model.get('model_package_version')} of {model.get('model_package_group')}: "
            f"candidate {model.get('candidate_name')}, {model.get('objective_metric')} "
            f"{model.get('objective_value')}, {model.get('approval_status')}"
        )
        if model.get("approval_status") != "Approved":
            raise AirflowSkipException(f"{model.get('model_package_arn')} is not Approved")
        return model

    read_new_model()

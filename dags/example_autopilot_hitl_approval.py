"""
Ask a person in the Airflow UI to approve a registered model version, and write the answer to the
SageMaker Model Registry (Airflow 3.1 or later: Human-in-the-loop operators).

find_pending -> ask (Human-in-the-loop: Approve / Reject, with a comment) -> write_decision
-> approval (AutopilotModelApprovalSensor: Approved goes on, Rejected skips)

``find_pending`` picks the newest PendingManualApproval version of the Model Package Group (as
example_autopilot_promotion registers with ``approval_status=PendingManualApproval``). On Airflow
versions without ``airflow.providers.standard.operators.hitl`` this file defines no DAG.
No AWS call happens at parse time.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_autopilot.sensors import AutopilotModelApprovalSensor

try:
    from airflow.providers.standard.operators.hitl import HITLOperator
except Exception:  # noqa: BLE001 - Airflow 2 has no such module; 3.0's refuses to import (needs 3.1+)
    HITLOperator = None

if HITLOperator is not None:
    with DAG(
        dag_id="example_autopilot_hitl_approval",
        description="A person approves a Model Registry version in the Airflow UI",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        tags=["autopilot", "example"],
        params={"model_package_group": Param("autopilot-churn", type="string")},
    ) as dag:

        @task
        def find_pending(**context) -> dict:
            """The newest PendingManualApproval version of the group and what it holds."""
            from airflow_autopilot.hooks import AutopilotModelHook

            hook = AutopilotModelHook()
            group = context["params"]["model_package_group"]
            for summary in hook.iter_versions(group, approval_status="PendingManualApproval"):
                package = hook.describe_model_package(summary["ModelPackageArn"])
                meta = package.get("CustomerMetadataProperties") or {}
                return {
                    "ModelPackageArn": package["ModelPackageArn"],
                    "Version": package.get("ModelPackageVersion"),
                    "Candidate": meta.get("autopilot:candidate-name", ""),
                    "Metric": f"{meta.get('autopilot:objective-metric')} {meta.get('autopilot:objective-value')}",
                }
            raise ValueError(f"model_package_group: {group!r} has no PendingManualApproval version")

        pending = find_pending()
        ask = HITLOperator(
            task_id="ask",
            subject="Approve model version {{ ti.xcom_pull(task_ids='find_pending')['Version'] }} "
            "of {{ params.model_package_group }}?",
            body="Candidate {{ ti.xcom_pull(task_ids='find_pending')['Candidate'] }}, "
            "{{ ti.xcom_pull(task_ids='find_pending')['Metric'] }}.",
            options=["Approve", "Reject"],
            params={"comment": Param("", type="string", description="why (stored as ApprovalDescription)")},
        )

        @task
        def write_decision(version: dict, **context) -> str:
            """Write the person's answer to the Model Registry (UpdateModelPackage)."""
            from airflow_autopilot.hooks import AutopilotModelHook

            answer = context["ti"].xcom_pull(task_ids="ask")
            status = "Approved" if answer["chosen_options"] == ["Approve"] else "Rejected"
            comment = (answer.get("params_input") or {}).get("comment") or f"{status} in Airflow"
            AutopilotModelHook().client.update_model_package(
                ModelPackageArn=version["ModelPackageArn"],
                ModelApprovalStatus=status,
                ApprovalDescription=comment,
            )
            return status

        approval = AutopilotModelApprovalSensor(
            task_id="approval",
            model_package_arn="{{ ti.xcom_pull(task_ids='find_pending')['ModelPackageArn'] }}",
            on_rejection="skip",
            poke_interval=5,
            timeout=600,
        )
        pending >> ask >> write_decision(pending) >> approval

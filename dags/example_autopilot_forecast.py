"""
Weekly demand forecasting with a SageMaker Autopilot V2 (time-series) job, gated on a forecast metric.

upload_demand_data -> create_forecast_job (CreateAutoMLJobV2, deferrable wait) -> best_candidate
-> gate -> register   (average weighted quantile loss at most the threshold, better than the champion)
        -> reject

The data set (weekly unit sales of a few products: ``item_id``, ``week``, ``demand``) is generated
by the package. Runs unchanged on AWS or on the local emulator. Parameters: the bucket, role,
horizon, quantiles, threshold and Model Package Group. ``AUTOPILOT_EXAMPLE_POLL_SECONDS`` (default
60) sets how often the wait polls. No AWS call happens at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_autopilot.operators import AutopilotBestCandidateOperator, AutopilotCreateJobV2Operator
from airflow_autopilot.operators.promotion import (
    DECISION_XCOM_KEY,
    AutopilotPromotionBranchOperator,
    AutopilotRegisterCandidateOperator,
)

POLL_SECONDS = float(os.environ.get("AUTOPILOT_EXAMPLE_POLL_SECONDS", "60"))
JOB_NAME = "{{ ti.xcom_pull(task_ids='create_forecast_job')['AutoMLJobName'] }}"

with DAG(
    dag_id="example_autopilot_forecast",
    description="Weekly demand forecast with an Autopilot V2 time-series job; gate on the quantile loss; register",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    tags=["autopilot", "example", "forecasting"],
    params={
        "bucket": Param("autopilot-example", type="string", description="S3 bucket for data and output"),
        "role_arn": Param(
            "arn:aws:iam::123456789012:role/SageMakerAutopilot",
            type="string",
            description="SageMaker execution role",
        ),
        "horizon_weeks": Param(4, type="integer", minimum=1, maximum=500, description="weeks to forecast"),
        "quantiles": Param(["p10", "p50", "p90"], type="array", description="forecast quantiles (p1 to p99)"),
        "threshold": Param(
            0.5, type="number", description="highest average weighted quantile loss to register"
        ),
        "model_package_group": Param("autopilot-demand-forecast", type="string"),
    },
) as dag:

    @task
    def upload_demand_data(**context) -> str:
        """Write the weekly demand CSV (generated in code) to S3; return its prefix."""
        from airflow_autopilot.emulator.sample_data import upload_weekly_demand

        return upload_weekly_demand(context["params"]["bucket"], prefix="demand/train")

    create_forecast_job = AutopilotCreateJobV2Operator(
        task_id="create_forecast_job",
        job_name_prefix="demand",
        s3_input_uri=upload_demand_data(),
        s3_output_path="s3://{{ params.bucket }}/demand/output",
        role_arn="{{ params.role_arn }}",
        problem_type_config={
            "TimeSeriesForecastingJobConfig": {
                "ForecastFrequency": "W",
                "ForecastHorizon": "{{ params.horizon_weeks }}",
                "ForecastQuantiles": "{{ params.quantiles }}",
                "TimeSeriesConfig": {
                    "TargetAttributeName": "demand",
                    "TimestampAttributeName": "week",
                    "ItemIdentifierAttributeName": "item_id",
                },
            }
        },
        objective_metric="AverageWeightedQuantileLoss",
        max_candidates=3,
        deferrable=True,
        poll_interval=POLL_SECONDS,
        max_wait_seconds=12 * 3600,
    )
    best_candidate = AutopilotBestCandidateOperator(task_id="best_candidate", job_name=JOB_NAME)
    gate = AutopilotPromotionBranchOperator(
        task_id="gate",
        best_candidate=best_candidate.output,
        threshold="{{ params.threshold }}",
        model_package_group_name="{{ params.model_package_group }}",
        promote_task_ids="register",
        reject_task_ids="reject",
    )
    register = AutopilotRegisterCandidateOperator(
        task_id="register",
        best_candidate=best_candidate.output,
        job_name=JOB_NAME,
        model_package_group_name="{{ params.model_package_group }}",
        model_package_group_description="Autopilot weekly demand forecasters",
        approval_status="PendingManualApproval",
    )

    @task(multiple_outputs=False)
    def reject(**context) -> dict:
        """Record why the forecaster was not registered."""
        decision = context["ti"].xcom_pull(task_ids="gate", key=DECISION_XCOM_KEY)
        print(f"Not registered: {decision['reason']}")
        return decision

    create_forecast_job >> best_candidate >> gate >> [register, reject()]

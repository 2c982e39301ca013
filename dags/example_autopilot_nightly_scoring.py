"""
Score the day's data every night with the current approved Autopilot model.

upload_todays_data -> score (batch transform, deferrable) -> report

``score`` takes the newest Approved version of the Model Package Group (what
example_autopilot_promotion registers, or a person approves), builds a model from all of its
inference containers and runs a SageMaker batch transform job over ``s3://<bucket>/scoring/<ds>/``;
predictions (label and probability per row) land under ``s3://<bucket>/predictions/<ds>/``. On AWS,
replace ``upload_todays_data`` with whatever delivers the day's data. No AWS call happens at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_autopilot.operators import AutopilotBatchTransformOperator

POLL_SECONDS = float(os.environ.get("AUTOPILOT_EXAMPLE_POLL_SECONDS", "60"))

with DAG(
    dag_id="example_autopilot_nightly_scoring",
    description="Batch-score the day's data with the newest Approved Autopilot model",
    schedule="@daily",
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["autopilot", "example"],
    params={
        "bucket": Param("autopilot-example", type="string", description="S3 bucket for data and output"),
        "role_arn": Param(
            "arn:aws:iam::123456789012:role/SageMakerAutopilot",
            type="string",
            description="SageMaker execution role",
        ),
        "model_package_group": Param("autopilot-churn", type="string"),
    },
) as dag:

    @task
    def upload_todays_data(**context) -> str:
        """Write the day's customers (synthetic, headerless CSV) to S3; return the prefix to score."""
        from airflow_autopilot.emulator.sample_data import upload_scoring_data

        return upload_scoring_data(context["params"]["bucket"], prefix=f"scoring/{context['ds']}")

    score = AutopilotBatchTransformOperator(
        task_id="score",
        s3_input_uri=upload_todays_data(),
        s3_output_path="s3://{{ params.bucket }}/predictions/{{ ds }}",
        model_package_group_name="{{ params.model_package_group }}",
        role_arn="{{ params.role_arn }}",
        inference_response_keys=["predicted_label", "probability"],
        join_source="Input",
        deferrable=True,
        poll_interval=POLL_SECONDS,
    )

    @task(multiple_outputs=False)
    def report(result: dict) -> dict:
        """Log where the predictions are and which model made them."""
        print(f"{result['CandidateName']} scored {result['InputS3Uri']} into {result['OutputS3Uri']}")
        return {"OutputS3Uri": result["OutputS3Uri"], "TransformJobName": result["TransformJobName"]}

    report(score.output)

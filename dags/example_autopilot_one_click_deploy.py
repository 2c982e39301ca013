"""
Let Autopilot deploy its best candidate itself (ModelDeployConfig), then smoke-test the endpoint.

upload_sample_data -> create_job (AutoGenerateEndpointName) -> wait_for_job (deferrable)
-> deploy_result (ModelDeployResult, wait for InService) -> smoke_check (invoke the endpoint)

The smoke check sends one customer's features as CSV through sagemaker-runtime InvokeEndpoint and
fails unless the endpoint is InService and the first field of the answer is one of the target's
labels (``expected_labels``). On the local emulator, InvokeEndpoint answers what was queued through
moto's ``/moto-api/static/sagemaker/endpoint-results`` API (the emulator trains no real model), so
queue an answer first or the check fails, as it should. No AWS call happens at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_autopilot.operators import AutopilotCreateJobOperator, AutopilotModelDeployResultOperator
from airflow_autopilot.sensors import AutopilotJobSensor

POLL_SECONDS = float(os.environ.get("AUTOPILOT_EXAMPLE_POLL_SECONDS", "60"))
JOB_NAME = "{{ ti.xcom_pull(task_ids='create_job')['AutoMLJobName'] }}"

with DAG(
    dag_id="example_autopilot_one_click_deploy",
    description="Autopilot job with ModelDeployConfig, then an endpoint smoke check",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["autopilot", "example"],
    params={
        "bucket": Param("autopilot-example", type="string"),
        "role_arn": Param("arn:aws:iam::123456789012:role/SageMakerAutopilot", type="string"),
        "job_name_prefix": Param("churn-1click", type="string", maxLength=19),
        "max_candidates": Param(3, type="integer", minimum=1, maximum=750),
        "expected_labels": Param(["no", "yes"], type="array", description="labels the endpoint may answer"),
    },
) as dag:

    @task
    def upload_sample_data(**context) -> str:
        """Write a small synthetic churn CSV (generated in code) to S3; return its prefix."""
        from airflow_autopilot.emulator.sample_data import upload_sample_data as upload

        return upload(context["params"]["bucket"], prefix="churn-1click/train")

    create_job = AutopilotCreateJobOperator(
        task_id="create_job",
        job_name_prefix="{{ params.job_name_prefix }}",
        s3_input_uri=upload_sample_data(),
        target_attribute_name="churn",
        s3_output_path="s3://{{ params.bucket }}/churn-1click/output",
        role_arn="{{ params.role_arn }}",
        problem_type="BinaryClassification",
        max_candidates="{{ params.max_candidates }}",
        model_deploy_config={"AutoGenerateEndpointName": True},
        wait_for_completion=False,
    )
    wait_for_job = AutopilotJobSensor(
        task_id="wait_for_job",
        job_name=JOB_NAME,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=6 * 3600,
    )
    deploy_result = AutopilotModelDeployResultOperator(
        task_id="deploy_result",
        job_name=JOB_NAME,
        wait_for_endpoint=True,
        deferrable=True,
        poll_interval=max(1, int(POLL_SECONDS)),
    )

    @task
    def smoke_check(result: dict, **context) -> dict:
        """Invoke the endpoint with one row of features; fail unless it answers a known label."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
        from airflow.providers.common.compat.sdk import AirflowFailException

        from airflow_autopilot.emulator.sample_data import feature_line

        endpoint = result["EndpointName"]
        sagemaker = AwsBaseHook(aws_conn_id="aws_default", client_type="sagemaker").get_conn()
        status = sagemaker.describe_endpoint(EndpointName=endpoint)["EndpointStatus"]
        if status != "InService":
            raise AirflowFailException(f"Endpoint {endpoint} is {status}, not InService")
        runtime = AwsBaseHook(aws_conn_id="aws_default", client_type="sagemaker-runtime").get_conn()
        payload = feature_line(0)
        response = runtime.invoke_endpoint(
            EndpointName=endpoint, ContentType="text/csv", Accept="text/csv", Body=payload.encode()
        )
        body = response["Body"].read().decode().strip()
        prediction = body.splitlines()[0].split(",") if body else []
        labels = [str(label) for label in context["params"]["expected_labels"]]
        if not prediction or prediction[0] not in labels:
            raise AirflowFailException(
                f"Endpoint {endpoint} answered {body[:200]!r} for {payload!r}; "
                f"expected a CSV line starting with one of {labels}"
            )
        print(f"Endpoint {endpoint} predicts {prediction} for {payload}")
        return {
            "EndpointName": endpoint,
            "EndpointStatus": status,
            "Input": payload,
            "Prediction": prediction,
        }

    create_job >> wait_for_job >> deploy_result
    smoke_check(deploy_result.output)

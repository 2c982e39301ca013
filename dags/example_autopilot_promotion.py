"""
Train with SageMaker Autopilot and promote the winner through XCom.

upload_sample_data -> create_job -> wait_for_job (deferrable) -> best_candidate + leaderboard
-> gate -> register -> approval -> deploy -> smoke_test   (promoted, then approved)
        -> reject                                         (a gate condition failed, or not better
                                                           than the champion)
create_rollback_alarm -> deploy

The gate checks the objective threshold, the champion, three CandidateMetrics conditions and one
condition on the model-insights report. With ``approval_status=PendingManualApproval`` the version
waits (deferred) until a person approves it in SageMaker Studio (or with UpdateModelPackage);
a rejection fails ``approval``, or skips ``deploy`` with ``on_rejection=skip``.

The deployment is guardrailed: an update of the endpoint shifts traffic with ``rollout`` (a canary
by default) and SageMaker rolls it back when the CloudWatch alarm ``create_rollback_alarm`` sets up
(5XX errors of the endpoint) fires during a bake; ``deploy`` then fails, naming the alarm, and
``smoke_test`` does not run. After a promotion, ``smoke_test`` sends the first rows of the training
data (without the target) to the endpoint and checks every answer; when they fail, it puts the
endpoint back on the config it served before and fails. dags/example_autopilot_rollback.py undoes a
promotion on demand.

Runs unchanged on AWS or on the local emulator (``make demo``). Parameters (Airflow Params, set per
run in the trigger form or ``dag.test(run_conf=...)``): the bucket, role, threshold, Model Package
Group and endpoint. ``AUTOPILOT_EXAMPLE_POLL_SECONDS`` (default 60) sets how often the waits poll.
No AWS call happens at parse time.
"""

from __future__ import annotations

import os
from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param, task

from airflow_autopilot.operators import (
    AutopilotBestCandidateOperator,
    AutopilotCandidatesOperator,
    AutopilotCreateJobOperator,
)
from airflow_autopilot.operators.promotion import (
    DECISION_XCOM_KEY,
    AutopilotDeployCandidateOperator,
    AutopilotPromotionBranchOperator,
    AutopilotRegisterCandidateOperator,
)
from airflow_autopilot.operators.smoke_test import AutopilotEndpointSmokeTestOperator
from airflow_autopilot.sensors import AutopilotJobSensor, AutopilotModelApprovalSensor

POLL_SECONDS = float(os.environ.get("AUTOPILOT_EXAMPLE_POLL_SECONDS", "60"))
JOB_NAME = "{{ ti.xcom_pull(task_ids='create_job')['AutoMLJobName'] }}"

with DAG(
    dag_id="example_autopilot_promotion",
    description="Autopilot job, gate on the objective metric, register and deploy the best candidate",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    tags=["autopilot", "example"],
    params={
        "bucket": Param("autopilot-example", type="string", description="S3 bucket for data and output"),
        "role_arn": Param(
            "arn:aws:iam::123456789012:role/SageMakerAutopilot",
            type="string",
            description="SageMaker execution role",
        ),
        "job_name_prefix": Param(
            "churn",
            type="string",
            maxLength=19,
            description="start of the job name (on the emulator, emu-failed-churn makes the job fail)",
        ),
        "max_candidates": Param(5, type="integer", minimum=1, maximum=750),
        "threshold": Param(0.6, type="number", description="least F1 to promote"),
        "min_improvement": Param(
            0.0, type="number", minimum=0, description="least F1 gain over the champion"
        ),
        "model_package_group": Param("autopilot-churn", type="string"),
        "approval_status": Param(
            "Approved", enum=["Approved", "PendingManualApproval"], description="status of the new version"
        ),
        "endpoint_name": Param("autopilot-churn", type="string"),
        "on_rejection": Param("fail", enum=["fail", "skip"], description="what a rejected version does"),
        "min_recall": Param(0.6, type="number", description="least Recall (CandidateMetrics, Validation)"),
        "rollout": Param(
            "canary:10%:600s",
            type="string",
            description="how an update of the endpoint shifts traffic (docs/promotion.md, e.g. linear:20%:300s)",
        ),
        "rollback_alarm": Param(
            "autopilot-churn-5xx",
            type="string",
            description="CloudWatch alarm (created by create_rollback_alarm) that rolls an update back",
        ),
    },
) as dag:

    @task
    def upload_sample_data(**context) -> str:
        """Write a small synthetic churn CSV (generated in code) to S3; return its prefix."""
        from airflow_autopilot.emulator.sample_data import upload_sample_data as upload

        return upload(context["params"]["bucket"], prefix="churn/train")

    @task
    def create_rollback_alarm(**context) -> str:
        """Create (or update) the CloudWatch alarm on the endpoint's 5XX errors that rolls an update back."""
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        params = context["params"]
        AwsBaseHook(aws_conn_id="aws_default", client_type="cloudwatch").get_conn().put_metric_alarm(
            AlarmName=params["rollback_alarm"],
            AlarmDescription=f"5XX errors of endpoint {params['endpoint_name']}: roll an update back",
            Namespace="AWS/SageMaker",
            MetricName="Invocation5XXErrors",
            Dimensions=[
                {"Name": "EndpointName", "Value": params["endpoint_name"]},
                {"Name": "VariantName", "Value": "AllTraffic"},
            ],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
        )
        return params["rollback_alarm"]

    training_data = upload_sample_data()
    create_job = AutopilotCreateJobOperator(
        task_id="create_job",
        job_name_prefix="{{ params.job_name_prefix }}",
        s3_input_uri=training_data,
        target_attribute_name="churn",
        s3_output_path="s3://{{ params.bucket }}/churn/output",
        role_arn="{{ params.role_arn }}",
        problem_type="BinaryClassification",
        objective_metric="F1",
        max_candidates="{{ params.max_candidates }}",
        wait_for_completion=False,
        emit_asset_events=True,
    )
    wait_for_job = AutopilotJobSensor(
        task_id="wait_for_job",
        job_name=JOB_NAME,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=6 * 3600,
    )
    best_candidate = AutopilotBestCandidateOperator(task_id="best_candidate", job_name=JOB_NAME)
    leaderboard = AutopilotCandidatesOperator(task_id="leaderboard", job_name=JOB_NAME, top_k=5)
    gate = AutopilotPromotionBranchOperator(
        task_id="gate",
        best_candidate=best_candidate.output,
        threshold="{{ params.threshold }}",
        model_package_group_name="{{ params.model_package_group }}",
        min_improvement="{{ params.min_improvement }}",
        metric_conditions={
            "Precision": ">= 0.5",
            "Recall": ">= {{ params.min_recall }}",
            "LogLoss": "<= 0.7",
        },
        report_conditions=[
            {
                "report": "ModelInsights",
                "path": "binary_classification_metrics.auc.value",
                "condition": ">= 0.6",
            }
        ],
        promote_task_ids="register",
        reject_task_ids="reject",
    )
    register = AutopilotRegisterCandidateOperator(
        task_id="register",
        best_candidate=best_candidate.output,
        job_name=JOB_NAME,
        model_package_group_name="{{ params.model_package_group }}",
        model_package_group_description="Autopilot churn models",
        approval_status="{{ params.approval_status }}",
    )
    approval = AutopilotModelApprovalSensor(
        task_id="approval",
        model_package_arn="{{ ti.xcom_pull(task_ids='register')['ModelPackageArn'] }}",
        on_rejection="{{ params.on_rejection }}",
        # Once approved (at registration or later, by a person), the group's asset event:
        # dags/example_autopilot_on_new_model.py runs on it.
        emit_asset_events=True,
        deferrable=True,
        poke_interval=POLL_SECONDS,
        timeout=7 * 24 * 3600,
    )
    deploy = AutopilotDeployCandidateOperator(
        task_id="deploy",
        best_candidate=best_candidate.output,
        endpoint_name="{{ params.endpoint_name }}",
        role_arn="{{ params.role_arn }}",
        inference_response_keys=["predicted_label", "probability"],
        rollout="{{ params.rollout }}",
        auto_rollback_alarms=["{{ params.rollback_alarm }}"],
        deferrable=True,
        poll_interval=POLL_SECONDS,
        model_package_arn="{{ ti.xcom_pull(task_ids='register')['ModelPackageArn'] }}",
        emit_asset_events=True,
    )
    smoke_test = AutopilotEndpointSmokeTestOperator(
        task_id="smoke_test",
        # The deploy's rollout record: the endpoint, the config deployed and the one it replaced.
        deployment="{{ ti.xcom_pull(task_ids='deploy', key='rollout') }}",
        endpoint_name="{{ params.endpoint_name }}",
        rows_s3_uri=training_data,
        target_attribute_name="churn",
        row_count=5,
        accept="application/jsonlines",
        expected_response_keys=["predicted_label", "probability"],
        expected_labels=["no", "yes"],
        max_latency_ms=5000,
        deferrable=True,
        poll_interval=POLL_SECONDS,
    )

    # One XCom, the whole decision: a dict return would also push each key (multiple_outputs), and
    # Airflow 3.0 refuses a key whose value is None (champion_arn without a champion).
    @task(multiple_outputs=False)
    def reject(**context) -> dict:
        """Record why the candidate was not promoted."""
        decision = context["ti"].xcom_pull(task_ids="gate", key=DECISION_XCOM_KEY)
        print(f"Not promoted: {decision['reason']}")
        return decision

    create_job >> wait_for_job >> [best_candidate, leaderboard]
    leaderboard >> gate
    gate >> [register, reject()]
    register >> approval >> deploy >> smoke_test
    create_rollback_alarm() >> deploy

"""
The operators in real ``dag.test()`` runs against the emulator server: XCom round trips, Jinja
templates pulling the values, a crash-and-retry that re-attaches, and deferrable waits.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from airflow_autopilot.core.naming import OWNER_TAG_KEY
from airflow_autopilot.operators import (
    AutopilotBestCandidateOperator,
    AutopilotCandidatesOperator,
    AutopilotCreateJobOperator,
    AutopilotModelDeployResultOperator,
)
from tests.helpers import create_kwargs, sagemaker


def deployed_task(*, deferrable: bool) -> AutopilotModelDeployResultOperator:
    """The task that waits for the endpoint of the job the ``create`` task pushed."""
    return AutopilotModelDeployResultOperator(
        task_id="deployed",
        job_name="{{ ti.xcom_pull(task_ids='create')['AutoMLJobName'] }}",
        wait_for_endpoint=True,
        deferrable=deferrable,
        poll_interval=1,
    )


def dag_id(name: str) -> str:
    return f"op_{name}_{uuid.uuid4().hex[:8]}"


def test_pipeline_xcom_round_trip_and_jinja(server, run_dag):
    from airflow.providers.common.compat.sdk import DAG, task
    from airflow.providers.common.compat.standard.operators import PythonOperator

    seen = {}

    with DAG(dag_id("pipeline"), schedule=None) as dag:
        create = AutopilotCreateJobOperator(
            task_id="create",
            model_deploy_config={"AutoGenerateEndpointName": True},
            deferrable=False,
            **create_kwargs(),
        )
        best = AutopilotBestCandidateOperator(
            task_id="best", job_name="{{ ti.xcom_pull(task_ids='create')['AutoMLJobName'] }}"
        )
        deployed = deployed_task(deferrable=False)
        top = AutopilotCandidatesOperator(
            task_id="top", job_name="{{ ti.xcom_pull(task_ids='create')['AutoMLJobName'] }}", top_k=2
        )
        templated = PythonOperator(
            task_id="templated",
            python_callable=lambda **kw: seen.update(kw["templates_dict"]) or kw["templates_dict"],
            templates_dict={
                "candidate": "{{ ti.xcom_pull(task_ids='best')['CandidateName'] }}",
                "metric": "{{ ti.xcom_pull(task_ids='best')['FinalAutoMLJobObjectiveMetric']['MetricName'] }}",
                "endpoint": "{{ ti.xcom_pull(task_ids='deployed')['EndpointName'] }}",
                "second": "{{ ti.xcom_pull(task_ids='top')[1]['CandidateName'] }}",
                "created": "{{ ti.xcom_pull(task_ids='best')['CreationTime'][:4] }}",
            },
        )

        @task
        def taskflow(best_candidate: dict, deploy_result: dict, candidates: list) -> dict:
            return {
                "image": best_candidate["InferenceContainers"][0]["Image"],
                "endpoint": deploy_result["EndpointName"],
                "ranked": [c["CandidateName"] for c in candidates],
            }

        create >> [best, deployed, top]
        [best, deployed, top] >> templated
        flow = taskflow(best.output, deployed.output, top.output)

    dag_run, xcoms = run_dag(dag)
    assert dag_run.state == "success", xcoms
    job_name = xcoms["create"]["AutoMLJobName"]
    assert set(xcoms["create"]) == {"AutoMLJobName", "AutoMLJobArn"}
    assert xcoms["create"]["AutoMLJobArn"].endswith(f"automl-job/{job_name}")
    assert xcoms["create:autopilot_job_details"]["job_name"] == job_name  # console link persisted

    described = sagemaker(server).describe_auto_ml_job(AutoMLJobName=job_name)
    best_value = xcoms["best"]
    assert best_value["CandidateName"] == described["BestCandidate"]["CandidateName"]
    assert best_value["CreationTime"] == described["BestCandidate"]["CreationTime"].isoformat()
    assert best_value["InferenceContainers"] == described["BestCandidate"]["InferenceContainers"]
    assert xcoms["deployed"] == {"EndpointName": described["ModelDeployResult"]["EndpointName"]}
    assert [c["CandidateName"] for c in xcoms["top"]][0] == best_value["CandidateName"]
    assert len(xcoms["top"]) == 2

    # Jinja renders pulled values (not reprs); TaskFlow receives the same JSON values.
    assert xcoms["templated"] == {
        "candidate": best_value["CandidateName"],
        "metric": "F1",
        "endpoint": xcoms["deployed"]["EndpointName"],
        "second": xcoms["top"][1]["CandidateName"],
        "created": best_value["CreationTime"][:4],
    }
    assert xcoms[flow.operator.task_id] == {
        "image": best_value["InferenceContainers"][0]["Image"],
        "endpoint": xcoms["deployed"]["EndpointName"],
        "ranked": [c["CandidateName"] for c in xcoms["top"]],
    }


class CrashAfterCreate(AutopilotCreateJobOperator):
    """Dies on its first try right after CreateAutoMLJob, like a worker lost mid-task."""

    def create_or_reattach(self, request, passthrough, chain):
        arn = super().create_or_reattach(request, passthrough, chain)
        if self._try_number == 1:
            raise RuntimeError("worker died after CreateAutoMLJob")
        return arn

    def execute(self, context):
        self._try_number = context["ti"].try_number
        return super().execute(context)


def test_retry_after_crash_reattaches_to_the_same_job(server, run_dag):
    from airflow.providers.common.compat.sdk import DAG

    with DAG(dag_id("retry"), schedule=None) as dag:
        CrashAfterCreate(
            task_id="create", retries=2, retry_delay=timedelta(seconds=0), deferrable=False, **create_kwargs()
        )
    dag_run, xcoms = run_dag(dag)
    assert dag_run.state == "success"
    ti = dag_run.get_task_instance("create")
    assert ti.try_number == 2
    counts = server.request_counts()
    assert counts.get("CreateAutoMLJob") == 1  # the retry did not create a second job
    jobs = sagemaker(server).list_auto_ml_jobs()["AutoMLJobSummaries"]
    assert [j["AutoMLJobName"] for j in jobs] == [xcoms["create"]["AutoMLJobName"]]
    assert jobs[0]["AutoMLJobStatus"] == "Completed"
    tags = sagemaker(server).list_tags(ResourceArn=xcoms["create"]["AutoMLJobArn"])["Tags"]
    assert any(t["Key"] == OWNER_TAG_KEY for t in tags)


RESUMED: list[str] = []


class RecordingCreate(AutopilotCreateJobOperator):
    def execute_complete(self, context, event=None, **kwargs):
        RESUMED.append(event["status"])
        return super().execute_complete(context, event, **kwargs)


def test_deferrable_create_and_endpoint_wait_in_dag_test(server, run_dag):
    from airflow.providers.common.compat.sdk import DAG

    RESUMED.clear()
    with DAG(dag_id("deferrable"), schedule=None) as dag:
        create = RecordingCreate(
            task_id="create",
            deferrable=True,
            model_deploy_config={"AutoGenerateEndpointName": True},
            **create_kwargs(),
        )
        deployed = deployed_task(deferrable=True)
        create >> deployed
    dag_run, xcoms = run_dag(dag)
    assert dag_run.state == "success"
    job_name = xcoms["create"]["AutoMLJobName"]
    assert xcoms["create"]["AutoMLJobArn"].endswith(job_name)
    assert xcoms["deployed"]["EndpointName"].startswith(job_name)
    assert RESUMED == ["success"]  # the wait really went through the trigger


def test_deferrable_create_of_a_failing_job_fails_the_task(server, run_dag):
    from airflow.providers.common.compat.sdk import DAG

    with DAG(dag_id("deferfail"), schedule=None) as dag:
        AutopilotCreateJobOperator(
            task_id="create",
            deferrable=True,
            tags={"autopilot-emulator:outcome": "failed"},
            **create_kwargs(),
        )
    dag_run, xcoms = run_dag(dag)
    assert dag_run.state == "failed"
    assert "create" not in xcoms

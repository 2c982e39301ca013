"""A guardrailed deploy in a real ``dag.test()`` run against the emulator server: an alarm that fires
during the canary rolls the update back, the task (in the worker or deferred) fails naming it, the rollout record is in
XCom and the downstream task does not run."""

from __future__ import annotations

import uuid

import pytest

from airflow_autopilot.demo.runner import task_states
from airflow_autopilot.operators.promotion import ROLLOUT_XCOM_KEY, AutopilotDeployCandidateOperator
from tests.conftest import ROLE_ARN
from tests.helpers import candidate, error_alarm, sagemaker


@pytest.mark.parametrize(
    "deferrable",
    [
        False,
        # dag.test() runs the trigger inline at its own pace: long, so it runs with the slow tests.
        pytest.param(True, marks=pytest.mark.slow),
    ],
)
def test_an_alarm_in_the_canary_fails_the_deploy_and_stops_the_run(server, run_dag, deferrable):
    from airflow.providers.common.compat.sdk import DAG
    from airflow.providers.common.compat.standard.operators import PythonOperator

    error_alarm(server, "churn-5xx")
    server.fire_alarm("churn-5xx", "canary", endpoint_name="churn-endpoint")
    common = {"best_candidate": candidate(), "endpoint_name": "churn-endpoint", "role_arn": ROLE_ARN}
    with DAG(f"guarded_{uuid.uuid4().hex[:8]}", schedule=None) as dag:
        first = AutopilotDeployCandidateOperator(task_id="first", poll_interval=0.1, **common)
        guarded = AutopilotDeployCandidateOperator(
            task_id="guarded",
            inference_response_keys=["probability"],
            rollout="canary:10%:1s",
            auto_rollback_alarms="churn-5xx",
            deferrable=deferrable,
            poll_interval=0.1,
            max_wait_seconds=120,
            **common,
        )
        downstream = PythonOperator(task_id="downstream", python_callable=lambda: "ran")
        first >> guarded >> downstream
    dag_run, xcoms = run_dag(dag)
    assert dag_run.state == "failed"
    states = task_states(dag_run)
    assert (states["first"], states["guarded"], states["downstream"]) == (
        "success",
        "failed",
        "upstream_failed",
    )
    record = xcoms[f"guarded:{ROLLOUT_XCOM_KEY}"]
    assert record["outcome"] == "rolled_back" and record["alarms"] == ["churn-5xx"]
    assert record["previous_config"] == record["serving_config"] == xcoms["first"]["EndpointConfigName"]
    assert "guarded" not in xcoms  # no return_value: a rollback is never a success
    endpoint = sagemaker(server).describe_endpoint(EndpointName="churn-endpoint")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
        "InService",
        xcoms["first"]["EndpointConfigName"],
    )

"""
Promotion re-runs and endpoint faults with real boto3 against the emulator: a re-run of the gate
reaches the first run's decision, registration is idempotent and O(1), an UpdateEndpoint that
SageMaker rolls back fails every wait with its FailureReason, and a deploy retried while its update
is in flight sends no second update.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

from airflow_autopilot.emulator import controls
from airflow_autopilot.exceptions import AutopilotJobFailed
from airflow_autopilot.hooks import AutopilotHook
from airflow_autopilot.operators.promotion import (
    DECISION_XCOM_KEY,
    AutopilotDeployCandidateOperator,
    AutopilotPromotionBranchOperator,
    AutopilotRegisterCandidateOperator,
)
from tests.airflow_versions import execute_in_thread
from tests.conftest import ONE_ATTEMPT, ROLE_ARN
from tests.helpers import RecordingTI, candidate

GROUP = "churn-models"
ROLLBACK = {controls.TAG_UPDATE_OUTCOME: controls.UPDATE_OUTCOME_ROLLBACK}


@pytest.fixture
def emu(autopilot_emulator):
    autopilot_emulator.configure(stage_seconds=0.01)
    return autopilot_emulator


def register(best, **kwargs):
    kwargs = {"task_id": "register", "job_name": "promo-job", "model_package_group_name": GROUP, **kwargs}
    kwargs.setdefault("aws_conn_id", None)
    return AutopilotRegisterCandidateOperator(best_candidate=best, **kwargs)


def gate(best):
    ti = RecordingTI()
    branch = AutopilotPromotionBranchOperator(
        task_id="gate",
        best_candidate=best,
        threshold=0.5,
        model_package_group_name=GROUP,
        promote_task_ids="register",
        reject_task_ids="reject",
        aws_conn_id=None,
    ).choose_branch({"ti": ti})
    return branch, ti.pushed[DECISION_XCOM_KEY]


def deployer(best, **kwargs):
    kwargs = {
        "task_id": "deploy",
        "endpoint_name": "churn-endpoint",
        "role_arn": ROLE_ARN,
        "poll_interval": 0.05,
        "max_wait_seconds": 10,
        "deferrable": False,
        **kwargs,
    }
    kwargs.setdefault("aws_conn_id", None)
    return AutopilotDeployCandidateOperator(best_candidate=best, **kwargs)


# --- item 4: clearing the promotion run after register ---------------------------------------------
@pytest.mark.parametrize("with_champion", [False, True])
def test_gate_rerun_after_register_reaches_the_same_decision(emu, with_champion):
    best = candidate(name="cand-new", value=0.9)
    if with_champion:
        register(
            candidate(name="cand-old", value=0.7), job_name="older-job", approval_status="Approved"
        ).execute({})
    first_branch, first = gate(best)
    register(best, approval_status="Approved").execute({})  # the run goes on: registered, Approved
    again_branch, again = gate(best)  # the run is cleared (say, to retry a failed deploy)
    assert first_branch == again_branch == ["register"]
    assert again == first
    assert again["champion_value"] == (0.7 if with_champion else None)


# --- item 7: registration idempotent under concurrency, O(1) in the group's size -------------------
def test_register_costs_the_same_calls_in_a_group_of_60_versions(emu):
    sm = emu.client("sagemaker")
    register(candidate(name="cand-0")).execute({})
    spec = {"Containers": [{"Image": "img"}], "SupportedContentTypes": ["text/csv"]}
    spec["SupportedResponseMIMETypes"] = ["text/csv"]
    for _ in range(59):
        sm.create_model_package(ModelPackageGroupName=GROUP, InferenceSpecification=spec)
    emu.reset_request_counts()
    result = register(candidate(name="cand-61")).execute({})
    assert result["ModelPackageVersion"] == 61
    counts = emu.request_counts()
    assert counts.get("DescribeModelPackage", 0) <= 1 and counts.get("ListModelPackages", 0) == 0
    assert sum(counts.values()) <= 3, counts
    emu.reset_request_counts()
    assert register(candidate(name="cand-61")).execute({}) == result  # a retry: the same version
    assert sum(emu.request_counts().values()) <= 3


def test_concurrent_registers_of_one_candidate_create_one_version(server):
    """Two register tasks for the same candidate, both past their checks before either creates."""
    best = candidate(name="cand-race")
    operators = [register(best, task_id=f"register_{n}", aws_conn_id="aws_default") for n in range(2)]
    both_ready = threading.Barrier(2, timeout=20)

    def hold(**_):  # returns None: a before-call handler's return value would replace the response
        both_ready.wait()

    for op in operators:
        op.model_hook.client.meta.events.register("before-call.sagemaker.CreateModelPackage", hold)
    results: list = [None, None]

    def run(n):
        results[n] = execute_in_thread(operators[n], {})

    threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results[0] == results[1] and results[0]["ModelPackageVersion"] == 1
    versions = server.client("sagemaker").list_model_packages(ModelPackageGroupName=GROUP)
    assert len(versions["ModelPackageSummaryList"]) == 1


# --- item 3: an UpdateEndpoint rolled back by SageMaker --------------------------------------------
def test_sync_deploy_of_a_rolled_back_update_fails_with_the_reason(emu):
    sm = emu.client("sagemaker")
    best = candidate()
    first = deployer(best).execute({})
    with pytest.raises(AutopilotJobFailed) as raised:
        deployer(best, inference_response_keys=["probability"], tags=ROLLBACK, max_wait_seconds=5).execute({})
    message = str(raised.value)
    assert controls.ROLLBACK_FAILURE_REASON in message and "rolled back" in message
    assert "Timed out" not in message
    endpoint = sm.describe_endpoint(EndpointName="churn-endpoint")
    assert endpoint["EndpointConfigName"] == first["EndpointConfigName"]


def rolled_back_endpoint(server) -> tuple[str, str]:
    """An endpoint on ``cfg-a`` whose update to ``cfg-b`` SageMaker is rolling back."""
    sm = server.client("sagemaker")
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/autopilot:latest"
    sm.create_model(ModelName="m-a", ExecutionRoleArn=ROLE_ARN, PrimaryContainer={"Image": image})
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m-a",
        "InitialInstanceCount": 1,
        "InstanceType": "ml.m5.large",
    }
    sm.create_endpoint_config(EndpointConfigName="cfg-a", ProductionVariants=[variant])
    sm.create_endpoint_config(
        EndpointConfigName="cfg-b",
        ProductionVariants=[variant],
        Tags=[{"Key": k, "Value": v} for k, v in ROLLBACK.items()],
    )
    sm.create_endpoint(EndpointName="ep-rb", EndpointConfigName="cfg-a")
    sm.update_endpoint(EndpointName="ep-rb", EndpointConfigName="cfg-b")
    return "ep-rb", "cfg-b"


async def test_trigger_and_hook_agree_on_a_rolled_back_update(server):
    from airflow_autopilot.triggers import AutopilotEndpointTrigger
    from tests.helpers import fast_trigger

    endpoint, config = rolled_back_endpoint(server)
    trigger = fast_trigger(AutopilotEndpointTrigger, endpoint, config_name=config, timeout=5)
    [event] = [e.payload async for e in trigger.run()]
    assert event["status"] == "failure"
    assert controls.ROLLBACK_FAILURE_REASON in event["message"]
    assert event["endpoint"]["EndpointConfigName"] == "cfg-a"
    hook = AutopilotHook(aws_conn_id="aws_default", config=ONE_ATTEMPT)
    with pytest.raises(AutopilotJobFailed) as raised:
        await asyncio.to_thread(
            hook.wait_for_endpoint, endpoint, config_name=config, poll_interval=0.05, timeout=5
        )
    assert str(raised.value) == event["message"]


async def test_deferrable_deploy_of_a_rolled_back_update_fails_with_the_reason(server):
    from airflow.providers.common.compat.sdk import TaskDeferred

    best = candidate()
    first = await asyncio.to_thread(execute_in_thread, deployer(best, aws_conn_id="aws_default"), {})
    op = deployer(
        best,
        aws_conn_id="aws_default",
        inference_response_keys=["probability"],
        tags=ROLLBACK,
        deferrable=True,
    )
    with pytest.raises(TaskDeferred) as deferred:
        await asyncio.to_thread(execute_in_thread, op, {})
    trigger = deferred.value.trigger
    trigger.poll_interval = 0.05
    [event] = [e.payload async for e in trigger.run()]
    with pytest.raises(AutopilotJobFailed, match="rolled back") as raised:
        op.execute_complete({}, event, **deferred.value.kwargs)
    assert controls.ROLLBACK_FAILURE_REASON in str(raised.value)
    endpoint = server.client("sagemaker").describe_endpoint(EndpointName="churn-endpoint")
    assert endpoint["EndpointConfigName"] == first["EndpointConfigName"]


# --- item 8: a deploy retried while the endpoint is Updating ----------------------------------------
def each_describe_moves_the_clock(op, emu, seconds: float):
    """After each DescribeEndpoint of ``op``, the emulator clock jumps ``seconds``: stages pass between polls."""
    op.model_hook.client.meta.events.register(
        "after-call.sagemaker.DescribeEndpoint", lambda **_: emu.advance(seconds)
    )
    return op


def test_deploy_retried_while_its_update_is_in_flight_sends_no_second_update(emu):
    best = candidate()
    deployer(best).execute({})
    emu.configure(stage_seconds=600)  # the retry comes while the first try's update is in flight
    first_try = deployer(best, inference_response_keys=["probability"], wait_for_completion=False).execute({})
    assert (
        emu.client("sagemaker").describe_endpoint(EndpointName="churn-endpoint")["EndpointStatus"]
        == "Updating"
    )
    retry = each_describe_moves_the_clock(deployer(best, inference_response_keys=["probability"]), emu, 600)
    assert retry.execute({}) == first_try
    assert emu.request_counts()["UpdateEndpoint"] == 1
    endpoint = emu.client("sagemaker").describe_endpoint(EndpointName="churn-endpoint")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
        "InService",
        first_try["EndpointConfigName"],
    )


def test_deploy_retried_while_its_update_rolls_back_fails_without_a_second_update(emu):
    best = candidate()
    deployer(best).execute({})
    emu.configure(stage_seconds=600)
    keys = {"inference_response_keys": ["probability"], "tags": ROLLBACK}
    deployer(best, wait_for_completion=False, **keys).execute({})
    retry = each_describe_moves_the_clock(deployer(best, **keys), emu, 600)
    with pytest.raises(AutopilotJobFailed, match="rolled back"):
        retry.execute({})
    assert emu.request_counts()["UpdateEndpoint"] == 1


def test_deploy_waits_for_someone_elses_update_then_applies_its_own(emu):
    best = candidate()
    deployer(best).execute({})
    emu.configure(stage_seconds=600)
    deployer(best, inference_response_keys=["predicted_label"], wait_for_completion=False).execute({})
    ours = each_describe_moves_the_clock(deployer(best, inference_response_keys=["probability"]), emu, 600)
    result = ours.execute({})
    assert emu.request_counts()["UpdateEndpoint"] == 2  # theirs, then ours once theirs had settled
    endpoint = emu.client("sagemaker").describe_endpoint(EndpointName="churn-endpoint")
    assert (endpoint["EndpointStatus"], endpoint["EndpointConfigName"]) == (
        "InService",
        result["EndpointConfigName"],
    )

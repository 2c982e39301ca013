"""The smoke-test and rollback operators against the in-process emulator with real boto3 (``execute``
called directly): answers checked, a failing new model put back on its previous config, the
previous Approved version restored, and bad input refused before any call."""

from __future__ import annotations

import json

import pytest

from airflow_autopilot.core.promotion import PromotionInputError
from airflow_autopilot.exceptions import AutopilotError, AutopilotJobFailed
from airflow_autopilot.operators import (
    ROLLBACK_XCOM_KEY,
    SMOKE_TEST_XCOM_KEY,
    AutopilotDeployCandidateOperator,
    AutopilotEndpointSmokeTestOperator,
    AutopilotRegisterCandidateOperator,
    AutopilotRollbackEndpointOperator,
)
from tests.conftest import DATA_BUCKET, ROLE_ARN
from tests.helpers import RecordingTI

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")

ENDPOINT = "smoke-endpoint"
GROUP = "smoke-models"
KEYS = ["predicted_label", "probability"]
DEPLOY = dict(
    task_id="deploy",
    endpoint_name=ENDPOINT,
    role_arn=ROLE_ARN,
    inference_response_keys=KEYS,
    aws_conn_id=None,
    poll_interval=0.05,
    max_wait_seconds=10,
    deferrable=False,
)
SMOKE = dict(
    task_id="smoke_test",
    rows_s3_uri=f"s3://{DATA_BUCKET}/train/",
    target_attribute_name="churn",
    row_count=3,
    expected_labels=["no", "yes"],
    aws_conn_id=None,
    poll_interval=0.05,
    max_wait_seconds=10,
    deferrable=False,
)


@pytest.fixture
def emu(autopilot_emulator, emulated_clock):
    autopilot_emulator.configure(stage_seconds=0.01)
    return autopilot_emulator


@pytest.fixture
def candidates(emu, make_job):
    """The best candidates of two finished jobs: the champion and the challenger."""
    make_job("smoke-job-a")
    make_job("smoke-job-b")
    emu.advance(60)
    sm = emu.client("sagemaker")
    return [
        json.loads(json.dumps(sm.describe_auto_ml_job(AutoMLJobName=n)["BestCandidate"], default=str))
        for n in ("smoke-job-a", "smoke-job-b")
    ]


def deploy(best, ti=None, **kwargs):
    operator = AutopilotDeployCandidateOperator(**{**DEPLOY, "best_candidate": best, **kwargs})
    return operator.execute({"ti": ti or RecordingTI()})


def smoke(ti=None, **kwargs):
    ti = ti or RecordingTI()
    return AutopilotEndpointSmokeTestOperator(**{**SMOKE, **kwargs}).execute({"ti": ti}), ti


def serving(emu):
    return emu.client("sagemaker").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"]


def test_a_deployed_model_passes_with_rows_from_the_training_data(emu, candidates):
    deployed = deploy(candidates[0])
    result, ti = smoke(deployment=deployed)
    assert result == ti.pushed[SMOKE_TEST_XCOM_KEY]
    assert result["passed"] and result["rows_sent"] == 3 and result["failures"] == 0
    # The first rows of the object without the target column, answered with the deployed keys.
    assert [a["row"] for a in result["answers"]] == ["20,1000", "21,1037", "22,1074"]
    assert all(a["answer"]["predicted_label"] in ("no", "yes") for a in result["answers"])
    assert set(result["latency_ms"]) == {"p50", "max"}
    json.dumps(result)
    # Inline rows in JSON Lines, answers in JSON Lines.
    result, _ = smoke(
        endpoint_name=ENDPOINT,
        rows_s3_uri=None,
        rows=[[30, 2500]],
        content_type="application/jsonlines",
        accept="application/jsonlines",
    )
    assert result["passed"] and set(result["answers"][0]["answer"]) == set(KEYS)


def test_a_failing_new_model_is_put_back_on_the_previous_config(emu, candidates):
    old = deploy(candidates[0])
    emu.fail_invocations(new_models_only=True)
    deployed = RecordingTI()
    new = deploy(candidates[1], deployed, rollout="canary:50%:1s")
    assert serving(emu) == new["EndpointConfigName"] != old["EndpointConfigName"]
    # The deploy's rollout record says which config the update replaced.
    record = deployed.pushed["rollout"]
    assert (record["previous_config"], record["new_config"]) == (
        old["EndpointConfigName"],
        new["EndpointConfigName"],
    )
    ti = RecordingTI()
    with pytest.raises(AutopilotJobFailed) as failed:
        smoke(ti, deployment=record)
    message = str(failed.value)
    assert "Smoke test failed: 0/3 rows answered as expected" in message
    assert "row 0: 20,1000 -> error:" in message and "the model answered with an error" in message
    assert f"Restored endpoint {ENDPOINT} to its previous config {old['EndpointConfigName']}" in message
    assert ti.pushed[SMOKE_TEST_XCOM_KEY]["failures"] == 3 and not ti.pushed[SMOKE_TEST_XCOM_KEY]["passed"]
    # The old model serves again, and answers.
    assert serving(emu) == old["EndpointConfigName"]
    answer = emu.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=ENDPOINT, Body=b"20,1000", ContentType="text/csv"
    )
    assert answer["Body"].read().decode().split(",")[0] in ("no", "yes")


def test_a_new_endpoint_that_fails_is_left_alone_and_said_so(emu, candidates):
    emu.fail_invocations()
    deployed = deploy(candidates[0])
    counts = emu.request_counts()
    with pytest.raises(
        AutopilotJobFailed, match=r"Nothing restored \(the deployment replaced no other config"
    ):
        smoke(deployment=deployed)
    assert emu.request_counts().get("UpdateEndpoint", 0) == counts.get("UpdateEndpoint", 0)


def test_an_endpoint_on_another_config_is_not_tested(emu, candidates):
    old = deploy(candidates[0])
    with pytest.raises(AutopilotJobFailed, match="not the deployed other-config"):
        smoke(deployment={**old, "EndpointConfigName": "other-config"})
    with pytest.raises(AutopilotError, match="does not exist; nothing to test"):
        smoke(endpoint_name="no-such-endpoint")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"row_count": 0}, "row_count: 0 must be a whole number of rows from 1 to 100"),
        ({"max_latency_ms": -5}, "max_latency_ms: -5 must be a number of milliseconds greater than 0"),
        ({"content_type": "image/png"}, "content_type: 'image/png' must be one of"),
        ({"rows": [["1"]]}, "give exactly one: inline rows, or an S3 object"),
        ({"endpoint_name": "bad_name"}, "endpoint_name"),
        ({"deployment": "not a dict"}, "deployment: not a dict"),
        ({"poll_interval": -1}, "poll_interval"),
    ],
)
def test_bad_input_is_refused_before_any_call(emu, kwargs, message):
    emu.reset_request_counts()
    with pytest.raises(PromotionInputError, match=message):
        smoke(**{"endpoint_name": ENDPOINT, **kwargs})
    assert emu.request_counts() == {}


# --- rollback ------------------------------------------------------------------------------------
def register_and_approve(emu, best, job):
    registered = AutopilotRegisterCandidateOperator(
        task_id="register",
        best_candidate=best,
        job_name=job,
        model_package_group_name=GROUP,
        approval_status="Approved",
        aws_conn_id=None,
    ).execute({})
    return registered["ModelPackageArn"]


class PullingTI(RecordingTI):
    """Also answers ``xcom_pull`` of what was pushed (a resumed deferral reads its own XCom)."""

    def xcom_pull(self, task_ids=None, key="return_value"):
        return self.pushed.get(key)


def rollback(ti=None, **kwargs):
    ti = ti or PullingTI()
    params = {**DEPLOY, "task_id": "rollback", **kwargs}
    return AutopilotRollbackEndpointOperator(**params).execute({"ti": ti}), ti


def test_rollback_restores_the_previous_approved_version(emu, candidates):
    first_arn = register_and_approve(emu, candidates[0], "smoke-job-a")
    first = deploy(candidates[0], model_package_arn=first_arn)
    register_and_approve(emu, candidates[1], "smoke-job-b")
    deploy(candidates[1])
    emu.reset_request_counts()

    result, ti = rollback(model_package_group_name=GROUP)

    chosen = ti.pushed[ROLLBACK_XCOM_KEY]
    assert chosen["ModelPackageArn"] == first_arn and chosen["ModelPackageVersion"] == 1
    assert chosen["CandidateName"] == candidates[0]["CandidateName"]
    assert (
        "the endpoint serves version 2; version 1 is the newest Approved version before it"
        in chosen["reason"]
    )
    # The same parameters as the first promotion: its model and config, reused by name.
    assert result["EndpointConfigName"] == first["EndpointConfigName"] == serving(emu)
    assert result["ModelName"] == first["ModelName"]
    counts = emu.request_counts()
    assert counts.get("CreateModel", 0) == 0 and counts.get("CreateEndpointConfig", 0) == 0
    assert counts["UpdateEndpoint"] == 1
    # Rolled back already: version 1 serves, and nothing older is Approved.
    with pytest.raises(AutopilotJobFailed, match="no Approved version is older. Name the version"):
        rollback(model_package_group_name=GROUP)


def test_rollback_to_a_named_version_and_what_it_refuses(emu, candidates):
    first_arn = register_and_approve(emu, candidates[0], "smoke-job-a")
    first = deploy(candidates[0])
    deploy(candidates[1])
    result, _ = rollback(model_package_arn=first_arn)
    assert result["EndpointConfigName"] == first["EndpointConfigName"] == serving(emu)
    with pytest.raises(AutopilotJobFailed, match="endpoint 'gone' does not exist; nothing to roll back"):
        rollback(model_package_arn=first_arn, endpoint_name="gone")
    emu.reset_request_counts()
    with pytest.raises(PromotionInputError, match="give exactly one"):
        rollback(model_package_arn=first_arn, model_package_group_name=GROUP)
    with pytest.raises(PromotionInputError, match="initial_instance_count"):
        rollback(model_package_group_name=GROUP, initial_instance_count=0)
    assert emu.request_counts() == {}


def test_the_restore_waits_deferred_and_fails_the_task_when_it_resumes(emu, candidates):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_autopilot.triggers import AutopilotEndpointTrigger

    old = deploy(candidates[0])
    emu.fail_invocations(new_models_only=True)
    new = deploy(candidates[1])
    ti = PullingTI()
    operator = AutopilotEndpointSmokeTestOperator(
        **{**SMOKE, "deferrable": True, "previous_endpoint_config_name": old["EndpointConfigName"]},
        deployment=new,
    )
    hook = operator.model_hook
    update, describe = hook.update_endpoint_config, hook.describe_endpoint_or_none
    updates = []

    def update_endpoint_config(endpoint_name, config_name, **kwargs):
        updates.append(config_name)
        update(endpoint_name, config_name, **kwargs)

    def describe_endpoint_or_none(name):
        # Once the restore is requested, the endpoint is Updating (as SageMaker's is for a while).
        found = describe(name)
        return {**found, "EndpointStatus": "Updating"} if updates and found else found

    hook.update_endpoint_config = update_endpoint_config
    hook.describe_endpoint_or_none = describe_endpoint_or_none
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute({"ti": ti})
    assert updates == [old["EndpointConfigName"]]
    trigger = deferred.value.trigger
    assert isinstance(trigger, AutopilotEndpointTrigger) and trigger.config_name == old["EndpointConfigName"]
    success = {"status": "success", "endpoint": {"EndpointConfigName": old["EndpointConfigName"]}}
    with pytest.raises(AutopilotJobFailed, match=f"Restored endpoint {ENDPOINT} to its previous config"):
        operator.execute_complete({"ti": ti}, success, **deferred.value.kwargs)
    # Resumed with the event alone (as dag.test() does): the message comes from the XCom.
    with pytest.raises(AutopilotJobFailed, match=r"3 of 3 rows failed"):
        operator.execute_complete({"ti": ti}, success)
    with pytest.raises(AutopilotJobFailed, match="did not end InService"):
        operator.execute_complete(
            {"ti": ti}, {"status": "failure", "message": "boom"}, **deferred.value.kwargs
        )

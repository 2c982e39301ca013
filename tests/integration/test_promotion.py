"""
Promotion against the in-process emulator with real boto3 (the operators' ``execute`` called
directly): the gate against the registry's champion, Model Registry registration, endpoint deployment.
"""

from __future__ import annotations

import json
import threading

import pytest

from airflow_autopilot.core.promotion import INFERENCE_OUTPUT_ENV, PromotionInputError
from airflow_autopilot.exceptions import AutopilotError, AutopilotJobFailed
from airflow_autopilot.operators.promotion import (
    DECISION_XCOM_KEY,
    AutopilotDeployCandidateOperator,
    AutopilotPromotionBranchOperator,
    AutopilotRegisterCandidateOperator,
)
from tests.conftest import ROLE_ARN
from tests.helpers import RecordingTI, candidate, endpoint_backend

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")

GROUP = "churn-models"


# --- against the emulator ------------------------------------------------------------------------
@pytest.fixture
def emu(autopilot_emulator):
    autopilot_emulator.configure(stage_seconds=0.01)
    return autopilot_emulator


@pytest.fixture
def best_candidate(emu, make_job):
    make_job("promo-job")
    emu.advance(60)
    return json.loads(
        json.dumps(
            emu.client("sagemaker").describe_auto_ml_job(AutoMLJobName="promo-job")["BestCandidate"],
            default=str,
        )
    )


REGISTER = dict(task_id="register", job_name="promo-job", model_package_group_name=GROUP, aws_conn_id=None)
DEPLOY = dict(
    task_id="deploy",
    endpoint_name="churn-endpoint",
    role_arn=ROLE_ARN,
    aws_conn_id=None,
    poll_interval=0.05,
    max_wait_seconds=10,
    deferrable=False,
)


def register(best, **kwargs):
    return AutopilotRegisterCandidateOperator(**{**REGISTER, "best_candidate": best, **kwargs}).execute({})


def test_register_creates_group_stores_metric_and_is_retry_safe(emu, best_candidate):
    sm = emu.client("sagemaker")
    first = register(best_candidate)
    assert set(first) == {"ModelPackageArn", "ModelPackageVersion"} and first["ModelPackageVersion"] == 1
    package = sm.describe_model_package(ModelPackageName=first["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"  # always sent (moto leaves it empty)
    meta = package["CustomerMetadataProperties"]
    metric = best_candidate["FinalAutoMLJobObjectiveMetric"]
    assert meta["autopilot:job-name"] == "promo-job"
    assert meta["autopilot:candidate-name"] == best_candidate["CandidateName"]
    assert meta["autopilot:objective-metric"] == metric["MetricName"]
    assert float(meta["autopilot:objective-value"]) == metric["Value"]
    assert meta["autopilot:objective-type"] == metric["Type"]
    containers = package["InferenceSpecification"]["Containers"]
    assert [(c["Image"], c["ModelDataUrl"]) for c in containers] == [
        (c["Image"], c["ModelDataUrl"]) for c in best_candidate["InferenceContainers"]
    ]
    assert containers[0]["Environment"] == best_candidate["InferenceContainers"][0]["Environment"]

    # A retry (same job and candidate) returns the same version and creates nothing.
    assert register(best_candidate) == first
    versions = sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]
    assert len(versions) == 1
    # Another candidate is a new version.
    other = dict(best_candidate, CandidateName="promo-job-other")
    assert register(other)["ModelPackageVersion"] == 2


def test_register_validates_before_any_call(emu, best_candidate):
    with pytest.raises(PromotionInputError, match="approval_status"):
        register(best_candidate, approval_status="Maybe")
    with pytest.raises(AutopilotError, match="job_name: 'bad_name' must match"):
        register(best_candidate, job_name="bad_name")
    assert emu.request_counts().get("CreateModelPackageGroup", 0) == 0


def test_gate_compares_with_the_approved_champion(emu, best_candidate):
    value = best_candidate["FinalAutoMLJobObjectiveMetric"]["Value"]
    champion = dict(
        best_candidate,
        CandidateName="champion",
        FinalAutoMLJobObjectiveMetric=dict(
            best_candidate["FinalAutoMLJobObjectiveMetric"], Value=value - 0.01
        ),
    )
    register(champion, approval_status="Approved")
    register(
        dict(
            champion,
            CandidateName="pending",
            FinalAutoMLJobObjectiveMetric={"MetricName": "F1", "Value": 0.99},
        )
    )

    def gate(min_improvement):
        ti = RecordingTI()
        branch = AutopilotPromotionBranchOperator(
            task_id="gate",
            best_candidate=json.dumps(best_candidate),
            threshold=0.1,
            model_package_group_name=GROUP,
            min_improvement=min_improvement,
            promote_task_ids=["register", "notify"],
            reject_task_ids="reject",
            aws_conn_id=None,
        ).choose_branch({"ti": ti})
        return branch, ti.pushed[DECISION_XCOM_KEY]

    branch, decision = gate(0.005)
    assert branch == ["register", "notify"]
    # The champion is the newest *Approved* version, not the newer pending one.
    assert decision["champion_value"] == pytest.approx(value - 0.01)
    assert decision["champion_arn"].endswith(f"{GROUP}/1")
    branch, decision = gate(0.02)
    assert branch == ["reject"] and not decision["promote"]
    assert "needs > 0 and >= 0.02" in decision["reason"]


def test_gate_without_group_or_champion(emu, best_candidate):
    ti = RecordingTI()
    branch = AutopilotPromotionBranchOperator(
        task_id="gate",
        best_candidate=best_candidate,
        threshold="2",  # F1 cannot reach 2
        model_package_group_name="no-such-group",
        promote_task_ids="p",
        reject_task_ids="r",
        aws_conn_id=None,
    ).choose_branch({"ti": ti})
    assert branch == ["r"]
    assert ti.pushed[DECISION_XCOM_KEY]["champion_arn"] is None
    assert "misses the threshold" in ti.pushed[DECISION_XCOM_KEY]["reason"]


def deployer(best, **kwargs):
    return AutopilotDeployCandidateOperator(**{**DEPLOY, "best_candidate": best, **kwargs})


def test_deploy_creates_then_reuses_then_updates(emu, best_candidate):
    sm = emu.client("sagemaker")
    first = deployer(best_candidate).execute({})
    assert set(first) == {"EndpointName", "EndpointArn", "ModelName", "EndpointConfigName"}
    assert len(first["ModelName"]) <= 63 and len(first["EndpointConfigName"]) <= 63
    model = sm.describe_model(ModelName=first["ModelName"])
    assert [c["Image"] for c in model["Containers"]] == [
        c["Image"] for c in best_candidate["InferenceContainers"]
    ]
    endpoint = sm.describe_endpoint(EndpointName="churn-endpoint")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == first["EndpointConfigName"]
    config = sm.describe_endpoint_config(EndpointConfigName=first["EndpointConfigName"])
    assert config["ProductionVariants"][0]["InstanceType"] == "ml.m5.large"

    # Retry: same names, nothing created or updated.
    counts = emu.request_counts()
    assert deployer(best_candidate).execute({}) == first
    after = emu.request_counts()
    for op in ("CreateModel", "CreateEndpointConfig", "CreateEndpoint", "UpdateEndpoint"):
        assert after.get(op, 0) == counts.get(op, 0), op

    # Asking for probabilities is another model and config: the endpoint is updated in place.
    second = deployer(best_candidate, inference_response_keys="predicted_label,probability").execute({})
    assert second["ModelName"] != first["ModelName"]
    assert emu.request_counts().get("UpdateEndpoint") == 1
    endpoint = sm.describe_endpoint(EndpointName="churn-endpoint")
    assert endpoint["EndpointConfigName"] == second["EndpointConfigName"]
    containers = sm.describe_model(ModelName=second["ModelName"])["Containers"]
    supported = [c for c in containers if "SAGEMAKER_INFERENCE_SUPPORTED" in c.get("Environment", {})]
    assert supported and all(
        c["Environment"][INFERENCE_OUTPUT_ENV] == "predicted_label,probability" for c in supported
    )


def test_deploy_failed_endpoint_fails_with_its_reason(emu, best_candidate):
    first = deployer(best_candidate).execute({})
    ep = endpoint_backend(first["EndpointName"])
    ep.endpoint_status, ep.failure_reason = (
        "Failed",
        "The primary container did not pass the ping health check.",
    )
    with pytest.raises(AutopilotJobFailed, match="did not pass the ping health check"):
        deployer(best_candidate).execute({})
    # A different config cannot be rolled onto a Failed endpoint: say so.
    with pytest.raises(AutopilotJobFailed, match="Delete it or choose another endpoint_name"):
        deployer(best_candidate, inference_response_keys=["probability"]).execute({})


def test_deploy_waits_for_a_creating_endpoint(emu, best_candidate):
    first = deployer(best_candidate).execute({})
    ep = endpoint_backend(first["EndpointName"])
    ep.endpoint_status = "Creating"
    timer = threading.Timer(0.3, lambda: setattr(ep, "endpoint_status", "InService"))
    timer.start()
    try:
        assert deployer(best_candidate).execute({}) == first
    finally:
        timer.cancel()
    assert emu.request_counts()["DescribeEndpoint"] >= 4  # polled while Creating


def test_deploy_defers_and_resumes(emu, best_candidate):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from airflow_autopilot.triggers import AutopilotEndpointTrigger

    first = deployer(best_candidate).execute({})
    endpoint_backend(first["EndpointName"]).endpoint_status = "Creating"
    op = deployer(best_candidate, deferrable=True, poll_interval=5)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, AutopilotEndpointTrigger) and trigger.endpoint_name == "churn-endpoint"
    assert trigger.config_name == first["EndpointConfigName"]  # InService on an old config is not done
    assert deferred.value.kwargs == {"result": first}
    assert (
        op.execute_complete(
            {}, {"status": "success", "endpoint_name": "churn-endpoint"}, **deferred.value.kwargs
        )
        == first
    )
    with pytest.raises(AutopilotJobFailed, match="image not found"):
        op.execute_complete({}, {"status": "failure", "message": "image not found"}, **deferred.value.kwargs)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"endpoint_name": "bad_name"}, "endpoint_name"),
        ({"role_arn": "not-a-role"}, "role_arn"),
        ({"initial_instance_count": 0}, "initial_instance_count"),
        ({"instance_type": "m5.large"}, "instance_type"),
        (
            {
                "best_candidate": {
                    "CandidateName": "c",
                    "FinalAutoMLJobObjectiveMetric": {"MetricName": "F1", "Value": 1},
                }
            },
            "best_candidate.InferenceContainers",
        ),
    ],
)
def test_deploy_validates_before_any_call(emu, kwargs, field):
    with pytest.raises(PromotionInputError, match=field):
        deployer(candidate(), **kwargs).execute({})
    assert emu.request_counts().get("CreateModel", 0) == 0

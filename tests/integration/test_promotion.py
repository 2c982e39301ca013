"""
Promotion: the gate's decision, Model Registry registration and endpoint deployment, against the
in-process emulator with real boto3 (the operators' ``execute`` called directly).
"""

from __future__ import annotations

import json
import threading

import pytest

from airflow_autopilot.core.promotion import (
    INFERENCE_OUTPUT_ENV,
    CandidateScore,
    Champion,
    PromotionInputError,
    decide_promotion,
    inference_containers,
    parse_mapping,
    safe_resource_name,
    with_response_keys,
)
from airflow_autopilot.exceptions import AutopilotError, AutopilotJobFailed
from airflow_autopilot.operators.promotion import (
    DECISION_XCOM_KEY,
    AutopilotDeployCandidateOperator,
    AutopilotPromotionBranchOperator,
    AutopilotRegisterCandidateOperator,
)

ROLE = "arn:aws:iam::123456789012:role/SageMakerAutopilot"
GROUP = "churn-models"


def candidate(name="cand-1", value=0.8, metric="F1", kind="Maximize", containers=None):
    metric_block = {"MetricName": metric, "Value": value}
    if kind is not None:
        metric_block["Type"] = kind
    return {
        "CandidateName": name,
        "FinalAutoMLJobObjectiveMetric": metric_block,
        "InferenceContainers": containers
        or [
            {
                "Image": "img/processing",
                "ModelDataUrl": "s3://b/m1.tar.gz",
                "Environment": {
                    "SAGEMAKER_INFERENCE_SUPPORTED": "predicted_label,probability,probabilities",
                    "SAGEMAKER_INFERENCE_OUTPUT": "predicted_label",
                },
            },
            {"Image": "img/algo", "ModelDataUrl": "s3://b/m2.tar.gz", "Environment": {}},
        ],
    }


class FakeTI:
    """Collects xcom_push calls (the branch operator's decision)."""

    def __init__(self):
        self.pushed = {}

    def xcom_push(self, key, value):
        self.pushed[key] = value


# --- input parsing -------------------------------------------------------------------------------
def test_best_candidate_accepted_as_dict_json_or_jinja_repr():
    best = candidate()
    assert parse_mapping(best, "best_candidate") == best
    assert parse_mapping(json.dumps(best), "best_candidate") == best
    assert parse_mapping(repr(best), "best_candidate") == best  # Jinja without native rendering


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (None, "best_candidate: missing"),
        ("", "best_candidate: missing"),
        ("None", "best_candidate: missing"),
        ("{not json", "best_candidate: not a dict"),
        ([1, 2], "best_candidate: expected a dict"),
        ({"FinalAutoMLJobObjectiveMetric": {"MetricName": "F1", "Value": 1}}, "best_candidate.CandidateName"),
        ({"CandidateName": "c"}, "best_candidate.FinalAutoMLJobObjectiveMetric: missing"),
        (
            {"CandidateName": "c", "FinalAutoMLJobObjectiveMetric": {"Value": 0.5}},
            "best_candidate.FinalAutoMLJobObjectiveMetric.MetricName",
        ),
        (
            {"CandidateName": "c", "FinalAutoMLJobObjectiveMetric": {"MetricName": "F1"}},
            "best_candidate.FinalAutoMLJobObjectiveMetric.Value",
        ),
        (
            {"CandidateName": "c", "FinalAutoMLJobObjectiveMetric": {"MetricName": "F1", "Value": "high"}},
            "best_candidate.FinalAutoMLJobObjectiveMetric.Value",
        ),
        (
            {
                "CandidateName": "c",
                "FinalAutoMLJobObjectiveMetric": {"MetricName": "F1", "Value": 1, "Type": "Up"},
            },
            "best_candidate.FinalAutoMLJobObjectiveMetric.Type",
        ),
    ],
)
def test_malformed_best_candidate_fails_naming_the_field(value, field):
    gate = AutopilotPromotionBranchOperator(
        task_id="gate", best_candidate=value, threshold=0.5, promote_task_ids="a", reject_task_ids="b"
    )
    with pytest.raises(PromotionInputError) as err:
        gate.choose_branch({"ti": FakeTI()})  # fails before any AWS call (no emulator running)
    assert field in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"threshold": "abc"}, "threshold"),
        ({"min_improvement": -0.1}, "min_improvement"),
        ({"promote_task_ids": []}, "promote_task_ids"),
        ({"reject_task_ids": "promote"}, "must not share"),
        ({"model_package_group_name": "bad_name!"}, "model_package_group_name"),
    ],
)
def test_gate_parameters_validated(kwargs, field):
    params = dict(
        best_candidate=candidate(), threshold=0.5, promote_task_ids="promote", reject_task_ids="reject"
    )
    params.update(kwargs)
    with pytest.raises(PromotionInputError, match=field):
        AutopilotPromotionBranchOperator(task_id="gate", **params).choose_branch({"ti": FakeTI()})


# --- the decision --------------------------------------------------------------------------------
def test_threshold_honours_maximize_and_minimize():
    f1 = CandidateScore.from_best_candidate(candidate(value=0.7))
    assert decide_promotion(f1, threshold=0.7).promote
    assert not decide_promotion(f1, threshold=0.71).promote
    mse = CandidateScore.from_best_candidate(candidate(metric="MSE", value=2.0, kind="Minimize"))
    assert decide_promotion(mse, threshold=2.5).promote
    assert not decide_promotion(mse, threshold=1.5).promote
    # Without Type, the direction comes from the metric name.
    rmse = CandidateScore.from_best_candidate(candidate(metric="RMSE", value=2.0, kind=None))
    assert rmse.direction == "Minimize"
    assert decide_promotion(rmse, threshold=3).promote


def test_champion_comparison_with_min_improvement():
    champion = Champion("arn:champ", "F1", 0.80, "old")
    better = CandidateScore.from_best_candidate(candidate(value=0.83))
    assert decide_promotion(better, threshold=0.5, champion=champion, min_improvement=0.02).promote
    decision = decide_promotion(better, threshold=0.5, champion=champion, min_improvement=0.05)
    assert not decision.promote
    assert "improvement +0.03" in decision.reason
    same = CandidateScore.from_best_candidate(candidate(value=0.80))
    assert not decide_promotion(same, threshold=None, champion=champion).promote  # equal is no gain
    mse_champion = Champion("arn:champ", "MSE", 4.0)
    mse = CandidateScore.from_best_candidate(candidate(metric="MSE", value=3.0, kind="Minimize"))
    assert decide_promotion(mse, threshold=None, champion=mse_champion, min_improvement=0.5).promote
    assert not decide_promotion(mse, threshold=None, champion=mse_champion, min_improvement=1.5).promote
    with pytest.raises(AutopilotError, match="measured with MSE"):
        decide_promotion(better, threshold=None, champion=mse_champion)


# --- containers and names ------------------------------------------------------------------------
def test_response_keys_set_where_supported_and_validated():
    containers = inference_containers(candidate())
    out = with_response_keys(containers, ["predicted_label", "probability"])
    assert out[0]["Environment"][INFERENCE_OUTPUT_ENV] == "predicted_label,probability"
    assert INFERENCE_OUTPUT_ENV not in out[1].get("Environment", {})
    assert containers[0]["Environment"][INFERENCE_OUTPUT_ENV] == "predicted_label"  # input untouched
    with pytest.raises(PromotionInputError, match="inference_response_keys.*'labels'"):
        with_response_keys(containers, ["labels"])


def test_safe_names_are_short_valid_and_stable():
    long_name = "a" * 40 + "-b_c.d" + "x" * 30  # 76 characters, with characters SageMaker refuses
    name = safe_resource_name(long_name, ["containers"])
    assert len(name) <= 63 and name == safe_resource_name(long_name, ["containers"])
    assert name != safe_resource_name(long_name, ["other containers"])
    assert all(c.isalnum() or c == "-" for c in name) and name[0].isalnum() and name[-1].isalnum()


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


def register(best, **kwargs):
    params = dict(
        task_id="register",
        best_candidate=best,
        job_name="promo-job",
        model_package_group_name=GROUP,
        aws_conn_id=None,
    )
    params.update(kwargs)
    return AutopilotRegisterCandidateOperator(**params).execute({})


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
        ti = FakeTI()
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
    ti = FakeTI()
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
    params = dict(
        task_id="deploy",
        best_candidate=best,
        endpoint_name="churn-endpoint",
        role_arn=ROLE,
        aws_conn_id=None,
        poll_interval=0.05,
        max_wait_seconds=10,
        deferrable=False,
    )
    params.update(kwargs)
    return AutopilotDeployCandidateOperator(**params)


def endpoint_backend(name):
    from moto.sagemaker.models import sagemaker_backends

    return sagemaker_backends["123456789012"]["us-east-1"].endpoints[name]


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
    from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
    from airflow.sdk.exceptions import TaskDeferred

    first = deployer(best_candidate).execute({})
    endpoint_backend(first["EndpointName"]).endpoint_status = "Creating"
    op = deployer(best_candidate, deferrable=True, poll_interval=5)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({})
    trigger = deferred.value.trigger
    assert isinstance(trigger, SageMakerTrigger) and trigger.job_name == "churn-endpoint"
    assert deferred.value.kwargs == {"result": first}
    assert (
        op.execute_complete({}, {"status": "success", "job_name": "churn-endpoint"}, **deferred.value.kwargs)
        == first
    )
    with pytest.raises(AutopilotJobFailed, match="image not found"):
        op.execute_complete({}, {"status": "failed", "message": "image not found"}, **deferred.value.kwargs)


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

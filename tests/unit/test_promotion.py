"""Promotion without AWS: parsing the best candidate, the gate's inputs and decision, containers, names."""

from __future__ import annotations

import json

import pytest

from airflow_autopilot.core.promotion import (
    INFERENCE_OUTPUT_ENV,
    CandidateScore,
    Champion,
    PromotionInputError,
    decide_promotion,
    endpoint_action,
    endpoint_verdict,
    inference_containers,
    parse_mapping,
    registered_for,
    registration_token,
    safe_resource_name,
    with_response_keys,
)
from airflow_autopilot.exceptions import AutopilotError
from airflow_autopilot.operators.promotion import AutopilotPromotionBranchOperator
from tests.helpers import RecordingTI, candidate


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
        gate.choose_branch({"ti": RecordingTI()})  # fails before any AWS call (no emulator running)
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
        AutopilotPromotionBranchOperator(task_id="gate", **params).choose_branch({"ti": RecordingTI()})


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


# --- endpoints: the wait's verdict and the deploy's action ------------------------------------------
def described(status, config="cfg-a", **extra):
    return {"EndpointName": "ep", "EndpointStatus": status, "EndpointConfigName": config, **extra}


ROLLED_BACK = described("InService", "cfg-a", FailureReason="container failed the ping health check")


@pytest.mark.parametrize(
    ("endpoint", "config", "verdict"),
    [
        (described("InService", "cfg-b"), "cfg-b", "success"),
        (described("InService", "cfg-a"), None, "success"),
        (ROLLED_BACK, None, "success"),  # no config asked for: any InService endpoint will do
        (described("InService", "cfg-a"), "cfg-b", "waiting"),  # the update has not started yet
        (described("Updating", "cfg-a"), "cfg-b", "waiting"),
        (described("RollingBack", "cfg-a"), "cfg-b", "waiting"),
        (ROLLED_BACK, "cfg-b", "failure"),  # rolled back: it will never serve cfg-b by itself
        (described("Failed", "cfg-b", FailureReason="x"), "cfg-b", "failure"),
        (described("OutOfService", "cfg-b"), "cfg-b", "failure"),
    ],
)
def test_endpoint_verdict(endpoint, config, verdict):
    assert endpoint_verdict(endpoint, config) == verdict


def test_a_rolled_back_update_fails_the_wait_with_its_reason():
    import logging

    from airflow_autopilot.core.waits.endpoint import EndpointWait

    wait = EndpointWait("ep", "cfg-b", poll_interval=1, log=logging.getLogger("test"))
    step = wait.on_result(ROLLED_BACK)
    assert step.status == "failure"
    assert step.message == (
        "Endpoint 'ep': the update to 'cfg-b' was rolled back; it is InService on its previous config "
        "'cfg-a': container failed the ping health check"
    )


@pytest.mark.parametrize(
    ("endpoint", "action"),
    [
        (None, "create"),
        (described("InService", "cfg-b"), "reuse"),
        (described("Creating", "cfg-b"), "reuse"),  # ours, still coming up: the wait follows it
        (described("Failed", "cfg-b", FailureReason="x"), "reuse"),  # the wait reports its reason
        (described("Updating", "cfg-a", PendingDeploymentSummary={"EndpointConfigName": "cfg-b"}), "reuse"),
        (described("Updating", "cfg-a", PendingDeploymentSummary={"EndpointConfigName": "cfg-c"}), "settle"),
        (described("Updating", "cfg-a"), "settle"),  # whose update, unknown: wait, then decide again
        (described("SystemUpdating", "cfg-a"), "settle"),
        (described("Failed", "cfg-a"), "refuse"),
        (described("InService", "cfg-a"), "update"),
        (ROLLED_BACK, "update"),  # a new try after a rollback tries again
    ],
)
def test_endpoint_action(endpoint, action):
    assert endpoint_action(endpoint, "cfg-b") == action


def test_registration_token_and_own_versions():
    token = registration_token("job", "cand", "group")
    assert len(token) == 32 and token == registration_token("job", "cand", "group")
    assert (
        len({token, registration_token("job2", "cand", "group"), registration_token("job", "cand", "g2")})
        == 3
    )
    package = {"CustomerMetadataProperties": {"autopilot:candidate-name": "cand"}}
    assert registered_for(package, "cand") and not registered_for(package, "other")
    assert not registered_for({}, "cand")


def test_champion_without_metric_names_the_parameter_that_skips_it():
    with pytest.raises(AutopilotError) as raised:
        Champion.from_package({"ModelPackageArn": "arn:pkg/1", "CustomerMetadataProperties": {}})
    message = str(raised.value)
    assert "compare_with_champion" not in message  # no such parameter
    assert "model_package_group_name unset (None)" in message


@pytest.mark.parametrize(("metric", "kind"), [("F1", "Minimize"), ("AUC", "Minimize"), ("MSE", "Maximize")])
def test_an_objective_type_contradicting_its_metric_is_refused(metric, kind):
    with pytest.raises(PromotionInputError, match=f"contradicts the metric: Autopilot's {metric} is always"):
        CandidateScore.from_best_candidate(candidate(metric=metric, kind=kind))


def test_a_custom_metric_keeps_its_declared_type():
    score = CandidateScore.from_best_candidate(candidate(metric="MyLoss", kind="Minimize", value=0.1))
    assert score.direction == "Minimize"

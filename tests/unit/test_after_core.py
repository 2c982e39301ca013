"""The Airflow-free parts of issue 15: gate conditions, the transform request and the resource waits."""

from __future__ import annotations

import logging

import pytest

from airflow_autopilot.core.gates import (
    Comparison,
    combine,
    parse_metric_conditions,
    parse_path,
    parse_report_conditions,
    value_at,
)
from airflow_autopilot.core.promotion import CandidateScore, PromotionInputError, decide_promotion
from airflow_autopilot.core.waits.approval import ApprovalWait
from airflow_autopilot.core.waits.resource import resource_wait
from airflow_autopilot.core.waits.transform import TransformJobWait
from airflow_autopilot.exceptions import AutopilotError, AutopilotJobFailed
from airflow_autopilot.operators.base import resolve_resource_event
from airflow_autopilot.triggers import AutopilotResourceTrigger

LOG = logging.getLogger(__name__)


@pytest.mark.parametrize(
    ("text", "value", "holds"),
    [
        (">= 0.8", 0.8, True),
        ("> 0.8", 0.8, False),
        ("<= 0.4", 0.41, False),
        ("== 1", 1.0, True),
        ("!=2e-1", 0.2, False),
    ],
)
def test_comparisons(text, value, holds):
    assert Comparison.parse(text, "f").holds(value) is holds


def test_paths_and_values():
    doc = {"a": {"b": [{"c": 0.5}, {"c": True}]}}
    assert parse_path("$.a.b[0].c", "p") == ["a", "b", 0, "c"]
    assert value_at(doc, "a.b[0].c") == 0.5
    assert value_at(doc, "a.b[1].c") is None  # a boolean is no number
    assert value_at(doc, "a.b[5].c") is None
    for bad in ("", "$", "a..b", "a[x]", None):
        with pytest.raises(PromotionInputError, match="p:"):
            parse_path(bad, "p")


def test_condition_parsing_accepts_rendered_text():
    assert [c.metric for c in parse_metric_conditions('{"F1": ">= 0.8", "LogLoss": "<= 0.4"}')] == [
        "F1",
        "LogLoss",
    ]
    assert parse_metric_conditions(None) == [] and parse_report_conditions("None") == []
    (one,) = parse_report_conditions('[{"report": "Explainability", "path": "x.y", "condition": "> 0"}]')
    assert one.file == "analysis.json"


def test_combine_lists_every_condition_and_rejects_on_any_failure():
    score = CandidateScore("c1", "F1", 0.9, "Maximize")
    candidate = {
        "CandidateProperties": {
            "CandidateMetrics": [{"MetricName": "Recall", "Value": 0.5, "Set": "Validation"}]
        }
    }
    from airflow_autopilot.core.gates import check_metric

    (recall,) = parse_metric_conditions({"Recall": ">= 0.7"})
    decision = combine(decide_promotion(score, threshold=0.8), [check_metric(candidate, recall)])
    assert decision.promote is False
    assert [(r["condition"], r["passed"]) for r in decision.conditions] == [
        ("threshold F1", True),
        ("metric Recall (Validation)", False),
    ]
    assert "metric Recall (Validation) 0.5 fails >= 0.7" in decision.reason


def test_waits_decide_on_status():
    t = TransformJobWait("t", poll_interval=1, timeout=10, log=LOG)
    assert [
        t.verdict({"TransformJobStatus": s}) for s in ("InProgress", "Completed", "Failed", "Stopped")
    ] == [
        "waiting",
        "success",
        "failure",
        "failure",
    ]
    a = ApprovalWait("arn", poll_interval=1, timeout=10, log=LOG)
    assert [
        a.verdict({"ModelApprovalStatus": s}) for s in ("PendingManualApproval", "Approved", "Rejected")
    ] == [
        "waiting",
        "success",
        "failure",
    ]
    assert "Rejected: bias" in a.failure_message(
        {"ModelApprovalStatus": "Rejected", "ApprovalDescription": "bias"}
    )
    with pytest.raises(ValueError, match="kind"):
        resource_wait("endpoint", "x", poll_interval=1, log=LOG)


def test_resource_events_resolve():
    assert resolve_resource_event({"status": "success", "description": {"A": 1}}) == {"A": 1}
    with pytest.raises(AutopilotJobFailed, match="Failed: bad"):
        resolve_resource_event({"status": "failure", "message": "Failed: bad"})
    with pytest.raises(AutopilotError, match="Timed out"):
        resolve_resource_event({"status": "timeout", "message": "Timed out"})


def test_resource_trigger_serialize_round_trips_through_airflows_encoding():
    from airflow.models.trigger import Trigger
    from airflow.providers.common.compat.module_loading import import_string

    trigger = AutopilotResourceTrigger(
        "transform-job",
        "score-1",
        aws_conn_id="my_aws",
        poll_interval=15,
        timeout_at="2030-01-01T00:00:00+00:00",
    )
    classpath, kwargs = trigger.serialize()
    row = Trigger(classpath=classpath, kwargs=kwargs)
    rebuilt = import_string(classpath)(**row.kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert (rebuilt.kind, rebuilt.name) == ("transform-job", "score-1")


@pytest.mark.parametrize(
    ("problem", "section", "key", "metric"),
    [
        ("BinaryClassification", "binary_classification_metrics", "log_loss", "LogLoss"),
        ("MulticlassClassification", "multiclass_classification_metrics", "f1_macro", "F1macro"),
        ("Regression", "regression_metrics", "rmse", "RMSE"),
    ],
)
def test_emulator_reports_repeat_the_validation_metrics_for_every_problem_type(problem, section, key, metric):
    from airflow_autopilot.emulator.candidates import CandidateContext, candidate_metrics, plan_candidates
    from airflow_autopilot.emulator.reports import model_insights

    ctx = CandidateContext("j", "123456789012", "us-east-1", "aws", "s3://b/o", problem, metric, "ENSEMBLING")
    (plan,) = plan_candidates("j", 1, ["xgboost"], metric, 0, 1)
    metrics = candidate_metrics(ctx, plan)
    value = next(
        m["Value"] for m in metrics if m["StandardMetricName"] == metric and m["Set"] == "Validation"
    )
    assert model_insights(problem, metrics)[section][key]["value"] == value


def test_emulator_predictions_are_deterministic_per_candidate():
    from airflow_autopilot.emulator.transform import ModelFacts, predict

    regression = ModelFacts("c1", "Regression", ["a"], "y", low=10, high=20)
    one = predict(regression, "5")
    assert one == predict(regression, "5") and 10 <= one["predicted_label"] <= 20
    assert predict(ModelFacts("c2", "Regression", ["a"], "y", low=10, high=20), "5") != one
    multi = predict(ModelFacts("c1", "MulticlassClassification", ["a"], "y", labels=["a", "b", "c"]), "5")
    assert multi["labels"] == ["a", "b", "c"] and multi["predicted_label"] in "abc"
    assert abs(sum(multi["probabilities"]) - 1) < 1e-5

"""Gates on every metric against the in-process emulator: CandidateMetrics and report conditions."""

from __future__ import annotations

import json

import pytest

from airflow_autopilot.core.promotion import PromotionInputError
from airflow_autopilot.operators.promotion import DECISION_XCOM_KEY, AutopilotPromotionBranchOperator
from tests.helpers import RecordingTI

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")


@pytest.fixture
def emu(autopilot_emulator):
    autopilot_emulator.configure(stage_seconds=0.01)
    return autopilot_emulator


@pytest.fixture
def best(emu, make_job):
    make_job("gate-job")
    emu.advance(60)
    described = emu.client("sagemaker").describe_auto_ml_job(AutoMLJobName="gate-job")
    return json.loads(json.dumps(described["BestCandidate"], default=str))


def metric(best, name, metric_set="Validation"):
    return next(
        m["Value"]
        for m in best["CandidateProperties"]["CandidateMetrics"]
        if m["StandardMetricName"] == name and m["Set"] == metric_set
    )


def gate(best, **kwargs):
    op = AutopilotPromotionBranchOperator(
        task_id="gate",
        best_candidate=best,
        promote_task_ids="yes",
        reject_task_ids="no",
        aws_conn_id=None,
        **kwargs,
    )
    ti = RecordingTI()
    branch = op.choose_branch({"ti": ti})
    return branch, ti.pushed[DECISION_XCOM_KEY]


def test_emulator_fills_metrics_and_writes_reports_in_sagemaker_layout(emu, best):
    sets = {(m["StandardMetricName"], m["Set"]) for m in best["CandidateProperties"]["CandidateMetrics"]}
    for name in ("F1", "AUC", "Precision", "Recall", "Accuracy", "BalancedAccuracy", "LogLoss"):
        assert {(name, "Train"), (name, "Validation")} <= sets
    s3 = emu.client("s3")
    locations = best["CandidateProperties"]["CandidateArtifactLocations"]
    bucket, key = locations["ModelInsights"].removeprefix("s3://").split("/", 1)
    report = json.loads(s3.get_object(Bucket=bucket, Key=f"{key}/report.json")["Body"].read())
    assert report["binary_classification_metrics"]["recall"]["value"] == metric(best, "Recall")
    bucket, key = locations["Explainability"].removeprefix("s3://").split("/", 1)
    shap = json.loads(s3.get_object(Bucket=bucket, Key=f"{key}/analysis.json")["Body"].read())
    assert set(shap["explanations"]["kernel_shap"]["label0"]["global_shap_values"]) == {"age", "income"}


def test_three_metric_conditions_and_a_report_condition_promote_then_reject(emu, best):
    f1, recall, logloss = metric(best, "F1"), metric(best, "Recall"), metric(best, "LogLoss")
    path = "binary_classification_metrics.recall.value"
    passing = {
        "metric_conditions": {
            "F1": f">= {f1 - 0.01}",
            "Recall": f">= {recall - 0.01}",
            "LogLoss": f"<= {logloss}",
        },
        "report_conditions": [{"report": "ModelInsights", "path": path, "condition": f">= {recall}"}],
        "threshold": 0.0,
    }
    branch, decision = gate(best, **passing)
    assert branch == ["yes"] and decision["promote"] is True
    rows = {row["condition"]: row for row in decision["conditions"]}
    assert set(rows) == {
        "threshold F1",
        "metric F1 (Validation)",
        "metric Recall (Validation)",
        "metric LogLoss (Validation)",
        f"ModelInsights {path}",
    }
    assert rows[f"ModelInsights {path}"]["value"] == recall and all(r["passed"] for r in rows.values())
    json.dumps(decision)  # JSON-safe

    failing = dict(
        passing, report_conditions=[{"report": "ModelInsights", "path": path, "condition": f"> {recall}"}]
    )
    branch, decision = gate(best, **failing)
    assert branch == ["no"] and decision["promote"] is False
    assert f"ModelInsights {path} {recall} fails > {recall:g}" in decision["reason"]

    branch, decision = gate(best, metric_conditions={"LogLoss": f"< {logloss}"})
    assert branch == ["no"] and "metric LogLoss (Validation)" in decision["reason"]


def test_missing_report_value_fails_its_condition(emu, best):
    branch, decision = gate(
        best,
        report_conditions=[{"report": "Explainability", "path": "$.explanations.nope", "condition": ">= 0"}],
    )
    assert branch == ["no"]
    assert (
        decision["conditions"][-1]["value"] is None
        and "no number at this path" in decision["conditions"][-1]["detail"]
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"metric_conditions": {"F2": ">= 0.8"}}, "metric_conditions['F2']: unknown metric"),
        (
            {"metric_conditions": {"F1": "at least 0.8"}},
            "metric_conditions['F1']: 'at least 0.8' must be an operator",
        ),
        ({"metric_conditions": {"F1": ">= 0.8"}, "metric_set": "Holdout"}, "metric_set: 'Holdout'"),
        (
            {"report_conditions": [{"report": "Insights", "path": "a", "condition": ">= 1"}]},
            "report_conditions[0].report",
        ),
        (
            {"report_conditions": [{"report": "ModelInsights", "path": "a..b", "condition": ">= 1"}]},
            "report_conditions[0].path",
        ),
        (
            {"report_conditions": [{"report": "ModelInsights", "path": "a", "condition": "1"}]},
            "report_conditions[0].condition",
        ),
        (
            {"report_conditions": [{"report": "ModelInsights", "paths": "a", "condition": ">= 1"}]},
            "unknown key(s) ['paths']",
        ),
    ],
)
def test_bad_conditions_are_refused_before_any_aws_call(emu, best, kwargs, message):
    emu.reset_request_counts()
    with pytest.raises(PromotionInputError) as err:
        gate(best, model_package_group_name="some-group", **kwargs)
    assert message in str(err.value)
    assert emu.request_counts() == {}

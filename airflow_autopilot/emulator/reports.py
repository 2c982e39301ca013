"""The model-insights and explainability reports an emulated candidate leaves in S3, so promotion
gates over report values have something real to read."""

from __future__ import annotations

import json
from typing import Any

from airflow_autopilot.emulator import data
from airflow_autopilot.emulator.candidates import seeded_unit

#: The model-insights report's metric section per problem type and, in it, the metric keys with the
#: CandidateMetrics name each one repeats (the same value, so gates on either agree).
INSIGHT_SECTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "BinaryClassification": (
        "binary_classification_metrics",
        {
            "f1": "F1",
            "auc": "AUC",
            "precision": "Precision",
            "recall": "Recall",
            "accuracy": "Accuracy",
            "balanced_accuracy": "BalancedAccuracy",
            "log_loss": "LogLoss",
        },
    ),
    "MulticlassClassification": (
        "multiclass_classification_metrics",
        {
            "accuracy": "Accuracy",
            "f1_macro": "F1macro",
            "precision_macro": "PrecisionMacro",
            "recall_macro": "RecallMacro",
            "balanced_accuracy": "BalancedAccuracy",
            "log_loss": "LogLoss",
        },
    ),
    "Regression": ("regression_metrics", {"mse": "MSE", "rmse": "RMSE", "mae": "MAE", "r2": "R2"}),
}


def training_features(channel: dict[str, Any], target: str, account_id: str, region: str) -> list[str]:
    """The feature columns (header without ``target``) of a job's training CSV; ``[]`` if unreadable.

    :param channel: the training channel.
    :param target: the target column.
    :param account_id: the caller's account.
    :param region: the caller's region.
    """
    uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
    try:
        for table in data.csv_objects(channel, data.input_objects(uri, account_id, region)):
            return [h for h in table.header if h != target]
    except Exception:  # noqa: BLE001 - a report without features is still a report
        return []
    return []


def model_insights(problem_type: str, metrics: list[dict[str, Any]]) -> dict[str, Any]:
    """The model-insights report (``report.json``) from the candidate's Validation metrics."""
    values = {m["StandardMetricName"]: m["Value"] for m in metrics if m.get("Set") == "Validation"}
    # V2 problem types (forecasting, text, images, LLMs): one section of every reported metric.
    section, names = INSIGHT_SECTIONS.get(problem_type) or (
        "metrics",
        {name.lower(): name for name in values},
    )
    body = {
        key: {"value": values[name], "standard_deviation": round(values[name] * 0.01, 6)}
        for key, name in names.items()
        if name in values
    }
    return {"version": "0.0", "dataset": {"split": "validation"}, section: body}


def explainability(candidate: str, features: list[str]) -> dict[str, Any]:
    """The explainability report (``analysis.json``): global SHAP values per feature, Clarify's shape."""
    shap = {f: round(seeded_unit(candidate, "shap", f) * 0.3, 6) for f in features}
    return {
        "version": "1.0",
        "explanations": {
            "kernel_shap": {
                "label0": {
                    "global_shap_values": shap,
                    "expected_value": round(seeded_unit(candidate, "expected"), 6),
                }
            }
        },
    }


def report_objects(
    locations: dict[str, str],
    candidate: str,
    problem_type: str,
    metrics: list[dict[str, Any]],
    features: list[str],
) -> dict[str, bytes]:
    """The two report files by S3 URI."""
    return {
        f"{locations['ModelInsights']}/report.json": json.dumps(
            model_insights(problem_type, metrics)
        ).encode(),
        f"{locations['Explainability']}/analysis.json": json.dumps(
            explainability(candidate, features)
        ).encode(),
    }

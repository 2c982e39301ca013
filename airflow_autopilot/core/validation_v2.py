"""Where the CreateAutoMLJobV2 names used to live: kept so existing imports still work; the table
(:mod:`airflow_autopilot.core.fields.automl`) is the one description."""

from __future__ import annotations

from airflow_autopilot.core.fields.automl import (
    CONFIG_NAMES,
    CONTENT_TYPES_BY_CONFIG,
    CREATE_AUTOML_JOB_V2,
    FORECAST_ALGORITHMS,
    METRICS_BY_CONFIG,
    S3_DATA_TYPES_V2,
    TEXT_GENERATION_METRIC,
    allowed_metrics,
    problem_config_key,
)
from airflow_autopilot.core.validation import create_v2_request_errors, validate_create_v2_request

KNOWN_V2_REQUEST_KEYS = CREATE_AUTOML_JOB_V2.known_keys

__all__ = [
    "CONFIG_NAMES",
    "CONTENT_TYPES_BY_CONFIG",
    "FORECAST_ALGORITHMS",
    "KNOWN_V2_REQUEST_KEYS",
    "METRICS_BY_CONFIG",
    "S3_DATA_TYPES_V2",
    "TEXT_GENERATION_METRIC",
    "allowed_metrics",
    "create_v2_request_errors",
    "problem_config_key",
    "validate_create_v2_request",
]

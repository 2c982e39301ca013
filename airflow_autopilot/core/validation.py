"""The rules every task parameter shares (names, durations, empty renderings) and the create-request
checks, both driven by the request tables of :mod:`airflow_autopilot.core.fields`."""

from __future__ import annotations

import math
import re
from typing import Any

from airflow_autopilot.core.fields import common
from airflow_autopilot.core.fields.automl import (
    ALGORITHMS_BY_MODE,
    CHANNEL_TYPES,
    COMPRESSION_TYPES,
    CREATE_AUTOML_JOB,
    CREATE_AUTOML_JOB_V2,
    METRICS_BY_PROBLEM_TYPE,
    MODES,
    PROBLEM_TYPES,
    S3_DATA_TYPES_V1,
    TABULAR_CONTENT_TYPES,
    default_metric,
)
from airflow_autopilot.core.fields.spec import EMPTY_RENDERINGS, empty_rendering_error, raise_if, short

__all__ = [
    "ALGORITHMS_BY_MODE",
    "CHANNEL_TYPES",
    "COMPRESSION_TYPES",
    "CONTENT_TYPES",
    "EMPTY_RENDERINGS",
    "INSTANCE_TYPE_PATTERN",
    "JOB_NAME_MAX_LENGTH",
    "JOB_NAME_PATTERN",
    "KNOWN_REQUEST_KEYS",
    "MAX_CANDIDATES_RANGE",
    "MAX_DURATION_SECONDS",
    "MAX_TAGS",
    "METRICS_BY_PROBLEM_TYPE",
    "MODES",
    "PROBLEM_TYPES",
    "ROLE_ARN_LENGTH",
    "ROLE_ARN_PATTERN",
    "S3_DATA_TYPES_V1",
    "S3_URI_MAX_LENGTH",
    "S3_URI_PATTERN",
    "create_request_errors",
    "create_v2_request_errors",
    "default_metric",
    "empty_rendering_error",
    "job_name_errors",
    "name_errors",
    "raise_if",
    "seconds_errors",
    "validate_create_request",
    "validate_create_v2_request",
    "validate_job_name",
]

# Compiled forms of the shared patterns, for callers outside the tables (transform, promotion).
JOB_NAME_PATTERN = re.compile(common.JOB_NAME_PATTERN)
JOB_NAME_MAX_LENGTH = common.JOB_NAME_MAX_LENGTH
S3_URI_PATTERN = re.compile(common.S3_URI_PATTERN)
S3_URI_MAX_LENGTH = common.S3_URI_MAX_LENGTH
ROLE_ARN_PATTERN = re.compile(common.ROLE_ARN_PATTERN)
ROLE_ARN_LENGTH = common.ROLE_ARN_LENGTH
INSTANCE_TYPE_PATTERN = re.compile(common.INSTANCE_TYPE_PATTERN)
MAX_CANDIDATES_RANGE = common.MAX_CANDIDATES_RANGE
MAX_TAGS = common.MAX_TAGS
CONTENT_TYPES = TABULAR_CONTENT_TYPES
KNOWN_REQUEST_KEYS = CREATE_AUTOML_JOB.known_keys
_JOB_NAME = CREATE_AUTOML_JOB.by_path["AutoMLJobName"]


def name_errors(value: Any, field: str) -> list[str]:
    """
    The rules every name parameter shares: given, a string, not the rendering of an empty value.

    :param value: the rendered parameter.
    :param field: the parameter, for messages.
    """
    if value is None:
        return [f"{field}: required, a non-empty string"]
    if not isinstance(value, str):
        return [f"{field}: expected a string, got {type(value).__name__} {short(value)}"]
    empty = empty_rendering_error(value, field)
    return [empty] if empty else []


#: Longest duration a parameter may give (100 years): beyond it, deadlines overflow ``datetime``.
MAX_DURATION_SECONDS = 100 * 365 * 24 * 3600


def seconds_errors(
    value: Any, field: str, *, allow_none: bool = False, allow_zero: bool = False
) -> list[str]:
    """
    The rule for a duration parameter: a finite number of seconds, positive (or 0 when allowed),
    at most :data:`MAX_DURATION_SECONDS`.

    :param value: the parameter.
    :param field: the parameter name, for messages.
    :param allow_none: ``None`` (no limit) is allowed.
    :param allow_zero: 0 is allowed.
    """
    if value is None and allow_none:
        return []
    rule = "a finite number of seconds, " + ("0 or more" if allow_zero else "greater than 0")
    if allow_none:
        rule += ", or None for no limit"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return [f"{field}: {short(value)} must be {rule}"]
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        return [f"{field}: {value!r} must be {rule}"]
    if value > MAX_DURATION_SECONDS:
        return [f"{field}: {value!r} must be {rule}; at most {MAX_DURATION_SECONDS} (100 years)"]
    return []


def job_name_errors(name: Any, field: str = "AutoMLJobName") -> list[str]:
    """
    The rule for job names, alone (the sensor and operators check names they are given too).

    :param name: the candidate name.
    :param field: the field name used in messages.
    """
    return _JOB_NAME.errors(name, field)


def validate_job_name(name: Any, field: str = "AutoMLJobName", subject: str = "Autopilot job name") -> None:
    """
    Raise :class:`AutopilotValidationError` when ``name`` is not a valid AutoMLJobName.

    :param name: the name.
    :param field: the parameter, for messages.
    :param subject: what was invalid, for the error's title (``Invalid <subject>``).
    """
    raise_if(job_name_errors(name, field), subject)


#: Every rule a CreateAutoMLJob request breaks (unknown fields included), as messages.
create_request_errors = CREATE_AUTOML_JOB.request_errors
#: Raise :class:`AutopilotValidationError` listing every rule a CreateAutoMLJob request breaks.
validate_create_request = CREATE_AUTOML_JOB.validate
#: Every rule a CreateAutoMLJobV2 request breaks (unknown fields included), as messages.
create_v2_request_errors = CREATE_AUTOML_JOB_V2.request_errors
#: Raise :class:`AutopilotValidationError` listing every rule a CreateAutoMLJobV2 request breaks.
validate_create_v2_request = CREATE_AUTOML_JOB_V2.validate

"""Request-field tables: each SageMaker request the package builds, described once as data."""

from __future__ import annotations

from airflow_autopilot.core.fields.spec import (
    Field,
    Parameter,
    Problem,
    RequestSpec,
    RequestTables,
    deep_merge,
    drop_none,
    empty_rendering_error,
    generic,
    problem,
    raise_if,
    set_path,
    short,
    values_at,
)

__all__ = [
    "Field",
    "Parameter",
    "Problem",
    "RequestSpec",
    "RequestTables",
    "deep_merge",
    "drop_none",
    "empty_rendering_error",
    "generic",
    "problem",
    "raise_if",
    "set_path",
    "short",
    "values_at",
]

"""The suite's warning filters (``[tool.pytest.ini_options]`` in pyproject.toml)."""

from __future__ import annotations

import warnings

import pytest


def test_a_deprecation_raised_from_this_package_fails_the_test():
    """Under the filters pytest applies to every test, each deprecation category from our code raises."""
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        with pytest.raises(category, match="old_name is deprecated"):
            warnings.warn_explicit(
                "old_name is deprecated; use new_name",
                category,
                filename="airflow_autopilot/core/waits/loop.py",
                lineno=1,
                module="airflow_autopilot.core.waits.loop",
                registry={},
            )

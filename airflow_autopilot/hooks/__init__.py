"""Hooks: the SageMaker Autopilot calls (:class:`AutopilotHook`) and the promotion calls (:class:`AutopilotModelHook`)."""

from __future__ import annotations

from airflow_autopilot.hooks.autopilot import DEFAULT_RETRIES, AutopilotHook
from airflow_autopilot.hooks.model import AutopilotModelHook

__all__ = ["DEFAULT_RETRIES", "AutopilotHook", "AutopilotModelHook"]

"""Moved to :mod:`airflow_autopilot.demo.runner`; this alias goes once the tests import it from there."""

from __future__ import annotations

from airflow_autopilot.demo.runner import load_dag_file, run_dag, task_states

__all__ = ["load_dag_file", "run_dag", "task_states"]

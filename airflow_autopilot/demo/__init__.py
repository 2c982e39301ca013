"""The demo that ships with the package: ``autopilot-demo`` runs the example promotion DAG on the
local emulator, and ``autopilot-demo --copy-dags DIR`` copies the example DAGs into a DAGs folder.
"""

from __future__ import annotations

from airflow_autopilot.demo.examples import (
    copy_example_dags,
    example_dag_file,
    example_dag_files,
    example_dags_folder,
)
from airflow_autopilot.demo.runner import load_dag_file, run_dag, task_states

__all__ = [
    "copy_example_dags",
    "example_dag_file",
    "example_dag_files",
    "example_dags_folder",
    "load_dag_file",
    "run_dag",
    "task_states",
]

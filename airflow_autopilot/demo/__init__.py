"""
The demo that ships with the package: ``autopilot-demo`` (``python -m airflow_autopilot.demo``,
``make demo``) runs the example promotion DAG end to end on the local Autopilot emulator, and
``autopilot-demo --copy-dags DIR`` copies the example DAGs into a DAGs folder.

- :mod:`airflow_autopilot.demo.cli`: the command;
- :mod:`airflow_autopilot.demo.examples`: where the example DAGs are installed, and copying them;
- :mod:`airflow_autopilot.demo.runner`: load a DAG file and run it with Airflow's real
  ``dag.test()`` (also used by the tests of the example DAGs).

Import-light: nothing here imports Airflow, boto3 or moto at module level.
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

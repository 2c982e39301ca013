"""``python -m airflow_autopilot.demo``: the same as the ``autopilot-demo`` command."""

from __future__ import annotations

import sys

from airflow_autopilot.demo.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="python -m airflow_autopilot.demo"))

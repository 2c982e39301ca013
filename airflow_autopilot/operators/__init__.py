"""
The Autopilot operators (import-light: DAG files load this module at parse time).

* :class:`AutopilotCreateJobOperator`: create a job (validated, idempotent on retry, stopped on
  kill), optionally wait; XCom ``{"AutoMLJobName", "AutoMLJobArn"}``.
* :class:`AutopilotBestCandidateOperator`: XCom the ended job's ``BestCandidate``.
* :class:`AutopilotModelDeployResultOperator`: XCom the ``ModelDeployResult``, optionally wait for
  the endpoint.
* :class:`AutopilotCandidatesOperator`: XCom the top-K candidates, log a leaderboard.

The XCom contract of each is in the README (Operators and their XCom contract).
"""

from __future__ import annotations

from airflow_autopilot.operators.base import AutopilotBaseOperator
from airflow_autopilot.operators.create import AutopilotCreateJobOperator
from airflow_autopilot.operators.results import (
    AutopilotBestCandidateOperator,
    AutopilotCandidatesOperator,
    AutopilotModelDeployResultOperator,
    format_leaderboard,
)

__all__ = [
    "AutopilotBaseOperator",
    "AutopilotBestCandidateOperator",
    "AutopilotCandidatesOperator",
    "AutopilotCreateJobOperator",
    "AutopilotModelDeployResultOperator",
    "format_leaderboard",
]

"""The Autopilot operators: create a job, read its results, and promote its best candidate."""

from __future__ import annotations

from airflow_autopilot.operators.base import AutopilotBaseOperator
from airflow_autopilot.operators.create import AutopilotCreateJobOperator
from airflow_autopilot.operators.create_v2 import AutopilotCreateJobV2Operator
from airflow_autopilot.operators.promotion import (
    DECISION_XCOM_KEY,
    AutopilotDeployCandidateOperator,
    AutopilotPromotionBranchOperator,
    AutopilotRegisterCandidateOperator,
)
from airflow_autopilot.operators.results import (
    AutopilotBestCandidateOperator,
    AutopilotCandidatesOperator,
    AutopilotModelDeployResultOperator,
    format_leaderboard,
)
from airflow_autopilot.operators.rollback import ROLLBACK_XCOM_KEY, AutopilotRollbackEndpointOperator
from airflow_autopilot.operators.smoke_test import SMOKE_TEST_XCOM_KEY, AutopilotEndpointSmokeTestOperator
from airflow_autopilot.operators.transform import AutopilotBatchTransformOperator

__all__ = [
    "DECISION_XCOM_KEY",
    "ROLLBACK_XCOM_KEY",
    "SMOKE_TEST_XCOM_KEY",
    "AutopilotBaseOperator",
    "AutopilotBatchTransformOperator",
    "AutopilotBestCandidateOperator",
    "AutopilotCandidatesOperator",
    "AutopilotCreateJobOperator",
    "AutopilotCreateJobV2Operator",
    "AutopilotDeployCandidateOperator",
    "AutopilotEndpointSmokeTestOperator",
    "AutopilotModelDeployResultOperator",
    "AutopilotPromotionBranchOperator",
    "AutopilotRegisterCandidateOperator",
    "AutopilotRollbackEndpointOperator",
    "format_leaderboard",
]

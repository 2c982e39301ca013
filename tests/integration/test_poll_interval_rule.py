"""One rule for a poll interval: the create operators' errors state the rule docs/operators.md states,
and both accept what the rule allows (issue #29, item 4)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_autopilot.core.waits.pace import poll_interval_errors
from airflow_autopilot.exceptions import AutopilotValidationError
from tests.helpers import make_context, operator

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operators.md"


def _words(text: str) -> str:
    return " ".join(text.split())


def docs_rule() -> str:
    """The rule docs/operators.md gives for ``poll_interval``: the text in parentheses after it, up
    to its first semicolon."""
    found = re.search(r"`poll_interval` \(([^;)]*)", DOCS.read_text())
    assert found, "docs/operators.md no longer states the poll_interval rule"
    return _words(found.group(1))


def message_rule(message: str) -> str:
    found = re.search(r"poll_interval: -1 must be ([^\n;]*)", message)
    assert found, message
    return _words(found.group(1))


def v2_operator(**overrides):
    from airflow_autopilot.operators import AutopilotCreateJobV2Operator

    return AutopilotCreateJobV2Operator(
        task_id="create_v2",
        aws_conn_id=None,
        region_name="us-east-1",
        problem_type_config={"TabularJobConfig": {"TargetAttributeName": "churn"}},
        s3_input_uri="s3://bucket/train/",
        s3_output_path="s3://bucket/output",
        role_arn="arn:aws:iam::123456789012:role/autopilot",
        **overrides,
    )


@pytest.mark.parametrize("make", [operator, v2_operator], ids=["v1", "v2"])
def test_the_create_operators_state_the_rule_the_docs_state(autopilot_emulator, make):
    op = make(poll_interval=-1)
    with pytest.raises(AutopilotValidationError) as raised:
        op.execute(make_context(op))
    assert message_rule(str(raised.value)) == docs_rule() == "a finite number of seconds, 0 or more"
    assert autopilot_emulator.request_counts() == {}  # refused before any call


@pytest.mark.parametrize("make", [operator, v2_operator], ids=["v1", "v2"])
@pytest.mark.parametrize("value", [0, 0.5])
def test_what_the_rule_allows_the_operators_accept(autopilot_emulator, make, value):
    """0 and intervals under the floor pass the check (each wait raises them to the floor): the
    operator's request errors, if any, never name poll_interval."""
    assert poll_interval_errors(value) == []
    op = make(poll_interval=value, max_wait_seconds=-1)  # fails the check on another field
    with pytest.raises(AutopilotValidationError) as raised:
        op.execute(make_context(op))
    assert "max_wait_seconds" in str(raised.value) and "poll_interval" not in str(raised.value)

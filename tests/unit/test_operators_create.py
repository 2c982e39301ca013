"""AutopilotCreateJobOperator without AWS: resuming from the trigger's event."""

from __future__ import annotations

import pytest

from airflow_autopilot.exceptions import AutopilotJobFailed
from tests.helpers import operator


def test_execute_complete_rejects_anything_but_success():
    op = operator(deferrable=True)
    ok = op.execute_complete(
        {},
        {"status": "success", "job_name": "j", "message": "", "summary": {}},
        job_name="j",
        job_arn="arn:j",
    )
    assert ok == {"AutoMLJobName": "j", "AutoMLJobArn": "arn:j"}
    for event in (
        {"status": "failure", "job_name": "j", "message": "Failed/Failed: boom"},
        None,
        {"status": "odd"},
    ):
        with pytest.raises(AutopilotJobFailed):
            op.execute_complete({}, event, job_name="j", job_arn="arn:j")

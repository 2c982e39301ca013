"""AutopilotJobSensor without AWS: ``__init__`` keeps templates, inputs fail in ``execute``, events."""

from __future__ import annotations

import pytest

from airflow_autopilot.core.waits.job import make_event
from airflow_autopilot.exceptions import AutopilotJobFailed, AutopilotValidationError
from airflow_autopilot.links import AutopilotJobLink
from tests.helpers import sensor


def test_init_keeps_templates_verbatim_and_touches_nothing():
    s = sensor("{{ params.job }}", failure_secondary_statuses=["NotAStatus"])
    assert s.job_name == "{{ params.job }}"  # validated in execute, not __init__
    assert "hook" not in s.__dict__
    assert s.template_fields == ("job_name",)
    assert isinstance(s.operator_extra_links[0], AutopilotJobLink)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"failure_secondary_statuses": ["ModelDeployError"]}, "failure_secondary_statuses"),
        ({"target_secondary_statuses": ["Tuning"]}, "target_secondary_statuses"),
        ({"success_statuses": ["Done"]}, "success_statuses"),
        ({"failure_statuses": ["Completed"]}, "success_statuses and failure_statuses overlap"),
    ],
)
def test_bad_criteria_fail_in_execute_naming_the_parameter(kwargs, param):
    s = sensor("good-name", **kwargs)
    with pytest.raises(ValueError, match=param):
        s.execute({})
    assert "hook" not in s.__dict__  # no AWS call was attempted


def test_bad_job_name_fails_before_any_aws_call():
    s = sensor("bad_name!")
    with pytest.raises(
        AutopilotValidationError, match=r"Invalid AutopilotJobSensor arguments.*\n.*job_name: 'bad_name!'"
    ):
        s.execute({})
    assert "hook" not in s.__dict__


def test_execute_complete_rejects_missing_and_non_success_events():
    s = sensor("j1")
    with pytest.raises(AutopilotJobFailed, match="no usable event"):
        s.execute_complete({}, None)
    with pytest.raises(AutopilotJobFailed, match="boom"):
        s.execute_complete({}, make_event("failure", "j1", "FailureReason: boom"))
    assert s.execute_complete({}, {"status": "success", "summary": {"AutoMLJobStatus": "Completed"}}) == {
        "AutoMLJobStatus": "Completed"
    }


def test_soft_fail_skips_a_failed_job_but_not_an_error_after_a_deferral():
    from airflow.providers.common.compat.sdk import AirflowFailException, AirflowSkipException

    from airflow_autopilot.core.waits.job import make_event
    from airflow_autopilot.exceptions import AutopilotWaitError

    s = sensor("j1", deferrable=True, soft_fail=True)
    denied = make_event("error", "j1", "AccessDeniedException: not authorized")
    with pytest.raises(AutopilotWaitError, match="not authorized") as raised:
        s.resume_execution("execute_complete", {"event": denied}, {})
    assert not isinstance(raised.value, AirflowFailException)  # Airflow keeps the retries
    with pytest.raises(AirflowSkipException):
        s.resume_execution("execute_complete", {"event": make_event("failure", "j1", "Failed")}, {})

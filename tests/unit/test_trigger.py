"""AutopilotJobTrigger's serialization through Airflow's trigger-kwargs encoding (no AWS)."""

from __future__ import annotations

from airflow_autopilot.core.job import WaitCriteria
from airflow_autopilot.triggers import AutopilotJobTrigger


def test_serialize_round_trips_through_airflows_trigger_kwargs_encoding():
    from airflow.models.trigger import Trigger
    from airflow.providers.common.compat.module_loading import import_string

    trigger = AutopilotJobTrigger(
        "rt-job",
        aws_conn_id="my_aws",
        region_name="eu-west-1",
        verify=False,
        botocore_config={"retries": {"max_attempts": 3}, "connect_timeout": 5},
        poll_interval=45,
        timeout_at="2030-01-02T03:04:05+00:00",
        criteria=WaitCriteria.build(target_secondary_statuses=["ModelTuning"]).to_dict(),
        not_found_grace_seconds=30,
        created_at="2030-01-01T00:00:00+00:00",
    )
    classpath, kwargs = trigger.serialize()
    row = Trigger(classpath=classpath, kwargs=kwargs)  # the scheduler's row: kwargs encrypted
    restored_kwargs = row.kwargs  # what the triggerer reads back, decrypted
    assert restored_kwargs == kwargs
    rebuilt = import_string(classpath)(**restored_kwargs)
    assert isinstance(rebuilt, AutopilotJobTrigger)
    assert rebuilt.serialize() == (classpath, kwargs)
    assert WaitCriteria.from_dict(rebuilt.criteria).target_secondary_statuses == {"ModelTuning"}
    text = repr(kwargs).lower()
    assert "secret" not in text and "password" not in text and "testing" not in text


def test_a_triggers_clock_is_a_seam_for_tests_never_a_serialized_kwarg():
    from airflow_autopilot.core.clock import ManualClock

    clock = ManualClock()
    trigger = AutopilotJobTrigger("clock-job", clock=clock)
    assert trigger.clock is clock
    _, kwargs = trigger.serialize()
    assert "clock" not in kwargs
    assert AutopilotJobTrigger(**kwargs).clock is None  # the triggerer: the default clock

"""The endpoint trigger the deploy-result operator defers to, end to end against the emulator server."""

from __future__ import annotations

import pytest

from airflow_autopilot.operators import AutopilotModelDeployResultOperator
from tests.conftest import job_request
from tests.helpers import sagemaker


@pytest.mark.emulated_time
async def test_endpoint_trigger_reports_in_service_from_the_emulator(server):
    """The trigger the deploy-result operator defers to works against the emulator server."""
    from airflow_autopilot.triggers import AutopilotEndpointTrigger

    sm = sagemaker(server)
    sm.create_auto_ml_job(
        **job_request(
            "ep-trigger",
            ModelDeployConfig={"AutoGenerateEndpointName": False, "EndpointName": "ep-trigger-endpoint"},
        )
    )
    server.advance(3600)
    assert sm.describe_auto_ml_job(AutoMLJobName="ep-trigger")["AutoMLJobStatus"] == "Completed"
    op = AutopilotModelDeployResultOperator(
        task_id="d", job_name="ep-trigger", poll_interval=1, max_attempts=3
    )
    trigger = AutopilotEndpointTrigger("ep-trigger-endpoint", poll_interval=1, **op.connection_kwargs())
    events = [event async for event in trigger.run()]
    assert len(events) == 1 and events[0].payload["status"] == "success"
    assert op.execute_complete({}, events[0].payload, result={"EndpointName": "ep-trigger-endpoint"}) == {
        "EndpointName": "ep-trigger-endpoint"
    }

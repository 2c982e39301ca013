"""AutopilotEndpointTrigger and the hook's endpoint wait against the emulator server: one state machine."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest

from airflow_autopilot.aio import clients
from airflow_autopilot.aio.clients import shared_client
from airflow_autopilot.exceptions import AutopilotError, AutopilotJobFailed
from airflow_autopilot.hooks import AutopilotHook
from airflow_autopilot.triggers import AutopilotEndpointTrigger
from tests.conftest import ONE_ATTEMPT
from tests.helpers import endpoint_backend, fast_trigger

ROLE = "arn:aws:iam::123456789012:role/SageMakerAutopilot"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/autopilot:latest"


def make_endpoint(server, name: str, config: str = "cfg-a") -> None:
    sm = server.client("sagemaker")
    model = f"{config}-model"
    try:
        sm.create_model(ModelName=model, ExecutionRoleArn=ROLE, PrimaryContainer={"Image": IMAGE})
        sm.create_endpoint_config(
            EndpointConfigName=config,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model,
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
    except sm.exceptions.ClientError:
        pass  # an earlier endpoint of this test made them
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)


def trigger(name: str, **kwargs) -> AutopilotEndpointTrigger:
    return fast_trigger(AutopilotEndpointTrigger, name, timeout=30, **kwargs)


async def events(t: AutopilotEndpointTrigger) -> list:
    return [e.payload async for e in t.run()]


def test_serialize_round_trips_without_credentials():
    t = trigger("ep", config_name="cfg-a", aws_conn_id="my_aws", region_name="eu-west-1")
    path, kwargs = t.serialize()
    assert path == "airflow_autopilot.triggers.AutopilotEndpointTrigger"
    again = AutopilotEndpointTrigger(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert not any("secret" in str(v).lower() or "key" in k.lower() for k, v in kwargs.items())


async def test_in_service_on_the_expected_config_is_one_success_event(server):
    make_endpoint(server, "ep-ok")
    [event] = await events(trigger("ep-ok", config_name="cfg-a"))
    assert event["status"] == "success" and event["endpoint_name"] == "ep-ok"
    assert event["message"] == "endpoint 'ep-ok' is InService"
    assert event["endpoint"]["EndpointConfigName"] == "cfg-a"
    assert isinstance(event["endpoint"]["CreationTime"], str)  # JSON-safe
    assert "ResponseMetadata" not in event["endpoint"]


async def test_in_service_on_another_config_waits_until_the_deadline(server):
    make_endpoint(server, "ep-old")
    # The deadline starts once the trigger's shared client exists (creating it, SageMaker's service
    # model, can take a second on a loaded machine), and leaves the first describe time enough on a
    # machine shared with other test runs (0.5 s did not, on the matrix legs).
    async with shared_client(**trigger("ep-old").connection()):
        soon = (datetime.now(timezone.utc) + timedelta(seconds=2)).isoformat()
        [event] = await events(trigger("ep-old", config_name="cfg-new", timeout_at=soon))
    assert event["status"] == "timeout" and "last seen InService" in event["message"]


async def test_failed_endpoint_is_a_failure_with_its_reason(server):
    make_endpoint(server, "ep-bad")
    ep = endpoint_backend("ep-bad")
    ep.endpoint_status, ep.failure_reason = "Failed", "The image could not be pulled"
    [event] = await events(trigger("ep-bad"))
    assert event["status"] == "failure"
    assert "The image could not be pulled" in event["message"]


async def test_missing_endpoint_is_an_error_event(server):
    [event] = await events(trigger("no-such-endpoint"))
    assert event["status"] == "error" and "does not exist" in event["message"]


@pytest.mark.emulated_time
async def test_creating_then_in_service_and_many_triggers_share_one_client(server):
    names = [f"ep-many-{n}" for n in range(12)]
    for name in names:
        make_endpoint(server, name)
        endpoint_backend(name).endpoint_status = "Creating"

    async def flip():
        await asyncio.sleep(0.3)
        for name in names:
            endpoint_backend(name).endpoint_status = "InService"

    peak = []

    async def watch():
        while len(peak) < 50:
            peak.append(clients.open_client_count())
            await asyncio.sleep(0.01)

    watcher = asyncio.create_task(watch())
    results, _ = await asyncio.gather(asyncio.gather(*(events(trigger(n)) for n in names)), flip())
    watcher.cancel()
    assert [r[0]["status"] for r in results] == ["success"] * len(names)
    assert [r[0]["endpoint_name"] for r in results] == names
    assert max(peak) == 1 and clients.open_client_count() == 0


def test_the_hook_wait_agrees_with_the_trigger(server):
    """Same endpoint states, same decisions: InService on the config, Failed with its reason, timeout."""
    make_endpoint(server, "ep-hook")
    hook = AutopilotHook(aws_conn_id="aws_default", config=ONE_ATTEMPT)
    assert (
        hook.wait_for_endpoint("ep-hook", config_name="cfg-a", poll_interval=0.05)["EndpointStatus"]
        == "InService"
    )
    with pytest.raises(AutopilotError, match="Timed out after 0.3s .*last seen InService"):
        hook.wait_for_endpoint("ep-hook", config_name="cfg-other", poll_interval=0.05, timeout=0.3)
    ep = endpoint_backend("ep-hook")
    ep.endpoint_status, ep.failure_reason = "Failed", "no capacity"
    with pytest.raises(AutopilotJobFailed, match="no capacity"):
        hook.wait_for_endpoint("ep-hook", poll_interval=0.05)
    with pytest.raises(AutopilotError, match="does not exist"):
        hook.wait_for_endpoint("ep-never-made", poll_interval=0.05)

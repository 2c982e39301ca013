"""aiobotocore SageMaker clients shared by every trigger of one event loop with the same connection settings."""

from __future__ import annotations

import asyncio
import json
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from airflow_autopilot.core.errors import falls_back_to_v2, guarded_client
from airflow_autopilot.core.job import AutopilotJob
from airflow_autopilot.hooks.autopilot import AutopilotHook

ClientKey = tuple[str | None, str | None, str, str, str]


@dataclass
class _SharedClient:
    client: Any
    context: Any
    users: int = 0


#: Open clients per event loop; a loop that is gone drops its entries.
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ClientKey, _SharedClient]] = (
    weakref.WeakKeyDictionary()
)
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ClientKey, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def client_key(
    aws_conn_id: str | None, region_name: str | None, verify: bool | str | None, botocore_config: Any
) -> ClientKey:
    return (
        aws_conn_id,
        region_name,
        json.dumps(verify),
        json.dumps(botocore_config, sort_keys=True, default=str),
        "sagemaker",
    )


def open_client_count() -> int:
    """How many shared clients are open on the running (or any) event loop; for tests and benches."""
    return sum(len(v) for v in _CLIENTS.values())


@asynccontextmanager
async def shared_client(
    *,
    aws_conn_id: str | None,
    region_name: str | None = None,
    verify: bool | str | None = None,
    botocore_config: dict[str, Any] | None = None,
) -> AsyncIterator[Any]:
    """
    An aiobotocore SageMaker client shared by every user on this event loop with the same settings.

    The first user creates it through :meth:`AutopilotHook.get_async_conn` (the connection lookup
    runs in a thread, never blocking the loop); the last one to leave closes it. The endpoint comes
    from the connection, so one key per connection id covers it.

    :param aws_conn_id: the Airflow AWS connection id.
    :param region_name: AWS region override.
    :param verify: SSL verification override.
    :param botocore_config: botocore ``Config`` arguments as a dict.
    """
    loop = asyncio.get_running_loop()
    key = client_key(aws_conn_id, region_name, verify, botocore_config)
    clients = _CLIENTS.setdefault(loop, {})
    lock = _LOCKS.setdefault(loop, {}).setdefault(key, asyncio.Lock())
    async with lock:
        entry = clients.get(key)
        if entry is None:
            hook = AutopilotHook(
                aws_conn_id=aws_conn_id, region_name=region_name, verify=verify, config=botocore_config
            )
            context = await hook.get_async_conn()
            client = guarded_client(await context.__aenter__())
            entry = _SharedClient(client=client, context=context)
            clients[key] = entry
        entry.users += 1
    try:
        yield entry.client
    finally:
        entry.users -= 1
        if entry.users <= 0 and clients.get(key) is entry:
            del clients[key]
            await entry.context.__aexit__(None, None, None)


async def describe_job(
    client: Any, job_name: str, api_version: Literal["auto", "v1", "v2"] = "auto"
) -> AutopilotJob:
    """
    Describe a job with an aiobotocore client: DescribeAutoMLJob, or DescribeAutoMLJobV2 when the
    job was created with CreateAutoMLJobV2 (see :func:`~airflow_autopilot.core.errors.falls_back_to_v2`).

    :param client: an aiobotocore SageMaker client.
    :param job_name: the AutoMLJobName.
    :param api_version: ``"auto"``, ``"v1"`` or ``"v2"``.
    """
    if api_version != "v2":
        try:
            return AutopilotJob.from_describe(await client.describe_auto_ml_job(AutoMLJobName=job_name), "v1")
        except Exception as err:
            if not falls_back_to_v2(err, api_version):
                raise
    return AutopilotJob.from_describe(await client.describe_auto_ml_job_v2(AutoMLJobName=job_name), "v2")

"""aiobotocore SageMaker clients shared by every trigger of one event loop with the same connection settings."""

from __future__ import annotations

import asyncio
import gzip
import json
import json.scanner
import os
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from airflow_autopilot.aio.heap import PROCESS_HEAP
from airflow_autopilot.core.errors import falls_back_to_v2, guarded_client
from airflow_autopilot.core.job import AutopilotJob

ClientKey = tuple[str | None, str | None, str, str, str]

#: The service every shared client talks to.
SERVICE = "sagemaker"


class ClientConnection:
    """What a trigger holds to reach SageMaker: connection names, never credentials. Its
    :meth:`connection` is the key of the shared client it polls with."""

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: dict[str, Any] | None

    def hold_connection(
        self,
        aws_conn_id: str | None,
        region_name: str | None,
        verify: bool | str | None,
        botocore_config: dict[str, Any] | None,
    ) -> None:
        """
        Keep the connection arguments (a copy of ``botocore_config``).

        :param aws_conn_id: the Airflow AWS connection id (credentials stay in the connection).
        :param region_name: AWS region override.
        :param verify: SSL verification override.
        :param botocore_config: botocore ``Config`` arguments as a JSON-safe dict.
        """
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = dict(botocore_config) if botocore_config else None

    def connection(self) -> dict[str, Any]:
        """The shared-client key arguments: connection id, region, verify and botocore config."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
        }


@dataclass(eq=False)
class _SharedClient:
    """One shared client: the task creating it (shielded from its users' cancellation), its users."""

    opening: asyncio.Task[tuple[Any, Any]]
    users: int = 0

    def failed(self) -> bool:
        return self.opening.done() and (self.opening.cancelled() or self.opening.exception() is not None)


#: Open (or opening) clients per event loop; a loop that is gone drops its entries.
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[ClientKey, _SharedClient]] = (
    weakref.WeakKeyDictionary()
)
#: Closings of clients whose last user left while they were being created (kept until done).
_CLOSING: set[asyncio.Task[None]] = set()


def client_key(
    aws_conn_id: str | None, region_name: str | None, verify: bool | str | None, botocore_config: Any
) -> ClientKey:
    return (
        aws_conn_id,
        region_name,
        json.dumps(verify),
        json.dumps(botocore_config, sort_keys=True, default=str),
        SERVICE,
    )


def open_client_count() -> int:
    """How many shared clients are open on the running (or any) event loop; for tests and benches."""
    return sum(1 for v in _CLIENTS.values() for e in v.values() if e.opening.done() and not e.failed())


# --- the process's service data, read off the event loop ------------------------------------------
_LOADER: Any = None
_LOADER_LOCK = threading.Lock()


def _yielding_json_loads(text: str) -> Any:
    """
    ``json.loads`` with the standard library's pure-Python scanner (strings still go through its C
    helper): a few times slower, but it lets other threads run while it parses. The C parser holds
    the GIL for a whole file, so SageMaker's 2.5 MB model parsed in a worker thread would still
    stall the event loop for that long. Plain dicts (botocore's own loader makes OrderedDicts, which
    Python's dicts have made redundant): about half the memory, and the garbage collector stops
    tracking the many that hold only strings, so its full collections, which stop every thread,
    stay shorter.
    """
    decoder = json.JSONDecoder()
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder.decode(text)


def service_data_loader() -> Any:
    """
    The botocore data loader of every shared client in this process: ``AWS_DATA_PATH`` honoured as
    botocore does, each file parsed once, with :func:`_yielding_json_loads`. The first call (made
    in a worker thread by :func:`shared_client`) also creates a throwaway SageMaker client with it,
    so that every file a client needs (service model, endpoint rules, partitions, retry and default
    settings) is parsed there and later clients only read the cache.
    """
    global _LOADER
    with _LOADER_LOCK:
        if _LOADER is None:
            import botocore.loaders
            import botocore.session

            class YieldingJSONFileLoader(botocore.loaders.JSONFileLoader):
                def load_file(self, file_path: str) -> Any:
                    for extension, opener in ((".json", open), (".json.gz", gzip.open)):
                        path = file_path + extension
                        if os.path.isfile(path):
                            with opener(path, "rb") as handle:
                                return _yielding_json_loads(handle.read().decode("utf-8"))
                    return None

            paths = [
                os.path.expanduser(os.path.expandvars(p))
                for p in os.environ.get("AWS_DATA_PATH", "").split(os.pathsep)
                if p
            ]
            loader = botocore.loaders.Loader(extra_search_paths=paths, file_loader=YieldingJSONFileLoader())
            warm = botocore.session.Session()
            warm.register_component("data_loader", loader)
            warm.create_client(
                SERVICE, region_name="us-east-1", aws_access_key_id="warm-up", aws_secret_access_key="warm-up"
            )
            _LOADER = loader
        return _LOADER


def _prepare_client(
    aws_conn_id: str | None, region_name: str | None, verify: bool | str | None, botocore_config: Any
) -> tuple[Any, dict[str, Any]]:
    """
    Everything synchronous a shared client needs, run in a worker thread: the hook's import, the
    connection lookup, the aiobotocore session (an assumed role is assumed here) reading through
    :func:`service_data_loader`, and the arguments ``AwsBaseHook.get_client_type`` would pass.
    """
    from airflow_autopilot.hooks.autopilot import AutopilotHook

    hook = AutopilotHook(
        aws_conn_id=aws_conn_id, region_name=region_name, verify=verify, config=botocore_config
    )
    loader = service_data_loader()
    session = hook.get_session(region_name=hook.region_name, deferrable=True)
    session.register_component("data_loader", loader)
    arguments = {
        "service_name": SERVICE,
        "endpoint_url": hook.conn_config.get_service_endpoint_url(service_name=SERVICE),
        "config": hook._get_config(),
        "verify": hook.verify,
    }
    return session, arguments


async def _open_client(settings: dict[str, Any]) -> tuple[Any, Any]:
    """Create a shared client: the synchronous part in a worker thread, then only aiobotocore's
    own (cached, about 10 ms) client set-up on the loop. Returns the client and its context."""
    from asgiref.sync import sync_to_async

    # asgiref's worker thread, as the Amazon provider's own get_async_conn uses: a connection
    # lookup from it reaches the triggerer's supervisor on every Airflow 3 release.
    session, arguments = await sync_to_async(_prepare_client)(**settings)
    context = session.create_client(**arguments)  # started at once: never left un-awaited
    client = guarded_client(await context.__aenter__())
    return client, context


async def _close_when_open(entry: _SharedClient) -> None:
    try:
        _, context = await entry.opening
    except BaseException:
        return
    await context.__aexit__(None, None, None)


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

    The first user starts its creation in a task of its own, which every user awaits shielded: a
    user cancelled meanwhile (a trigger cancelled as it starts) leaves it running, and when no user
    is left the client is closed as soon as it exists. Nothing synchronous of any weight runs on
    the loop (:func:`_prepare_client`); the last user to leave closes the client. The endpoint comes
    from the connection, so one key per connection id covers it. A creation that failed is retried
    by the next user.

    :param aws_conn_id: the Airflow AWS connection id.
    :param region_name: AWS region override.
    :param verify: SSL verification override.
    :param botocore_config: botocore ``Config`` arguments as a dict.
    """
    # The first trigger of a triggerer process: Airflow's long-lived heap is complete, and the
    # triggers starting now allocate enough to set off full collections. Frozen, they skip it.
    PROCESS_HEAP.freeze_once()
    loop = asyncio.get_running_loop()
    key = client_key(aws_conn_id, region_name, verify, botocore_config)
    clients = _CLIENTS.setdefault(loop, {})
    entry = clients.get(key)
    if entry is None or entry.failed():
        settings = {
            "aws_conn_id": aws_conn_id,
            "region_name": region_name,
            "verify": verify,
            "botocore_config": botocore_config,
        }
        entry = clients[key] = _SharedClient(opening=loop.create_task(_open_client(settings)))
    entry.users += 1
    try:
        client, _ = await asyncio.shield(entry.opening)
        yield client
    finally:
        entry.users -= 1
        if entry.users <= 0 and clients.get(key) is entry:
            del clients[key]
            if entry.opening.done():
                if not entry.failed():
                    await entry.opening.result()[1].__aexit__(None, None, None)
            else:  # its users went away while it was being created
                closing = loop.create_task(_close_when_open(entry))
                _CLOSING.add(closing)
                closing.add_done_callback(_CLOSING.discard)


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

"""How the hooks get their boto3 sessions and clients: a session factory for the Amazon provider's
``[aws] session_factory`` setting whose sessions share one botocore data loader
(:mod:`airflow_autopilot.service_models`), and an opt-in cache of whole clients (:func:`shared_clients`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from airflow.providers.amazon.aws.hooks.base_aws import BaseSessionFactory

from airflow_autopilot.service_models import botocore_session


class SharedLoaderSessionFactory(BaseSessionFactory):
    """
    The Amazon provider's session factory, except that a boto3 session without an assumed role reads
    the service models through the process's shared botocore data loader, as the provider already
    does for its aiobotocore sessions. Parsing SageMaker's model takes a large part of a client's
    creation; a process that creates many hooks (the test suite) would pay it for each hook.
    Credentials, region and profile come from the connection exactly as without it.

    Enable it before the Amazon provider is imported:
    ``AIRFLOW__AWS__SESSION_FACTORY=airflow_autopilot.hooks.sessions.SharedLoaderSessionFactory``.
    """

    def create_session(self, deferrable: bool = False) -> boto3.session.Session:
        if deferrable or (self.conn and self.role_arn):  # the provider's own (async sessions share a loader)
            return super().create_session(deferrable=deferrable)
        session_kwargs = self.conn.session_kwargs if self.conn else {"region_name": self.region_name}
        return boto3.session.Session(botocore_session=botocore_session(), **session_kwargs)


class ClientCache:
    """Whole boto3 clients by key: what :func:`shared_clients` hands the hooks."""

    def __init__(self) -> None:
        self._clients: dict[Hashable, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, create: Callable[[], Any]) -> Any:
        """The client cached under ``key``, made by ``create()`` the first time.

        :param key: everything the client depends on.
        :param create: makes the client.
        """
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            client = create()
            with self._lock:
                client = self._clients.setdefault(key, client)
        return client

    def __len__(self) -> int:
        return len(self._clients)


_CACHE: ClientCache | None = None


def client_cache() -> ClientCache | None:
    """The cache of :func:`shared_clients` while one is in force, else ``None`` (each hook builds its own)."""
    return _CACHE


@contextmanager
def shared_clients() -> Iterator[ClientCache]:
    """
    Within the block, the package's hooks (:class:`~airflow_autopilot.hooks.autopilot.AutopilotHook`
    and its subclasses) reuse one synchronous boto3 client for every hook of the process with the
    same connection, region, ``verify``, botocore config, caller and AWS environment variables,
    instead of building one each: building a client (the provider's caller lookup, a botocore
    session, the client class) costs tens of milliseconds, and a test file creates hundreds of
    hooks. A shared client keeps what the first hook saw (its user agent names that hook's caller),
    and an event handler registered on it stays for the next hook: for tests that do neither.
    """
    global _CACHE
    previous, _CACHE = _CACHE, ClientCache()
    try:
        yield _CACHE
    finally:
        _CACHE = previous

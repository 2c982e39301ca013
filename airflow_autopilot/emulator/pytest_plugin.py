"""pytest fixtures for the Autopilot emulator (registered through the ``pytest11`` entry point).

Every pytest run in an environment with this package loads this module, so it imports nothing
heavy at module level: moto and boto3 load when a fixture is first used.

Fixtures:

* ``autopilot_emulator`` (function scope): in-process emulation (moto ``mock_aws``), fake AWS
  credentials and region ``us-east-1`` in the environment; yields an ``EmulatorHandle``.
* ``autopilot_emulator_server`` (function scope): the session's loopback server, reset before the
  test (moto state, faults, request counts; settings and clock restored afterwards), with
  ``AIRFLOW_CONN_AWS_DEFAULT``, fake credentials and region set in the environment; yields the
  ``EmulatorServer``.
* ``autopilot_emulator_server_session`` (session scope): the shared server itself, started once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from airflow_autopilot.emulator.handle import EmulatorHandle
    from airflow_autopilot.emulator.server import EmulatorServer

_REGION = "us-east-1"
_AWS_ENV_TO_CLEAR = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")


def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _AWS_ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", _REGION)
    monkeypatch.setenv("AWS_REGION", _REGION)


@pytest.fixture
def autopilot_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    """In-process Autopilot emulator over moto's ``mock_aws``.

    :param monkeypatch: pytest's monkeypatch fixture.
    """
    from airflow_autopilot.emulator.inprocess import mock_autopilot

    _fake_aws_env(monkeypatch)
    with mock_autopilot(region=_REGION) as handle:
        yield handle


@pytest.fixture(scope="session")
def autopilot_emulator_server_session() -> Iterator[EmulatorServer]:
    """One emulator server on a free loopback port for the whole session."""
    from airflow_autopilot.emulator.server import EmulatorServer

    server = EmulatorServer(region=_REGION)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def autopilot_emulator_server(
    autopilot_emulator_server_session: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmulatorServer]:
    """The session's emulator server, reset for this test, with Airflow's AWS connection pointing at it.

    :param autopilot_emulator_server_session: the shared server.
    :param monkeypatch: pytest's monkeypatch fixture.
    """
    from airflow_autopilot.emulator import settings

    server = autopilot_emulator_server_session
    saved = settings.snapshot()
    server.reset()
    _fake_aws_env(monkeypatch)
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", server.airflow_conn_value)
    try:
        yield server
    finally:
        settings.restore(saved)
        server.clear_faults()

"""pytest fixtures for the Autopilot emulator: in-process, and a loopback server shared by the session.

Registered through the ``pytest11`` entry point, so they exist wherever the package is installed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from airflow_autopilot.emulator import settings
from airflow_autopilot.emulator.handle import DEFAULT_REGION, EmulatorHandle
from airflow_autopilot.emulator.iam import EnforcedIam
from airflow_autopilot.emulator.inprocess import mock_autopilot
from airflow_autopilot.emulator.server import EmulatorServer

_AWS_ENV_TO_CLEAR = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")
#: The poll-interval floor against the emulator, whose jobs take seconds (1 s against AWS).
EMULATOR_MIN_POLL_INTERVAL = "0.01"


def _fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_autopilot.core.waits.pace import MIN_POLL_INTERVAL_ENV

    for name in _AWS_ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(MIN_POLL_INTERVAL_ENV, EMULATOR_MIN_POLL_INTERVAL)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", DEFAULT_REGION)
    monkeypatch.setenv("AWS_REGION", DEFAULT_REGION)


@pytest.fixture
def autopilot_emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorHandle]:
    """In-process Autopilot emulator over moto's ``mock_aws``, with fake AWS credentials and region,
    and the poll-interval floor lowered to 0.01 s.

    :param monkeypatch: pytest's monkeypatch fixture.
    """
    _fake_aws_env(monkeypatch)
    with mock_autopilot(region=DEFAULT_REGION) as handle:
        yield handle


@pytest.fixture(scope="session")
def autopilot_emulator_server_session() -> Iterator[EmulatorServer]:
    """One emulator server on a free loopback port for the whole session."""
    server = EmulatorServer(region=DEFAULT_REGION)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def autopilot_emulator_server(
    autopilot_emulator_server_session: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EmulatorServer]:
    """The session's emulator server, reset for this test, with Airflow's AWS connection pointing at
    it and the poll-interval floor lowered to 0.01 s.

    Settings and clock changed by the test are restored afterwards.

    :param autopilot_emulator_server_session: the shared server.
    :param monkeypatch: pytest's monkeypatch fixture.
    """
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


@pytest.fixture
def autopilot_emulator_iam(autopilot_emulator_server: EmulatorServer) -> Iterator[EnforcedIam]:
    """IAM enforced on the session's emulator server for this test (``--enforce-iam``): every
    request needs an IAM user's keys; the fixture's :meth:`~EnforcedIam.client` uses an admin's,
    :meth:`~EnforcedIam.create_user` makes a user with exactly the given policies.

    :param autopilot_emulator_server: the server, reset for this test.
    """
    iam = EnforcedIam(autopilot_emulator_server).start()
    try:
        yield iam
    finally:
        iam.stop()

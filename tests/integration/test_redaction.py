"""No credential from a connection's endpoint URL (userinfo, a query token) reaches a log, an
exception, an event or trigger kwargs, through every path that logs an error."""

from __future__ import annotations

import json
import socket
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from airflow_autopilot.core.job import WaitCriteria
from airflow_autopilot.core.redaction import MASK
from airflow_autopilot.emulator.server import airflow_conn_value
from airflow_autopilot.hooks import AutopilotHook
from airflow_autopilot.triggers import AutopilotJobTrigger
from tests.conftest import ONE_ATTEMPT
from tests.helpers import fast_trigger, make_context, operator, sensor

PASSWORD = "pr0xy-Pa55word-7781"
USER = "proxyuser"


def refused_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


#: The URL forms a credential takes (the password, then what the redacted URL shows instead):
#: userinfo (a proxy, a gateway) and a query parameter (a gateway's token), which botocore and
#: aiobotocore both keep in their connection errors.
URL_FORMS = {
    "userinfo": ("{scheme}://{user}:{secret}@127.0.0.1:{port}", f"{USER}:{MASK}@127.0.0.1"),
    "query-token": (
        "{scheme}://127.0.0.1:{port}/?X-Amz-Security-Token={secret}",
        f"X-Amz-Security-Token={MASK}",
    ),
}


@dataclass(frozen=True)
class LeakyUrl:
    url: str
    masked: str  # what the redacted text shows in the secret's place


def _leaky_url(monkeypatch: pytest.MonkeyPatch, form: str, scheme: str, port: int) -> LeakyUrl:
    template, masked = URL_FORMS[form]
    url = template.format(scheme=scheme, user=USER, secret=PASSWORD, port=port)
    _connect(monkeypatch, url)
    return LeakyUrl(url, masked)


@pytest.fixture(params=sorted(URL_FORMS))
def refused_url(request, monkeypatch) -> LeakyUrl:
    """``aws_default`` pointing at a refused loopback port, with a password in its URL."""
    return _leaky_url(monkeypatch, request.param, "http", refused_port())


@pytest.fixture(params=sorted(URL_FORMS))
def not_tls_url(request, autopilot_emulator_server, monkeypatch) -> LeakyUrl:
    """``aws_default`` speaking HTTPS, with a password in its URL, to the emulator's plain HTTP
    port: botocore raises an SSLError, which no retry fixes, so the wait ends on it."""
    return _leaky_url(monkeypatch, request.param, "https", autopilot_emulator_server.port)


def _connect(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    from airflow_autopilot.core.waits.pace import MIN_POLL_INTERVAL_ENV

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv(MIN_POLL_INTERVAL_ENV, "0.01")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", airflow_conn_value(url))


def error_text(error: BaseException) -> str:
    """Everything a traceback of ``error`` shows: its chain's types and messages, and its args."""
    chain = "".join(traceback.format_exception(error))
    return f"{chain}\n{error!r}\n{getattr(error, 'kwargs', '')}"


@pytest.fixture
def seen(capsys, caplog) -> Iterator[Any]:
    """Returns everything logged so far (stdout, stderr, log records with their tracebacks)."""

    def read() -> str:
        out, err = capsys.readouterr()
        records = "\n".join(
            f"{r.getMessage()}\n{r.exc_text or ''}\n{''.join(traceback.format_exception(r.exc_info[1])) if r.exc_info and r.exc_info[1] else ''}"
            for r in caplog.records
        )
        read.text += out + err + records  # type: ignore[attr-defined]
        return read.text  # type: ignore[attr-defined]

    read.text = ""  # type: ignore[attr-defined]
    yield read


def assert_redacted(text: str, *, expect: str | None = None) -> None:
    assert PASSWORD not in text
    if expect is not None:
        assert expect in text, text[-2000:]


# --- sensor: poke and reschedule -------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_a_sensors_transient_error_warning_shows_no_password(refused_url, seen, mode):
    s = sensor("leaky-job", aws_conn_id="aws_default", mode=mode)
    assert s.poke({}) is False
    text = seen()
    assert_redacted(text, expect="Transient error checking Autopilot job 'leaky-job'")
    assert refused_url.masked in text  # the URL still says where it went


def test_a_sensors_error_ends_the_wait_without_the_password(not_tls_url, seen):
    s = sensor("leaky-job", aws_conn_id="aws_default")
    with pytest.raises(Exception) as raised:
        s.poke({})
    assert "SSL" in type(raised.value).__name__
    assert_redacted(error_text(raised.value), expect=not_tls_url.masked)
    assert_redacted(seen())


# --- hook, and the operators' blocking waits through it ----------------------------------------------
def test_the_hooks_connection_errors_carry_no_password(refused_url):
    hook = AutopilotHook(aws_conn_id="aws_default", config=ONE_ATTEMPT)
    with pytest.raises(Exception) as raised:
        hook.get_job("leaky-job")
    assert_redacted(error_text(raised.value), expect=refused_url.masked)
    with hook.time_limit(5.0), pytest.raises(Exception) as raised:  # the bounded clients too
        hook.get_job("leaky-job")
    assert_redacted(error_text(raised.value), expect=refused_url.masked)


def test_the_hooks_blocking_wait_logs_no_password(refused_url, seen):
    hook = AutopilotHook(aws_conn_id="aws_default", config=ONE_ATTEMPT)
    with pytest.raises(Exception) as raised:
        hook.wait_for_job(
            "leaky-job", WaitCriteria.build(), poll_interval=0.05, timeout=0.5, max_backoff=0.05
        )
    assert type(raised.value).__name__ == "AutopilotWaitTimeout"
    assert_redacted(error_text(raised.value))
    assert_redacted(seen(), expect="Transient error checking Autopilot job 'leaky-job'")


def test_the_hooks_blocking_wait_raises_its_error_without_the_password(not_tls_url, seen):
    hook = AutopilotHook(aws_conn_id="aws_default", config=ONE_ATTEMPT)
    with pytest.raises(Exception) as raised:
        hook.wait_for_job("leaky-job", WaitCriteria.build(), poll_interval=0.05, timeout=5)
    assert_redacted(error_text(raised.value), expect=not_tls_url.masked)
    assert_redacted(seen())


def test_the_create_operator_fails_without_the_password(refused_url, seen):
    op = operator(aws_conn_id="aws_default", botocore_config=ONE_ATTEMPT)
    context = make_context(op)
    with pytest.raises(Exception) as raised:
        op.execute(context)
    assert_redacted(error_text(raised.value), expect=refused_url.masked)
    assert_redacted(json.dumps(context["pushed"], default=str))  # XCom
    assert_redacted(seen())


# --- deferrable: the trigger's events, kwargs and logs -----------------------------------------------
@pytest.mark.parametrize("coalesce", [True, False], ids=["shared-poller", "own-describes"])
async def test_a_trigger_shows_no_password_in_events_kwargs_or_logs(refused_url, seen, coalesce):
    trigger = fast_trigger(
        AutopilotJobTrigger, "leaky-job", aws_conn_id="aws_default", timeout=1.0, coalesce=coalesce
    )
    assert_redacted(json.dumps(trigger.serialize(), default=str))
    events = [event async for event in trigger.run()]
    assert len(events) == 1 and events[0].payload["status"] in ("timeout", "error")
    assert_redacted(json.dumps(events[0].payload, default=str))
    # aiohttp refuses userinfo in a URL before connecting, in words without the URL; a token in
    # the query string reaches the connection error.
    assert_redacted(seen(), expect="Transient error checking Autopilot job 'leaky-job'")


@pytest.mark.parametrize("coalesce", [True, False], ids=["shared-poller", "own-describes"])
async def test_a_trigger_error_event_shows_no_password(not_tls_url, seen, coalesce):
    trigger = fast_trigger(
        AutopilotJobTrigger, "leaky-job", aws_conn_id="aws_default", timeout=1.0, coalesce=coalesce
    )
    events = [event async for event in trigger.run()]
    assert len(events) == 1
    payload = events[0].payload
    if "X-Amz-Security-Token" in not_tls_url.url:  # aiohttp refuses userinfo before any TLS
        assert payload["status"] == "error" and not_tls_url.masked in payload["message"]
    assert_redacted(json.dumps(payload, default=str))
    assert_redacted(seen())


def test_the_sensor_defers_with_kwargs_that_hold_no_password(refused_url):
    from airflow.providers.common.compat.sdk import TaskDeferred

    s = sensor("leaky-job", aws_conn_id="aws_default", deferrable=True)
    with pytest.raises(TaskDeferred) as deferred:
        s.execute(make_context(s))
    assert_redacted(json.dumps(deferred.value.trigger.serialize(), default=str))
    assert_redacted(json.dumps(deferred.value.kwargs or {}, default=str))

"""AutopilotJobTrigger against the emulator server (aiobotocore needs a real HTTP endpoint)."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest

from airflow_autopilot.aio import clients
from airflow_autopilot.hooks import AutopilotHook
from airflow_autopilot.triggers import AutopilotJobTrigger
from tests.airflow_versions import bind_trigger_log_context, capture_structured_logs, trigger_log_context
from tests.helpers import fast_trigger


async def collect(trigger: AutopilotJobTrigger) -> list:
    return [event async for event in trigger.run()]


def make_trigger(name: str, **kwargs) -> AutopilotJobTrigger:
    return fast_trigger(AutopilotJobTrigger, name, **kwargs)


@pytest.mark.emulated_time
@pytest.mark.parametrize("coalesce", [True, False], ids=["shared-poller", "own-describes"])
async def test_success_yields_exactly_one_event_with_the_summary(server, make_job, coalesce):
    # Stages of 0.5 s: the job is still running at the first check however slow the machine is.
    make_job(
        "trig-ok",
        AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 2}},
        tags={"autopilot-emulator:stage-seconds": "0.5"},
    )
    server.reset_request_counts()
    events = await collect(make_trigger("trig-ok", coalesce=coalesce))
    counts = server.request_counts()
    # Coalesced, the job's progress comes from ListAutoMLJobs and only the first check and the
    # verdict need a describe; uncoalesced, there is one describe per poll.
    assert (counts.get("ListAutoMLJobs", 0) > 0) is coalesce
    if coalesce:
        assert counts["DescribeAutoMLJob"] <= 4
    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success" and payload["job_name"] == "trig-ok"
    assert payload["summary"]["AutoMLJobStatus"] == "Completed"
    assert payload["summary"]["BestCandidateName"]
    assert clients.open_client_count() == 0  # the shared client is closed by its last user


@pytest.mark.emulated_time
@pytest.mark.parametrize(
    ("outcome", "texts"),
    [
        ("failed", ["Failed/Failed", "FailureReason:", "PartialFailure:"]),
        ("stopped", ["Stopped/Stopped"]),
        ("runtime-limit-no-candidate", ["MaxAutoMLJobRuntimeReached", "no BestCandidate"]),
    ],
)
async def test_terminal_failures_yield_a_failure_event_with_the_reason(server, make_job, outcome, texts):
    name = f"trig-{outcome}"[:32]
    make_job(name, outcome=outcome)
    events = await collect(make_trigger(name))
    assert len(events) == 1 and events[0].payload["status"] == "failure"
    for text in texts:
        assert text in events[0].payload["message"]
    assert events[0].payload["summary"]["AutoMLJobName"] == name


@pytest.mark.emulated_time
async def test_transient_faults_and_not_found_after_create_do_not_end_the_wait(server, make_job):
    make_job("trig-faults")
    server.inject_faults("trig-faults", throttle=3, server_errors=2, not_found=2)
    server.reset_request_counts()
    events = await collect(make_trigger("trig-faults"))
    assert [e.payload["status"] for e in events] == ["success"]
    counts = server.request_counts()
    # Every fault was served (to a describe or a candidate count) and the wait went on to success.
    assert counts["DescribeAutoMLJob"] + counts.get("ListCandidatesForAutoMLJob", 0) > 7


async def test_timeout_yields_a_timeout_event_with_the_last_state(server, make_job):
    make_job("emu-slow-trig")
    deadline = (datetime.now(timezone.utc) + timedelta(seconds=1)).isoformat()
    started = asyncio.get_running_loop().time()
    events = await collect(make_trigger("emu-slow-trig", timeout_at=deadline))
    assert asyncio.get_running_loop().time() - started < 5
    assert len(events) == 1 and events[0].payload["status"] == "timeout"
    assert "last seen InProgress/" in events[0].payload["message"]


async def test_missing_job_after_grace_yields_an_error_event(server):
    events = await collect(make_trigger("trig-missing", not_found_grace_seconds=0))
    assert len(events) == 1 and events[0].payload["status"] == "error"
    assert "ResourceNotFound" in events[0].payload["message"]


@pytest.mark.emulated_time
async def test_triggers_share_one_client_and_look_up_the_connection_off_the_loop(
    server, make_job, monkeypatch
):
    names = [f"trig-share-{i}" for i in range(5)]
    for name in names:
        make_job(name)
    created, lookup_threads = [], []
    original_session, original_lookup = AutopilotHook.get_session, AutopilotHook.get_connection

    def counting_get_session(self, region_name=None, deferrable=False):
        if deferrable:  # an aiobotocore session: one per shared client
            created.append(self.aws_conn_id)
        return original_session(self, region_name=region_name, deferrable=deferrable)

    def recording_lookup(conn_id):
        lookup_threads.append(threading.get_ident())
        return original_lookup(conn_id)

    monkeypatch.setattr(AutopilotHook, "get_session", counting_get_session)
    monkeypatch.setattr(AutopilotHook, "get_connection", staticmethod(recording_lookup))
    peak = []

    async def watch():
        while True:
            peak.append(clients.open_client_count())
            await asyncio.sleep(0.02)

    watcher = asyncio.create_task(watch())
    results = await asyncio.gather(*(collect(make_trigger(n)) for n in names))
    watcher.cancel()
    assert [r[0].payload["status"] for r in results] == ["success"] * 5
    assert created == ["aws_default"]  # one client for five triggers
    assert max(peak) == 1 and clients.open_client_count() == 0
    assert lookup_threads and threading.get_ident() not in lookup_threads  # never on the event loop


# --- log routing: what Airflow's triggerer does with each trigger's log lines ----------------------
class ContextRecorder(logging.Handler):
    """
    Records each log line with the trigger_id bound in the emitting task's context: the triggerer
    routes a line to a task's log by that context variable (structlog's on Airflow 3, ctx_trigger_id
    on Airflow 2). On Airflow 3 triggers log through structlog (captured with the context merged in);
    the poller, and on Airflow 2 the triggers too, through the standard library.
    """

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.stdlib: list[tuple[str | None, str]] = []
        self.entries: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.stdlib.append((trigger_log_context(), record.getMessage()))

    @property
    def lines(self) -> list[tuple[str | None, str]]:
        structured = []
        for entry in self.entries:
            args = entry.get("positional_args")
            text = entry["event"] % args if args else entry["event"]
            structured.append((entry.get("trigger_id"), text))
        return structured + self.stdlib


async def run_as_airflow_does(trigger: AutopilotJobTrigger, trigger_id: str) -> list:
    """Bind the trigger's id in its own task's context, as TriggerRunner.run_trigger does."""

    async def run():
        bind_trigger_log_context(trigger_id)
        return await collect(trigger)

    return await asyncio.create_task(run())


@pytest.fixture
def recorder():
    handler = ContextRecorder()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        with capture_structured_logs() as entries:
            handler.entries = entries
            yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


@pytest.mark.emulated_time
async def test_each_jobs_progress_lines_reach_only_its_own_triggers_log(server, make_job, recorder):
    """Five coalesced triggers in one loop: every line about job X is logged in X's trigger context."""
    names = [f"route-{n}" for n in range(5)]
    for n, name in enumerate(names):
        make_job(name, tags={"autopilot-emulator:stage-seconds": str(0.2 + 0.1 * n)})
    results = await asyncio.gather(
        *(run_as_airflow_does(make_trigger(name, candidate_interval=0), name) for name in names)
    )
    assert [r[0].payload["status"] for r in results] == ["success"] * len(names)
    about = {
        name: [(tid, line) for tid, line in recorder.lines if f" {name} " in f" {line} "] for name in names
    }
    for name in names:
        progress = [line for tid, line in about[name] if "is InProgress/" in line or "is Completed/" in line]
        assert len(progress) >= 3, (name, about[name])  # the list hints reached it, not just the describes
        wrong = [(tid, line) for tid, line in about[name] if tid != name]
        assert wrong == [], wrong
    # every line logged inside a trigger's context is about that trigger's job
    for tid, line in recorder.lines:
        if tid in names:
            assert tid in line or not any(other in line for other in names), (tid, line)


@pytest.mark.emulated_time
async def test_candidate_counts_follow_candidate_interval_while_coalesced(server, make_job, recorder):
    make_job("count-lines", tags={"autopilot-emulator:stage-seconds": "1.5"})
    [event] = await run_as_airflow_does(make_trigger("count-lines", candidate_interval=0.4), "count-lines")
    assert event.payload["status"] == "success"
    counts = [line for tid, line in recorder.lines if "candidates completed" in line and tid == "count-lines"]
    states = [line for tid, line in recorder.lines if line.startswith("Autopilot job count-lines")]
    assert len(counts) >= 3, states  # ModelTuning lasts about 3 s: a count every 0.4 s
    completed = [int(line.split(": ")[1].split(" of ")[0]) for line in counts]
    assert completed == sorted(completed) and completed[-1] > 0  # real, growing counts


@pytest.mark.emulated_time
async def test_the_state_the_sensor_logged_is_not_logged_again(server, make_job, recorder):
    make_job("no-dup", tags={"autopilot-emulator:stage-seconds": "0.5"})
    trigger = make_trigger("no-dup", logged_state=["InProgress", "Starting"], candidate_interval=0)
    assert trigger.serialize()[1]["logged_state"] == ["InProgress", "Starting"]
    await run_as_airflow_does(trigger, "no-dup")
    states = [line for _, line in recorder.lines if line.startswith("Autopilot job no-dup is ")]
    assert not any("InProgress/Starting" in line for line in states), states
    assert any("Completed/Completed" in line for line in states)

"""
Fault-injection suite: generated sequences of job outcomes and faults through every kind of wait.

Each case creates a job on the in-process emulator with a chosen outcome, schedules faults
(throttling bursts of up to 10 in a row, HTTP 5xx, connection resets, read timeouts, refused
connections, ResourceNotFound right after creation) and waits through poke, reschedule or the blocking
``AutopilotHook.wait_for_job`` (the create operator's wait), then asks the best-candidate operator. Every case must
end with the job's true outcome: no false success, no false failure, no lost event. A server restart
that loses its state (every job gone) must end the wait as "not found", never as a timeout.

Throttling, 5xx and ResourceNotFound are real AWS error responses from the emulator; connection
resets and read timeouts are raised where botocore's HTTP layer raises them (a ``before-send``
handler), the one fault the emulator cannot produce. The hook's botocore retries are off here
(``total_max_attempts=1``) so that every fault reaches our own code; botocore's retries are covered in
``tests/integration/test_hook.py``. Deferrable waits and triggerer restarts run in ``test_fault_suite_deferred.py``.
"""

from __future__ import annotations

import gzip
import itertools
from collections import deque

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from airflow_autopilot.core.defaults import DEFAULT_NOT_FOUND_GRACE_SECONDS
from airflow_autopilot.core.errors import is_not_found
from airflow_autopilot.core.job import WaitCriteria
from airflow_autopilot.exceptions import AutopilotJobFailed
from airflow_autopilot.hooks import AutopilotHook
from airflow_autopilot.operators import AutopilotBestCandidateOperator
from airflow_autopilot.sensors import AutopilotJobSensor
from tests.conftest import DATA_BUCKET, TRAINING_CSV, upload_training_data
from tests.helpers import make_context

#: Large and generated: the Airflow-version legs other than the main one may deselect it (-m).
pytestmark = pytest.mark.main_leg_only

#: outcome tag -> the wait's true verdict
OUTCOMES = {
    "success": "success",
    "failed": "failure",
    "stopped": "failure",
    "runtime-limit": "success",
    "runtime-limit-no-candidate": "failure",
    "deploy-error": "failure",
}
TRANSPORT_FAULTS = ("reset", "read-timeout", "refused")
FAULT_KINDS = ("throttle", "server-error", *TRANSPORT_FAULTS)
MODES = ("poke", "reschedule", "blocking")
STAGE_SECONDS = 0.5
MAX_POLLS = 200

_names = itertools.count()

cases = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(sorted(OUTCOMES)),
        "mode": st.sampled_from(MODES),
        "not_found": st.integers(min_value=0, max_value=3),
        # (poll index at which the burst starts, kind, length)
        "faults": st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=14), st.sampled_from(FAULT_KINDS), st.integers(1, 10)
            ),
            max_size=5,
        ),
    }
)


class TransportFaults:
    """Raises botocore's own connection errors for scheduled requests, as its HTTP layer would."""

    def __init__(self) -> None:
        self.pending: deque[str] = deque()
        #: Server restarts the case scheduled so far (``_schedule``'s ``"restart"``).
        self.restarts = 0

    def __call__(self, request, **kwargs):
        if not self.pending:
            return None
        from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

        kind = self.pending.popleft()
        if kind == "reset":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == "refused":  # what botocore raises when nothing listens on the port
            raise EndpointConnectionError(endpoint_url=request.url)
        raise ReadTimeoutError(endpoint_url=request.url)


@pytest.fixture
def fault_hook(autopilot_emulator):
    hook = AutopilotHook(
        aws_conn_id=None, region_name="us-east-1", config={"retries": {"total_max_attempts": 1}}
    )
    transport = TransportFaults()
    hook.client.meta.events.register_first("before-send.sagemaker", transport)
    return hook, transport


def create_case_job(make_job, name: str, outcome: str, stage_seconds: float) -> None:
    """Create a job that ends with ``outcome`` (deploy-error jobs ask for a deployment)."""
    extra = {"ModelDeployConfig": {"AutoGenerateEndpointName": True}} if outcome == "deploy-error" else {}
    make_job(name, outcome=outcome, tags={"autopilot-emulator:stage-seconds": str(stage_seconds)}, **extra)


#: Hypothesis settings shared by both halves of the suite (sizes differ).
SUITE_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    "derandomize": True,
    "phases": [Phase.explicit, Phase.generate, Phase.shrink],
}


def _schedule(emulator, transport, name: str, burst) -> None:
    kind, length = burst
    if kind == "restart":  # the server restarts with its state lost: every job is gone
        emulator.reset()
        transport.restarts += 1
    elif kind == "throttle":
        emulator.inject_faults(name, throttle=length)
    elif kind == "server-error":
        emulator.inject_faults(name, server_errors=length)
    else:
        transport.pending.extend([kind] * length)


def _sensor(name: str, hook, mode: str, grace: float = DEFAULT_NOT_FOUND_GRACE_SECONDS) -> AutopilotJobSensor:
    sensor = AutopilotJobSensor(
        task_id=f"wait_{name}",
        job_name=name,
        aws_conn_id=None,
        mode="reschedule" if mode == "reschedule" else "poke",
        deferrable=False,
        candidate_interval=0,
        not_found_grace_seconds=grace,
    )
    sensor.__dict__["hook"] = hook  # the suite's hook: real client, retries off, transport faults
    return sensor


def _wait_by_pokes(case, name, hook, transport, emulator) -> str:
    """Poke until done: one sensor for poke mode, a fresh one per poke for reschedule mode."""
    grace = case.get("not_found_grace", DEFAULT_NOT_FOUND_GRACE_SECONDS)
    sensor = _sensor(name, hook, case["mode"], grace)
    bursts = sorted(case["faults"])
    for poll in range(MAX_POLLS):
        while bursts and bursts[0][0] <= poll:
            _, kind, length = bursts.pop(0)
            _schedule(emulator, transport, name, (kind, length))
        if case["mode"] == "reschedule":
            sensor = _sensor(name, hook, "reschedule", grace)
        try:
            result = sensor.poke({})
        except AutopilotJobFailed:
            return "failure"
        except Exception as err:
            if is_not_found(err):
                return "not found"
            raise
        if result:
            assert result.xcom_value["AutoMLJobName"] == name
            return "success"
        emulator.advance(STAGE_SECONDS)
    raise AssertionError(f"{name}: no verdict after {MAX_POLLS} polls (lost event)")


def _wait_blocking(case, name, hook, transport, emulator) -> str:
    bursts = sorted(case["faults"])
    polls = itertools.count()

    def sleep(seconds: float) -> None:
        poll = next(polls)
        assert poll < MAX_POLLS, f"{name}: no verdict after {MAX_POLLS} polls (lost event)"
        while bursts and bursts[0][0] <= poll:
            _, kind, length = bursts.pop(0)
            _schedule(emulator, transport, name, (kind, length))
        emulator.advance(STAGE_SECONDS)

    import logging

    try:
        hook.wait_for_job(
            name,
            WaitCriteria(),
            poll_interval=STAGE_SECONDS,
            timeout=None,
            log=logging.getLogger("fault-suite"),
            candidate_interval=0,
            sleep=sleep,
            not_found_grace=case.get("not_found_grace", DEFAULT_NOT_FOUND_GRACE_SECONDS),
        )
    except AutopilotJobFailed:
        return "failure"
    except Exception as err:
        if is_not_found(err):
            return "not found"
        raise
    return "success"


#: ``make test-all`` runs the full suite (``--hypothesis-profile=full``); ``make test`` a derandomized
#: sample of it. The explicit examples run in both: every outcome, every wait mode, and every fault
#: kind in every mode, ResourceNotFound after creation included.
FULL_SUITE = settings.get_current_profile_name() == "full"
# The real-time network cases take seconds each: ``make test`` runs their explicit examples (every
# fault kind, both orders, each wait mode), the full profile generated ones as well.
NETWORK_SETTINGS = {
    **SUITE_SETTINGS,
    "max_examples": 4,
    "phases": SUITE_SETTINGS["phases"] if FULL_SUITE else [Phase.explicit],
}


@settings(max_examples=1000 if FULL_SUITE else 25, **SUITE_SETTINGS)
@given(case=cases)
@example(
    case={
        "outcome": "success",
        "mode": "poke",
        "not_found": 2,
        "faults": [(0, "throttle", 10), (2, "server-error", 3), (4, "reset", 2), (5, "read-timeout", 2)],
    }
)
@example(
    case={
        "outcome": "failed",
        "mode": "reschedule",
        "not_found": 3,
        "faults": [(0, "reset", 3), (1, "read-timeout", 1), (3, "throttle", 4), (6, "server-error", 10)],
    }
)
@example(
    case={
        "outcome": "stopped",
        "mode": "blocking",
        "not_found": 1,
        "faults": [(0, "read-timeout", 4), (0, "server-error", 2), (2, "throttle", 10), (7, "reset", 1)],
    }
)
@example(
    case={
        "outcome": "runtime-limit",
        "mode": "blocking",
        "not_found": 0,
        "faults": [(1, "throttle", 2), (3, "reset", 10), (8, "server-error", 1), (14, "read-timeout", 3)],
    }
)
@example(
    case={
        "outcome": "runtime-limit-no-candidate",
        "mode": "reschedule",
        "not_found": 0,
        "faults": [(0, "server-error", 5), (2, "read-timeout", 10), (5, "throttle", 1), (9, "reset", 4)],
    }
)
@example(
    case={
        "outcome": "deploy-error",
        "mode": "poke",
        "not_found": 1,
        "faults": [(0, "throttle", 1), (1, "reset", 1), (1, "read-timeout", 1), (10, "server-error", 2)],
    }
)
def test_every_wait_ends_with_the_true_outcome(case, fault_hook, autopilot_emulator, make_job):
    hook, transport = fault_hook
    transport.pending.clear()
    autopilot_emulator.clear_faults()
    name = f"fz-{next(_names)}"
    create_case_job(make_job, name, case["outcome"], STAGE_SECONDS)
    if case["not_found"]:
        autopilot_emulator.inject_faults(name, not_found=case["not_found"])

    if case["mode"] == "blocking":
        verdict = _wait_blocking(case, name, hook, transport, autopilot_emulator)
    else:
        verdict = _wait_by_pokes(case, name, hook, transport, autopilot_emulator)

    # The true outcome: the job as SageMaker ends it, described with no fault in the way.
    transport.pending.clear()
    autopilot_emulator.clear_faults()
    autopilot_emulator.advance(100 * STAGE_SECONDS)
    job = hook.get_job(name)
    expected_verdict = OUTCOMES[case["outcome"]]
    assert job.is_terminal
    assert verdict == expected_verdict == WaitCriteria().verdict(job), job.describe_state()

    # The operators downstream see the same truth.
    best_op = AutopilotBestCandidateOperator(task_id=f"best_{name}", job_name=name, aws_conn_id=None)
    best_op.__dict__["hook"] = hook
    if job.best_candidate:  # a stopped job may keep the best of what finished
        best = best_op.execute({})
        assert best["CandidateName"] == job.best_candidate["CandidateName"]
    else:
        with pytest.raises(AutopilotJobFailed):
            best_op.execute({})


# --- a server restart that loses its state: the job is gone -----------------------------------------
restart_cases = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(sorted(OUTCOMES)),
        "mode": st.sampled_from(MODES),
        # the poll before which the server restarts with its state lost (after the first check)
        "restart_at": st.integers(min_value=1, max_value=14),
        "faults": st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=14), st.sampled_from(FAULT_KINDS), st.integers(1, 10)
            ),
            max_size=3,
        ),
    }
)


@settings(max_examples=200 if FULL_SUITE else 6, **SUITE_SETTINGS)
@given(case=restart_cases)
@example(case={"outcome": "success", "mode": "poke", "restart_at": 2, "faults": [(1, "refused", 3)]})
@example(case={"outcome": "failed", "mode": "reschedule", "restart_at": 3, "faults": [(3, "throttle", 2)]})
@example(case={"outcome": "stopped", "mode": "blocking", "restart_at": 1, "faults": [(0, "server-error", 2)]})
def test_a_job_lost_in_a_server_restart_ends_every_wait_as_not_found(
    case, fault_hook, autopilot_emulator, make_job
):
    """A poke or blocking wait that saw the job ends at ResourceNotFound at once; a reschedule
    check is a fresh sensor each time, which only its grace ends (0 here: no ResourceNotFound
    right after creation in these cases). So does a wait whose polls before the restart may all
    have failed (a fault burst starts before it): it never saw the job, and a grace of emulated
    polls would outlast the suite's poll budget."""
    hook, transport = fault_hook
    transport.pending.clear()
    autopilot_emulator.clear_faults()
    name = f"fzr-{next(_names)}"
    create_case_job(make_job, name, case["outcome"], STAGE_SECONDS)
    restarts = transport.restarts
    case = {
        **case,
        "faults": [*case["faults"], (case["restart_at"], "restart", 1)],
        "not_found_grace": (
            0.0
            if case["mode"] == "reschedule" or any(at < case["restart_at"] for at, _, _ in case["faults"])
            else DEFAULT_NOT_FOUND_GRACE_SECONDS
        ),
    }
    if case["mode"] == "blocking":
        verdict = _wait_blocking(case, name, hook, transport, autopilot_emulator)
    else:
        verdict = _wait_by_pokes(case, name, hook, transport, autopilot_emulator)
    transport.pending.clear()
    if transport.restarts == restarts:  # the job ended, and the wait with it, before the restart
        assert verdict == OUTCOMES[case["outcome"]], case
    else:
        assert verdict == "not found", case


# --- bad input data: the job itself fails; every wait must say so, through the same faults --------
#: Input the emulator's analysis must turn into a Failed job with a ClientError FailureReason.
BAD_DATA = {
    "unbalanced-quote": (b'age,income,churn\n1,2,"yes\n3,4,no\n', None),
    "field-over-128KiB": (b"age,income,churn\n" + b"9" * 140_000 + b",1,yes\n2,3,no\n", None),
    "gzip-without-compression-type": (gzip.compress(TRAINING_CSV.encode()), None),
    "plain-data-said-gzip": (TRAINING_CSV.encode(), "Gzip"),
    "truncated-gzip": (gzip.compress(TRAINING_CSV.encode())[:-12], "Gzip"),
}

bad_data_cases = st.fixed_dictionaries(
    {
        "data": st.sampled_from(sorted(BAD_DATA)),
        "mode": st.sampled_from(MODES),
        "faults": st.lists(
            st.tuples(
                st.integers(min_value=0, max_value=6), st.sampled_from(FAULT_KINDS), st.integers(1, 10)
            ),
            max_size=3,
        ),
    }
)


@settings(max_examples=40 if FULL_SUITE else 8, **SUITE_SETTINGS)
@given(case=bad_data_cases)
def test_bad_data_ends_every_wait_as_a_failure(case, fault_hook, autopilot_emulator, make_job):
    hook, transport = fault_hook
    transport.pending.clear()
    autopilot_emulator.clear_faults()
    name = f"fzb-{next(_names)}"
    body, compression = BAD_DATA[case["data"]]
    upload_training_data()
    autopilot_emulator.client("s3").put_object(Bucket=DATA_BUCKET, Key=f"{name}/data.csv", Body=body)
    channel = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA_BUCKET}/{name}/"}},
        "TargetAttributeName": "churn",
        **({"CompressionType": compression} if compression else {}),
    }
    tags = {"autopilot-emulator:stage-seconds": str(STAGE_SECONDS)}
    make_job(name, tags=tags, InputDataConfig=[channel])
    case = {**case, "outcome": "failed"}
    if case["mode"] == "blocking":
        verdict = _wait_blocking(case, name, hook, transport, autopilot_emulator)
    else:
        verdict = _wait_by_pokes(case, name, hook, transport, autopilot_emulator)
    assert verdict == "failure"
    transport.pending.clear()
    autopilot_emulator.clear_faults()
    job = hook.get_job(name)
    assert (job.status, job.secondary_status) == ("Failed", "Failed")
    assert (job.failure_reason or "").startswith("ClientError: "), job.failure_reason


# --- a real network that hangs or refuses for a while, then heals (emulator server, real time) ----
NETWORK_TIMEOUT = 8.0
NETWORK_POLL = 0.2

network_cases = st.fixed_dictionaries(
    {
        "outcome": st.sampled_from(["success", "failed"]),
        "mode": st.sampled_from(["poke", "blocking"]),
        # (kind, start, seconds): every window is over well before the wait's timeout
        "windows": st.lists(
            st.tuples(
                st.sampled_from(["hang", "refuse"]),
                st.floats(min_value=0.0, max_value=1.5),
                st.floats(min_value=0.1, max_value=1.0),
            ),
            max_size=3,
        ),
    }
)


@settings(**NETWORK_SETTINGS)
@given(case=network_cases)
@example(case={"outcome": "success", "mode": "poke", "windows": [("hang", 0.0, 0.5), ("refuse", 0.6, 0.4)]})
@example(
    case={"outcome": "failed", "mode": "blocking", "windows": [("refuse", 0.0, 0.4), ("hang", 0.5, 0.5)]}
)
def test_waits_through_a_network_that_hangs_or_refuses_end_with_the_true_outcome(
    case, autopilot_emulator_server, make_job, monkeypatch
):
    """Default botocore settings (60 s timeouts, 9 attempts): only the wait's deadline bounds a call."""
    import time

    from tests.network_faults import faulty_network

    server = autopilot_emulator_server
    name = f"fzn-{next(_names)}"
    create_case_job(make_job, name, case["outcome"], 0.1)
    proxy = faulty_network(server.port, case["windows"], monkeypatch)
    proxy.start_clock()
    started = time.monotonic()
    try:
        if case["mode"] == "blocking":
            try:
                AutopilotHook(aws_conn_id="faulty_network").wait_for_job(
                    name,
                    WaitCriteria(),
                    poll_interval=NETWORK_POLL,
                    timeout=NETWORK_TIMEOUT,
                    candidate_interval=0,
                )
                verdict = "success"
            except AutopilotJobFailed:
                verdict = "failure"
        else:
            sensor = AutopilotJobSensor(
                task_id=f"wait_{name}",
                job_name=name,
                aws_conn_id="faulty_network",
                poke_interval=NETWORK_POLL,
                timeout=NETWORK_TIMEOUT,
                candidate_interval=0,
            )
            try:
                sensor.execute(make_context(sensor))
                verdict = "success"
            except AutopilotJobFailed:
                verdict = "failure"
    finally:
        proxy.close()
    elapsed = time.monotonic() - started
    assert verdict == OUTCOMES[case["outcome"]], case
    assert elapsed < NETWORK_TIMEOUT, f"{elapsed:.1f}s: the network healed long before the timeout"

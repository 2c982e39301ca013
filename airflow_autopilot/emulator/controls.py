"""Per-job controls (tags and name prefixes), fault injection, invocation and alarm outcomes of
endpoints, and request counting."""

from __future__ import annotations

import fnmatch
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

TAG_PREFIX = "autopilot-emulator:"
TAG_OUTCOME = TAG_PREFIX + "outcome"
TAG_STAGE_SECONDS = TAG_PREFIX + "stage-seconds"
TAG_THROTTLE = TAG_PREFIX + "throttle"
TAG_SERVER_ERRORS = TAG_PREFIX + "server-errors"
TAG_NOT_FOUND = TAG_PREFIX + "not-found"
#: Tag of an endpoint config: how an UpdateEndpoint onto that config ends.
TAG_UPDATE_OUTCOME = TAG_PREFIX + "update-outcome"

OUTCOME_SUCCESS = "success"
OUTCOME_FAILED = "failed"
OUTCOME_STOPPED = "stopped"
OUTCOME_RUNTIME_LIMIT = "runtime-limit"
OUTCOME_RUNTIME_LIMIT_NO_CANDIDATE = "runtime-limit-no-candidate"
OUTCOME_DEPLOY_ERROR = "deploy-error"
OUTCOME_SLOW = "slow"

OUTCOMES = (
    OUTCOME_SUCCESS,
    OUTCOME_FAILED,
    OUTCOME_STOPPED,
    OUTCOME_RUNTIME_LIMIT,
    OUTCOME_RUNTIME_LIMIT_NO_CANDIDATE,
    OUTCOME_DEPLOY_ERROR,
    OUTCOME_SLOW,
)
#: UpdateEndpoint outcomes: the endpoint serves the new config, or SageMaker rolls the update back
#: (the endpoint returns to InService on its previous config, with a FailureReason).
UPDATE_OUTCOME_SUCCESS = "success"
UPDATE_OUTCOME_ROLLBACK = "rollback"
UPDATE_OUTCOMES = (UPDATE_OUTCOME_SUCCESS, UPDATE_OUTCOME_ROLLBACK)
#: FailureReason of a rolled-back update (SageMaker's wording for a container that never got healthy).
ROLLBACK_FAILURE_REASON = (
    "The primary container for production variant AllTraffic did not pass the ping health check. "
    "Please check CloudWatch logs for this endpoint. The update was rolled back to the previous "
    "endpoint configuration."
)

#: Stage duration multiplier of the ``slow`` outcome.
SLOW_FACTOR = 20.0

# Longest outcome first so that "runtime-limit-no-candidate" wins over "runtime-limit".
_PREFIX_RE = re.compile(
    r"^emu-(" + "|".join(re.escape(o) for o in sorted(OUTCOMES, key=len, reverse=True)) + r")-"
)

#: Operations that per-job faults apply to (they name one job in ``AutoMLJobName``).
JOB_FAULT_OPERATIONS = frozenset({"DescribeAutoMLJob", "DescribeAutoMLJobV2", "ListCandidatesForAutoMLJob"})
DESCRIBE_OPERATIONS = frozenset({"DescribeAutoMLJob", "DescribeAutoMLJobV2"})

FAULT_THROTTLE = "throttle"
FAULT_SERVER_ERROR = "server-error"
FAULT_NOT_FOUND = "not-found"
FAULT_ACCESS_DENIED = "access-denied"
FAULT_EXPIRED_TOKEN = "expired-token"


def outcome_from_name(job_name: str) -> str | None:
    """Return the outcome selected by an ``emu-<outcome>-`` name prefix, if any.

    :param job_name: the AutoML job name.
    """
    match = _PREFIX_RE.match(job_name)
    return match.group(1) if match else None


def update_outcome(tags: Iterable[dict[str, str]] | None) -> str:
    """Return how an UpdateEndpoint onto an endpoint config with these tags ends.

    :param tags: the endpoint config's tags.
    :raises ValueError: for a value not in :data:`UPDATE_OUTCOMES`.
    """
    outcome = tags_to_dict(tags).get(TAG_UPDATE_OUTCOME, UPDATE_OUTCOME_SUCCESS)
    if outcome not in UPDATE_OUTCOMES:
        raise ValueError(
            f"Unknown {TAG_UPDATE_OUTCOME} value '{outcome}'. Known: {', '.join(UPDATE_OUTCOMES)}."
        )
    return outcome


def tags_to_dict(tags: Iterable[dict[str, str]] | None) -> dict[str, str]:
    """Turn an AWS tag list into a dict.

    :param tags: ``[{"Key": ..., "Value": ...}]`` or ``None``.
    """
    return {t["Key"]: t.get("Value", "") for t in tags or []}


@dataclass
class FaultBudget:
    """Remaining faults to inject: each answered request consumes one."""

    throttle: int = 0
    server_errors: int = 0
    not_found: int = 0
    access_denied: int = 0
    expired_token: int = 0

    def empty(self) -> bool:
        """Return True when no fault is left."""
        return (
            self.throttle <= 0
            and self.server_errors <= 0
            and self.not_found <= 0
            and self.access_denied <= 0
            and self.expired_token <= 0
        )

    def take(self, operation: str) -> str | None:
        """Consume and return the next fault that applies to ``operation``, or ``None``.

        :param operation: the SageMaker operation name; not-found faults only hit describe calls.
        """
        if self.throttle > 0:
            self.throttle -= 1
            return FAULT_THROTTLE
        if self.server_errors > 0:
            self.server_errors -= 1
            return FAULT_SERVER_ERROR
        if self.not_found > 0 and operation in DESCRIBE_OPERATIONS:
            self.not_found -= 1
            return FAULT_NOT_FOUND
        if self.access_denied > 0:
            self.access_denied -= 1
            return FAULT_ACCESS_DENIED
        if self.expired_token > 0:
            self.expired_token -= 1
            return FAULT_EXPIRED_TOKEN
        return None


# Process-wide and locked: a threaded server and the test that drives it share this state.
@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)
    any_request: FaultBudget = field(default_factory=FaultBudget)
    per_job: dict[str, FaultBudget] = field(default_factory=dict)
    denied: set[str] = field(default_factory=set)
    invocation_failures: list[InvocationFailure] = field(default_factory=list)
    alarm_triggers: list[AlarmTrigger] = field(default_factory=list)


#: Status and message of the ModelError an injected invocation failure answers by default.
DEFAULT_FAILURE_STATUS = 500
DEFAULT_FAILURE_MESSAGE = "The model container failed to score the row (injected by the autopilot emulator)."


@dataclass(frozen=True)
class InvocationFailure:
    """Invocations of matching models answer ``ModelError`` (see :func:`fail_invocations`)."""

    model_name: str = "*"
    matching: str | None = None
    status: int = DEFAULT_FAILURE_STATUS
    message: str = DEFAULT_FAILURE_MESSAGE
    #: Models that existed when the failure was set, spared by ``new_models_only``.
    spared: frozenset[str] = frozenset()

    def applies(self, model_name: str, row: str) -> bool:
        """Whether a row sent to ``model_name`` fails.

        :param model_name: the model the answering variant serves.
        :param row: the row as the model reads it (a CSV record).
        """
        return (
            model_name not in self.spared
            and fnmatch.fnmatchcase(model_name, self.model_name)
            and (self.matching is None or self.matching in row)
        )


@dataclass(frozen=True)
class AlarmTrigger:
    """A CloudWatch alarm put into ALARM when a deployment enters a phase (see :func:`fire_alarm`)."""

    alarm_name: str
    phase: str
    endpoint_name: str | None = None


_state = _State()


def deny(*operations: str) -> None:
    """Answer every request of these operations with ``AccessDeniedException`` until cleared, as
    for a role without the IAM permission (``sagemaker:ListAutoMLJobs`` for ``ListAutoMLJobs``).

    :param operations: SageMaker operation names, e.g. ``ListAutoMLJobs``.
    """
    with _state.lock:
        _state.denied.update(operations)


def denied_operations() -> list[str]:
    """Return the operations answered with ``AccessDeniedException``."""
    with _state.lock:
        return sorted(_state.denied)


def inject_faults(
    job_name: str | None = None,
    throttle: int = 0,
    server_errors: int = 0,
    not_found: int = 0,
    access_denied: int = 0,
    expired_token: int = 0,
) -> None:
    """Queue faults for the next requests; they add to faults already queued.

    Without ``job_name`` the faults hit the next SageMaker requests of any operation (``not_found``
    only hits describe calls). With ``job_name`` they hit only DescribeAutoMLJob(V2) and
    ListCandidatesForAutoMLJob requests for that job. Throttles are served first, then server
    errors, then not-found, access-denied and expired-token answers.

    :param job_name: the job the faults are about, or ``None`` for any next request.
    :param throttle: how many requests answer HTTP 400 ``ThrottlingException``.
    :param server_errors: how many requests answer HTTP 500 ``InternalFailure``.
    :param not_found: how many describe requests answer ``ResourceNotFound``.
    :param access_denied: how many requests answer HTTP 400 ``AccessDeniedException`` (a role
        without the permission).
    :param expired_token: how many requests answer HTTP 400 ``ExpiredTokenException`` (temporary
        credentials that ran out).
    """
    if min(throttle, server_errors, not_found, access_denied, expired_token) < 0:
        raise ValueError("fault counts must not be negative")
    with _state.lock:
        if job_name is None:
            budget = _state.any_request
        else:
            budget = _state.per_job.setdefault(job_name, FaultBudget())
        budget.throttle += throttle
        budget.server_errors += server_errors
        budget.not_found += not_found
        budget.access_denied += access_denied
        budget.expired_token += expired_token


def clear_faults() -> None:
    """Drop every queued fault, denied operation, invocation failure and alarm trigger."""
    with _state.lock:
        _state.any_request = FaultBudget()
        _state.per_job.clear()
        _state.denied.clear()
        _state.invocation_failures.clear()
        _state.alarm_triggers.clear()


def fail_invocations(
    model_name: str = "*",
    matching: str | None = None,
    status: int = DEFAULT_FAILURE_STATUS,
    message: str | None = None,
    new_models_only: bool = False,
    existing_models: Iterable[str] = (),
) -> InvocationFailure:
    """Make InvokeEndpoint answer ``ModelError`` for rows sent to matching models, until cleared.

    :param model_name: the models (a shell-style pattern: ``*`` for every one).
    :param matching: fail only rows containing this text (``None``: every row).
    :param status: the container's HTTP status in the ModelError (``OriginalStatusCode``), 400 to 599.
    :param message: the container's message (``OriginalMessage``).
    :param new_models_only: spare the models in ``existing_models`` (the ones that exist now), so an
        endpoint's old model keeps answering while the new one fails.
    :param existing_models: the names of the models that exist now.
    :raises ValueError: for a status outside 400 to 599 or an empty pattern.
    """
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ValueError(f"status: {status!r} must be an HTTP error status from 400 to 599")
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f"model_name: {model_name!r} must be a non-empty model name or pattern")
    if matching is not None and not isinstance(matching, str):
        raise ValueError(f"matching: {matching!r} must be text or None")
    failure = InvocationFailure(
        model_name=model_name,
        matching=matching,
        status=status,
        message=message or DEFAULT_FAILURE_MESSAGE,
        spared=frozenset(existing_models) if new_models_only else frozenset(),
    )
    with _state.lock:
        _state.invocation_failures.append(failure)
    return failure


def invocation_failure(model_name: str, row: str) -> InvocationFailure | None:
    """The injected failure that applies to a row sent to ``model_name``, if any (the first set).

    :param model_name: the model the answering variant serves.
    :param row: the row as the model reads it.
    """
    with _state.lock:
        return next((f for f in _state.invocation_failures if f.applies(model_name, row)), None)


def invocation_failures() -> list[InvocationFailure]:
    """Return the invocation failures set."""
    with _state.lock:
        return list(_state.invocation_failures)


def fire_alarm(alarm_name: str, phase: str, endpoint_name: str | None = None) -> AlarmTrigger:
    """Put a CloudWatch alarm into ALARM when the next deployment (of ``endpoint_name``, or of any
    endpoint) enters ``phase``; the trigger is used up then.

    :param alarm_name: the alarm (it must exist in the emulator's CloudWatch by then).
    :param phase: a deployment phase (see :data:`airflow_autopilot.emulator.guardrails.PHASES`).
    :param endpoint_name: the endpoint whose deployment fires it, or ``None`` for any.
    :raises ValueError: for an unknown phase or an empty alarm name.
    """
    from airflow_autopilot.emulator.guardrails import PHASES

    if not isinstance(alarm_name, str) or not alarm_name:
        raise ValueError(f"alarm_name: {alarm_name!r} must be a non-empty alarm name")
    if phase not in PHASES:
        raise ValueError(f"phase: {phase!r} is not a deployment phase; known: {', '.join(PHASES)}")
    trigger = AlarmTrigger(alarm_name, phase, endpoint_name)
    with _state.lock:
        _state.alarm_triggers.append(trigger)
    return trigger


def take_alarm_triggers(endpoint_name: str, phase: str) -> list[str]:
    """Use up and return the alarms to fire as ``endpoint_name``'s deployment enters ``phase``.

    :param endpoint_name: the endpoint being deployed.
    :param phase: the phase it enters.
    """
    with _state.lock:
        due = [
            t for t in _state.alarm_triggers if t.phase == phase and t.endpoint_name in (None, endpoint_name)
        ]
        for trigger in due:
            _state.alarm_triggers.remove(trigger)
        return [t.alarm_name for t in due]


def alarm_triggers() -> list[AlarmTrigger]:
    """Return the alarm triggers not used yet."""
    with _state.lock:
        return list(_state.alarm_triggers)


def pending_faults() -> FaultBudget:
    """Return a copy of the faults still queued for any request."""
    with _state.lock:
        return replace(_state.any_request)


def take_fault(operation: str, job_name: str | None) -> str | None:
    """Consume and return the fault to serve for this request, or ``None``.

    :param operation: the SageMaker operation name, e.g. ``DescribeAutoMLJob``.
    :param job_name: the request's ``AutoMLJobName``, if any.
    """
    with _state.lock:
        if operation in _state.denied:
            return FAULT_ACCESS_DENIED
        fault = _state.any_request.take(operation)
        if fault is None and job_name and operation in JOB_FAULT_OPERATIONS:
            budget = _state.per_job.get(job_name)
            if budget is not None:
                fault = budget.take(operation)
                if budget.empty():
                    del _state.per_job[job_name]
        return fault


#: Callables told of every SageMaker request (:func:`observe_requests`).
_observers: list[Callable[[str, str], None]] = []


def observe_requests(observer: Callable[[str, str], None]) -> Callable[[], None]:
    """Have ``observer`` called with the operation name and the ``User-Agent`` of every SageMaker
    request from now on (resets leave it in place); return a function that removes it.

    The seam that lets a test compare the operations a run made with the IAM policy it was given
    (:mod:`airflow_autopilot.core.permissions`).

    :param observer: called in the request's thread; it must not raise.
    """
    _observers.append(observer)
    return lambda: _observers.remove(observer) if observer in _observers else None


def count_request(operation: str, user_agent: str = "") -> None:
    """Count one request of ``operation`` and tell the observers.

    :param operation: the SageMaker operation name.
    :param user_agent: the request's ``User-Agent`` (Airflow's hooks name themselves in it).
    """
    with _state.lock:
        _state.counts[operation] += 1
    for observer in list(_observers):
        observer(operation, user_agent)


def request_counts() -> dict[str, int]:
    """Return the SageMaker requests seen per operation since the last reset."""
    with _state.lock:
        return dict(_state.counts)


def reset_request_counts() -> None:
    """Zero the per-operation request counters."""
    with _state.lock:
        _state.counts.clear()


class RequestGate:
    """Requests run together; a reset waits for the ones in flight and holds new ones back.

    A real server that restarts loses its state between two answers, never in the middle of one:
    without the gate a reset could wipe S3 while a describe was finishing a job's candidates, and
    that answer would show a Completed job with no BestCandidate.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._in_flight = 0
        self._resetting = False

    @contextmanager
    def request(self) -> Iterator[None]:
        """Hold one request's handling."""
        with self._changed:
            self._changed.wait_for(lambda: not self._resetting)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold a reset: after the requests in flight, before any new one."""
        with self._changed:
            self._changed.wait_for(lambda: not self._resetting)
            self._resetting = True
            self._changed.wait_for(lambda: self._in_flight == 0)
        try:
            yield
        finally:
            with self._changed:
                self._resetting = False
                self._changed.notify_all()


#: The emulator server's requests and resets (in-process clients have no requests in flight).
REQUEST_GATE = RequestGate()

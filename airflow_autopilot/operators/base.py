"""What every Autopilot operator and the sensor share: connection parameters and hooks
(:class:`AutopilotConnectionMixin`), the glue between the wait machines and Airflow
(:class:`DeferAndResumeMixin`: check once, defer, resume), and the ended-job check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import AirflowSkipException, BaseOperator

from airflow_autopilot.exceptions import (
    AutopilotError,
    AutopilotJobFailed,
    AutopilotWaitError,
    AutopilotWaitTimeout,
)

#: Extra seconds Airflow's defer timeout allows beyond a trigger's own deadline, so the trigger's
#: timeout event (with the last state seen) arrives before Airflow's generic one.
DEFER_TIMEOUT_MARGIN_SECONDS = 120.0


def trigger_deadline(timeout: float | None, poll_interval: float) -> tuple[str | None, timedelta | None]:
    """
    A trigger's ``timeout_at`` (ISO 8601 UTC) for ``timeout`` seconds from now, and Airflow's defer
    timeout, which allows :data:`DEFER_TIMEOUT_MARGIN_SECONDS` (or a poll interval) more.

    :param timeout: seconds the wait may take; ``None`` or 0 for no limit (both ``None``).
    :param poll_interval: the trigger's poll interval.
    """
    if not timeout:
        return None, None
    from airflow_autopilot.core.clock import default_clock

    timeout_at = (default_clock().now() + timedelta(seconds=timeout)).isoformat()
    return timeout_at, timedelta(seconds=timeout + max(DEFER_TIMEOUT_MARGIN_SECONDS, poll_interval))


# The wait machines (airflow_autopilot.core.waits) are imported where a task runs, not here:
# DAG files import this module, and parsing them needs none of it.
if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_autopilot.core.job import AutopilotJob
    from airflow_autopilot.core.waits.endpoint import EndpointWait
    from airflow_autopilot.core.waits.job import JobWait
    from airflow_autopilot.core.waits.machine import WaitMachine
    from airflow_autopilot.hooks import AutopilotHook, AutopilotModelHook

#: Template fields of the connection parameters, shared by every operator.
AWS_TEMPLATE_FIELDS: tuple[str, ...] = ("aws_conn_id", "region_name", "verify", "botocore_config")


def botocore_config_dict(botocore_config: Any) -> dict[str, Any] | None:
    """
    A botocore ``Config`` or dict as a plain dict (trigger kwargs must be JSON-safe).

    :param botocore_config: ``None``, a dict of ``Config`` arguments, or a ``botocore.config.Config``.
    :raises TypeError: naming the parameter, for anything else.
    """
    if botocore_config is None:
        return None
    if isinstance(botocore_config, dict):
        return dict(botocore_config)
    options = getattr(botocore_config, "_user_provided_options", None)
    if isinstance(options, dict):
        return dict(options)
    raise TypeError(
        f"botocore_config: expected a dict or botocore Config, got {type(botocore_config).__name__}"
    )


class AutopilotConnectionMixin:
    """
    The hook and trigger connection kwargs of a task with ``aws_conn_id``, ``region_name``,
    ``verify`` and ``botocore_config`` attributes (operators and the sensor).
    """

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: Any

    @cached_property
    def hook(self) -> AutopilotHook:
        """The Autopilot hook for this task's connection (built on first use, never in ``__init__``)."""
        from airflow_autopilot.core.permissions import package_class
        from airflow_autopilot.hooks import AutopilotHook

        hook = AutopilotHook(**self.hook_kwargs())
        hook.caller = package_class(self)
        return hook

    @cached_property
    def model_hook(self) -> AutopilotModelHook:
        """The promotion hook (Model Registry, models, endpoints) for this task's connection."""
        from airflow_autopilot.core.permissions import package_class
        from airflow_autopilot.hooks import AutopilotModelHook

        hook = AutopilotModelHook(**self.hook_kwargs())
        hook.caller = package_class(self)
        return hook

    def hook_kwargs(self) -> dict[str, Any]:
        """Arguments for any ``AwsBaseHook`` subclass with this task's connection parameters."""
        kwargs = self.connection_kwargs()
        kwargs["config"] = kwargs.pop("botocore_config")  # AwsBaseHook's name for it
        return kwargs

    def connection_kwargs(self) -> dict[str, Any]:
        """The connection parameters as trigger kwargs (names only: no credentials)."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": botocore_config_dict(self.botocore_config),
        }


class DeferAndResumeMixin(AutopilotConnectionMixin):
    """
    Waits of a task, sync or deferred: check once with a wait machine, defer to the matching
    trigger with the machine's settings, and resume (Airflow 3.0's stale resumes restart the try).
    """

    def defer(self, **kwargs: Any) -> Any:
        """Airflow's ``defer``, with the deferring try recorded where Airflow needs it (3.0)."""
        from airflow_autopilot._compat import record_deferral

        record_deferral()
        return super().defer(**kwargs)  # type: ignore[misc]

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        """Airflow's resume, except for a retry that Airflow 3.0 resumes with an earlier try's event:
        that try starts over (``_compat.restart_if_stale_resume``)."""
        from airflow_autopilot._compat import restart_if_stale_resume

        restarted, result = restart_if_stale_resume(self, context)
        if restarted:
            return result
        return super().resume_execution(next_method, next_kwargs, context)  # type: ignore[misc]

    def check_job_once(self, wait: JobWait) -> AutopilotJob | None:
        """
        Describe the job once and let ``wait`` decide: the job when it already succeeded, ``None``
        while it runs (or after a tolerated error); raise on a failure verdict or an intolerable error.

        :param wait: the wait's state machine (keeps the API version and progress between checks).
        """
        from airflow_autopilot.core.waits.machine import Finished, Sleep

        try:
            with self.hook.time_limit(wait.call_budget()):
                job = self.hook.get_job(wait.job_name, api_version=wait.api_version)
        except Exception as err:
            step = wait.on_error(err)
        else:
            step = wait.on_result(job)
            if isinstance(step, Sleep):
                with self.hook.time_limit(wait.call_budget()):
                    self.hook.count_candidates(wait.reporter, job)
        return step.outcome() if isinstance(step, Finished) else None

    def defer_job_wait(
        self, wait: JobWait, *, timeout: float | None, kwargs: dict[str, Any] | None = None
    ) -> None:
        """
        Defer to :class:`~airflow_autopilot.triggers.AutopilotJobTrigger` with ``wait``'s settings;
        ``execute_complete`` resumes with the event (and ``kwargs``).

        :param wait: the wait's state machine (criteria, poll interval, grace, candidate interval).
        :param timeout: seconds until the trigger gives up; ``None`` waits without limit.
        :param kwargs: extra keyword arguments for ``execute_complete``.
        """
        from airflow_autopilot.core.waits.job import hand_off
        from airflow_autopilot.triggers import AutopilotJobTrigger

        timeout_at, defer_timeout = trigger_deadline(timeout, wait.poll_interval)
        created_at = wait.created_at
        self.defer(  # type: ignore[attr-defined]
            trigger=AutopilotJobTrigger(
                wait.job_name,
                **self.connection_kwargs(),
                poll_interval=wait.poll_interval,
                timeout_at=timeout_at,
                criteria=wait.criteria.to_dict(),
                not_found_grace_seconds=wait.not_found_grace,
                created_at=created_at.isoformat() if isinstance(created_at, datetime) else created_at,
                candidate_interval=wait.reporter.candidate_interval,
                logged_state=list(wait.reporter.last_state) if wait.reporter.last_state else None,
                # What the check just before deferring saw: the trigger starts from it.
                last_seen=hand_off(wait.last) if wait.last is not None else None,
            ),
            method_name="execute_complete",
            kwargs=kwargs,
            timeout=defer_timeout,
        )

    def check_resource_once(
        self, wait: WaitMachine[dict[str, Any]], kind: str, name: str
    ) -> dict[str, Any] | None:
        """
        Describe a transform job or model package version once and let ``wait`` decide: the
        describe on success, ``None`` while waiting (or after a tolerated error); raise on failure.

        :param wait: the resource's wait machine (:func:`~airflow_autopilot.core.transform.resource_wait`).
        :param kind: ``transform-job`` or ``model-package``.
        :param name: the TransformJobName or ModelPackageArn.
        """
        from airflow_autopilot.core.waits.machine import Finished

        try:
            with self.model_hook.time_limit(wait.call_budget()):
                found = self.model_hook.describe_resource(kind, name)  # type: ignore[arg-type]
            if found is None:
                raise wait.missing()  # type: ignore[attr-defined]
        except Exception as err:
            step = wait.on_error(err)
        else:
            step = wait.on_result(found)
        return step.outcome() if isinstance(step, Finished) else None

    def defer_resource_wait(
        self,
        kind: str,
        name: str,
        *,
        poll_interval: float,
        timeout: float | None,
        kwargs: dict[str, Any] | None = None,
    ) -> None:
        """
        Defer to :class:`~airflow_autopilot.triggers.AutopilotResourceTrigger`; ``execute_complete``
        resumes with the event (and ``kwargs``).
        """
        from airflow_autopilot.triggers import AutopilotResourceTrigger

        timeout_at, defer_timeout = trigger_deadline(timeout, poll_interval)
        self.defer(  # type: ignore[attr-defined]
            trigger=AutopilotResourceTrigger(
                kind, name, **self.connection_kwargs(), poll_interval=poll_interval, timeout_at=timeout_at
            ),
            method_name="execute_complete",
            kwargs=kwargs,
            timeout=defer_timeout,
        )


class AutopilotBaseOperator(DeferAndResumeMixin, BaseOperator):
    """
    Base of the Autopilot operators: AWS connection parameters and a lazily built hook.

    :param aws_conn_id: the Airflow AWS connection (default ``aws_default``).
    :param region_name: AWS region; overrides the connection's.
    :param verify: SSL certificate verification, as in the Amazon provider.
    :param botocore_config: a dict of ``botocore.config.Config`` arguments.
    """

    template_fields: Sequence[str] = AWS_TEMPLATE_FIELDS

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    def wait_until_in_service(
        self,
        hook: AutopilotHook,
        endpoint_name: str,
        config_name: str | None,
        status: dict[str, Any],
        *,
        poll_interval: float,
        timeout: float,
        result: dict[str, Any],
        wait: EndpointWait | None = None,
    ) -> None:
        """
        Return once the endpoint is InService (on ``config_name`` when given), from ``status`` if it
        already is; otherwise wait with the hook, or defer to
        :class:`~airflow_autopilot.triggers.AutopilotEndpointTrigger` when ``self.deferrable``
        (``execute_complete`` then gets ``result`` back and calls :meth:`resolve_endpoint_event`).

        :param hook: the hook the task already uses (its client serves the blocking wait).
        :param endpoint_name: the endpoint.
        :param config_name: the EndpointConfigName it must serve; ``None`` accepts any.
        :param status: the latest DescribeEndpoint response.
        :param poll_interval: seconds between checks.
        :param timeout: give up after this many seconds.
        :param result: the task's return value, handed to ``execute_complete`` after a deferral.
        :param wait: the wait to drive (a rollout's, with its previous config and alarms); default:
            a plain wait for ``config_name``.
        :raises AutopilotJobFailed: when the endpoint is Failed, with SageMaker's FailureReason.
        """
        from airflow_autopilot.core.waits.endpoint import EndpointWait

        check = wait or EndpointWait(endpoint_name, config_name, poll_interval=poll_interval, log=self.log)
        if status and wait is not None:
            check.observe(status)  # the phase the update starts from
        verdict = check.verdict(status) if status else "waiting"
        if verdict == "success":
            self.log.info("Endpoint %s is InService", endpoint_name)
            return
        if verdict == "failure":
            raise AutopilotJobFailed(check.failure_message(status))
        if getattr(self, "deferrable", False):
            from airflow_autopilot.triggers import AutopilotEndpointTrigger

            timeout_at, defer_timeout = trigger_deadline(timeout, poll_interval)
            self.defer(
                trigger=AutopilotEndpointTrigger(
                    endpoint_name,
                    config_name=config_name,
                    previous_config=check.previous_config,
                    alarms=check.alarms or None,
                    phases=check.phases or None,
                    **self.connection_kwargs(),
                    poll_interval=poll_interval,
                    timeout_at=timeout_at,
                ),
                method_name="execute_complete",
                kwargs={"result": result},
                timeout=defer_timeout,
            )
        hook.wait_for_endpoint(
            endpoint_name, config_name=config_name, poll_interval=poll_interval, timeout=timeout, wait=wait
        )

    def resolve_endpoint_event(
        self, event: Mapping[str, Any] | None, result: dict[str, Any] | None
    ) -> dict[str, Any]:
        """
        The ``execute_complete`` side of :meth:`wait_until_in_service`: ``result`` on success; a Failed
        endpoint fails without retries, a timeout or error fails with retries.

        :param event: the trigger event.
        :param result: the return value saved before deferring.
        """
        endpoint = (result or {}).get("EndpointName")
        if isinstance(event, Mapping) and event.get("status") == "success":
            self.log.info("Endpoint %s is InService", endpoint)
            return dict(result or {})
        message = event.get("message") if isinstance(event, Mapping) else None
        text = f"Endpoint {endpoint!r} did not reach InService: {message or event!r}"
        if isinstance(event, Mapping) and event.get("status") == "failure":
            raise AutopilotJobFailed(text)
        raise AutopilotError(text)


def require_terminal(job: AutopilotJob, what: str) -> None:
    """
    Fail with a pointer to the sensor when ``job`` has not ended yet.

    Raises :class:`AutopilotError` (retries allowed: the job may have ended by the next try).

    :param job: the described job.
    :param what: the result being read, for the message (``"BestCandidate"``).
    """
    if job.is_terminal:
        return
    raise AutopilotError(
        f"Autopilot job {job.name!r} is {job.describe_state()}; its {what} is final only once the job "
        "has ended. Wait for it first: put an AutopilotJobSensor (airflow_autopilot.sensors) upstream, "
        "or create the job with AutopilotCreateJobOperator(wait_for_completion=True)."
    )


def resolve_event(event: Mapping[str, Any] | None, *, soft_fail: bool = False) -> dict[str, Any]:
    """
    The ``execute_complete`` side of a deferred wait: the job summary on success, else raise.

    :param event: the trigger event payload (may be ``None`` or malformed).
    :param soft_fail: raise ``AirflowSkipException`` instead of failing.
    :return: the success event's ``summary`` (JSON-safe; ``{}`` if it had none).
    :raises AutopilotJobFailed: for a failure, missing or malformed event (no retries).
    :raises AutopilotWaitTimeout: for a timeout event (a subclass of AutopilotJobFailed).
    :raises AirflowSkipException: instead of the above when ``soft_fail`` is set.
    :raises AutopilotWaitError: for an error event (permissions, credentials, a job never found):
        retries stay available, as in poke mode, and ``soft_fail`` does not skip it.
    """
    from airflow_autopilot.core.waits.machine import EVENT_STATUSES

    error: AutopilotJobFailed
    if isinstance(event, Mapping) and event.get("status") == "error":
        raise AutopilotWaitError(event.get("message") or f"Trigger event {dict(event)!r} is an error")
    if not isinstance(event, Mapping):
        error = AutopilotJobFailed(
            f"Trigger returned no usable event ({event!r}); cannot tell how the job ended"
        )
    elif event.get("status") == "success":
        return dict(event.get("summary") or {})
    else:
        status = event.get("status")
        message = event.get("message") or f"Trigger event {dict(event)!r} is not a success"
        job = event.get("job_name")
        if status == "timeout":
            error = AutopilotWaitTimeout(message)
        elif status in EVENT_STATUSES:
            error = AutopilotJobFailed(message)
        else:
            error = AutopilotJobFailed(
                f"Unexpected trigger event status {status!r} for job {job!r}: {message}"
            )
    if soft_fail:
        raise AirflowSkipException(f"Skipped (soft_fail): {error}") from error
    raise error


def resolve_resource_event(event: Mapping[str, Any] | None, *, soft_fail: bool = False) -> dict[str, Any]:
    """
    The ``execute_complete`` side of a deferred transform-job or approval wait: the last describe on
    success; a failure (Failed job, Rejected version) raises AutopilotJobFailed (no retries), or
    skips with ``soft_fail``; a timeout or error raises AutopilotError (retries stay available).

    :param event: the :class:`~airflow_autopilot.triggers.AutopilotResourceTrigger` event.
    :param soft_fail: skip instead of failing on a failure verdict.
    """
    if isinstance(event, Mapping) and event.get("status") == "success":
        return dict(event.get("description") or {})
    message = event.get("message") if isinstance(event, Mapping) else None
    text = str(message or f"Trigger returned no usable event ({event!r})")
    if isinstance(event, Mapping) and event.get("status") == "failure":
        if soft_fail:
            raise AirflowSkipException(f"Skipped (soft_fail): {text}")
        raise AutopilotJobFailed(text)
    raise AutopilotError(text)

"""
AutopilotJobSensor: wait for a SageMaker Autopilot (AutoML) job, in poke, reschedule or deferrable mode.

Import-light on purpose: boto3, botocore and the Amazon provider load only when the sensor runs.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.configuration import conf
from airflow.sdk.exceptions import AirflowSkipException

from airflow_autopilot.core.job import AutopilotJob, WaitCriteria
from airflow_autopilot.core.validation import validate_job_name
from airflow_autopilot.core.waiting import (
    DEFAULT_CANDIDATE_COUNT_INTERVAL,
    DEFAULT_NOT_FOUND_GRACE_SECONDS,
    ProgressReporter,
    resolve_event,
    tolerate_poll_error,
)
from airflow_autopilot.core.xcom import job_summary
from airflow_autopilot.exceptions import AutopilotJobFailed
from airflow_autopilot.links import AutopilotJobLink
from airflow_autopilot.operators.base import AutopilotConnectionMixin, botocore_config_dict

if TYPE_CHECKING:
    from airflow.sdk import Context


#: Extra seconds given to Airflow's own deferral timeout, so the trigger's timeout event (with the
#: job's last state) normally arrives first.
DEFER_TIMEOUT_MARGIN_SECONDS = 120.0


class AutopilotJobSensor(AutopilotConnectionMixin, BaseSensorOperator):
    """
    Wait until an Autopilot job succeeds; fail with SageMaker's own reason when it cannot.

    Works in ``poke`` and ``reschedule`` mode and, with ``deferrable=True``, frees the worker slot
    and waits in the triggerer (:class:`~airflow_autopilot.triggers.AutopilotJobTrigger`).

    Returns (pushes to XCom) the JSON-safe job summary of :func:`airflow_autopilot.core.xcom.job_summary`.
    A terminal failure raises :class:`~airflow_autopilot.exceptions.AutopilotJobFailed` (no retries
    burned) whose message holds the job name, status, secondary status, ``FailureReason`` and every
    ``PartialFailureMessage``; with ``soft_fail=True`` the task is skipped instead. Throttling, 5xx
    and connection errors are logged and retried; they never fail the sensor before its ``timeout``.

    :param job_name: the AutoMLJobName (templated).
    :param success_statuses: primary statuses that succeed (default ``Completed``).
    :param failure_statuses: primary statuses that fail (default ``Failed`` and ``Stopped``).
    :param target_secondary_statuses: secondary statuses that succeed early, for example
        ``CandidateDefinitionsGenerated`` or ``ModelTuning`` (default none).
    :param failure_secondary_statuses: secondary statuses that fail (default ``ModelDeploymentError``,
        which fails only when the job asked for a deployment).
    :param aws_conn_id: the Airflow AWS connection (default ``aws_default``).
    :param region_name: AWS region; overrides the connection's.
    :param verify: SSL certificate verification, as in the Amazon provider.
    :param botocore_config: botocore ``Config`` arguments (a dict).
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param not_found_grace_seconds: seconds after the wait began during which ResourceNotFound is
        taken as a job that is not visible yet (default 60).
    :param candidate_interval: minimum seconds between two ListCandidatesForAutoMLJob calls used to
        log training progress (default 300; 0 disables).
    :param poke_interval: seconds between polls in every mode (default 60).
    """

    template_fields: Sequence[str] = ("job_name",)
    operator_extra_links = (AutopilotJobLink(),)
    ui_color = "#66c3ff"

    def __init__(
        self,
        *,
        job_name: str,
        success_statuses: Collection[str] | None = None,
        failure_statuses: Collection[str] | None = None,
        target_secondary_statuses: Collection[str] | None = None,
        failure_secondary_statuses: Collection[str] | None = None,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        not_found_grace_seconds: float = DEFAULT_NOT_FOUND_GRACE_SECONDS,
        candidate_interval: float = DEFAULT_CANDIDATE_COUNT_INTERVAL,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.success_statuses = success_statuses
        self.failure_statuses = failure_statuses
        self.target_secondary_statuses = target_secondary_statuses
        self.failure_secondary_statuses = failure_secondary_statuses
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.deferrable = deferrable
        self.not_found_grace_seconds = not_found_grace_seconds
        self.candidate_interval = candidate_interval
        self._criteria: WaitCriteria | None = None
        self._reporter: ProgressReporter | None = None
        self._api_version: Literal["auto", "v1", "v2"] = "auto"
        self._wait_started: datetime | None = None
        self._link_persisted = False

    # --- set-up -----------------------------------------------------------------------------------
    @property
    def criteria(self) -> WaitCriteria:
        """The validated wait criteria (built on first use, in execute)."""
        if self._criteria is None:
            self._criteria = WaitCriteria.build(
                success_statuses=self.success_statuses,
                failure_statuses=self.failure_statuses,
                target_secondary_statuses=self.target_secondary_statuses,
                failure_secondary_statuses=self.failure_secondary_statuses,
            )
        return self._criteria

    def _prepare(self, context: Context) -> None:
        """Validate input (before any AWS call) and note when this wait began."""
        validate_job_name(self.job_name)
        _ = self.criteria
        botocore_config_dict(self.botocore_config)
        started: datetime | None = None
        if self.reschedule and not self.deferrable:
            try:
                started = context["ti"].get_first_reschedule_date(context)
            except Exception:  # outside a real task runner
                started = None
        self._wait_started = started or datetime.now(timezone.utc)
        self._reporter = ProgressReporter(self.job_name, self.log, candidate_interval=self.candidate_interval)

    def execute(self, context: Context) -> Any:
        self._prepare(context)
        if self.deferrable:
            return self._execute_deferrable(context)
        return super().execute(context)

    # --- one check --------------------------------------------------------------------------------
    def _persist_link(self, context: Context) -> None:
        if self._link_persisted:
            return
        self._link_persisted = True
        try:
            region, partition = self.hook.conn_region_name, self.hook.conn_partition
        except Exception:
            return
        AutopilotJobLink.persist(
            context, self, job_name=self.job_name, region_name=region, partition=partition
        )

    def _check(self, context: Context) -> tuple[AutopilotJob | None, str]:
        """Describe the job once: ``(job, verdict)``; ``(None, "waiting")`` after a tolerated error."""
        if self._reporter is None:  # poke() called directly
            self._prepare(context)
        assert self._reporter is not None
        try:
            job = self.hook.get_job(self.job_name, api_version=self._api_version)
        except Exception as err:
            if tolerate_poll_error(
                err,
                self.job_name,
                self.log,
                created_at=self._wait_started,
                not_found_grace=self.not_found_grace_seconds,
            ):
                return None, "waiting"
            raise
        self._api_version = job.api_version
        self._persist_link(context)
        self._reporter.update(job)
        verdict = self.criteria.verdict(job)
        if verdict == "waiting":
            self._reporter.count_candidates(self.hook, job)
        return job, verdict

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One check: the summary on success, ``False`` while waiting, raise on terminal failure."""
        job, verdict = self._check(context)
        if job is None or verdict == "waiting":
            return False
        if verdict == "failure":
            raise AutopilotJobFailed(job.failure_message())
        self.log.info("Autopilot job %s reached %s", self.job_name, job.describe_state())
        return PokeReturnValue(is_done=True, xcom_value=job_summary(job))

    # --- deferrable -------------------------------------------------------------------------------
    def _execute_deferrable(self, context: Context) -> Any:
        from airflow_autopilot.triggers import AutopilotJobTrigger

        job, verdict = self._check(context)
        if job is not None and verdict == "success":
            self.log.info("Autopilot job %s already reached %s", self.job_name, job.describe_state())
            return job_summary(job)
        if job is not None and verdict == "failure":
            error = AutopilotJobFailed(job.failure_message())
            if self.soft_fail:
                raise AirflowSkipException(f"Skipped (soft_fail): {error}") from error
            raise error
        timeout_at = None
        defer_timeout = None
        if self.timeout:
            timeout_at = (datetime.now(timezone.utc) + timedelta(seconds=self.timeout)).isoformat()
            defer_timeout = timedelta(
                seconds=self.timeout + max(DEFER_TIMEOUT_MARGIN_SECONDS, self.poke_interval)
            )
        assert self._wait_started is not None
        self.defer(
            trigger=AutopilotJobTrigger(
                self.job_name,
                **self.connection_kwargs(),
                poll_interval=self.poke_interval,
                timeout_at=timeout_at,
                criteria=self.criteria.to_dict(),
                not_found_grace_seconds=self.not_found_grace_seconds,
                created_at=self._wait_started.isoformat(),
                candidate_interval=self.candidate_interval,
            ),
            method_name="execute_complete",
            timeout=defer_timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """
        Resume after the trigger: the job summary on success, else fail (or skip with ``soft_fail``).

        :param context: the task context.
        :param event: the trigger event payload.
        """
        summary = resolve_event(event, soft_fail=self.soft_fail)
        self.log.info(
            "Autopilot job %s reached %s/%s",
            self.job_name,
            summary.get("AutoMLJobStatus"),
            summary.get("AutoMLJobSecondaryStatus"),
        )
        return summary

"""AutopilotJobSensor: wait for an Autopilot job in poke, reschedule or deferrable mode."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSkipException,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_autopilot.core.defaults import DEFAULT_CANDIDATE_COUNT_INTERVAL, DEFAULT_NOT_FOUND_GRACE_SECONDS
from airflow_autopilot.core.lineage_names import MODEL_PACKAGE_GROUP_ALIAS
from airflow_autopilot.exceptions import AutopilotJobFailed, AutopilotWaitError
from airflow_autopilot.links import AutopilotJobLink
from airflow_autopilot.operators.base import (
    DeferAndResumeMixin,
    botocore_config_dict,
    resolve_event,
    resolve_resource_event,
)
from airflow_autopilot.operators.lineage import AutopilotLineageMixin

# The domain core (validation, job facts, the wait state machine) is imported where the sensor
# runs: DAG files import this module, and parsing them needs none of it.
if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_autopilot.core.job import AutopilotJob, WaitCriteria
    from airflow_autopilot.core.waits.approval import ApprovalWait
    from airflow_autopilot.core.waits.job import JobWait


class AutopilotJobSensor(DeferAndResumeMixin, BaseSensorOperator):
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

    ``poke_interval`` (Airflow's, default 60) is the time between polls in every mode, the trigger's
    included; a value below :data:`~airflow_autopilot.core.waits.pace.MIN_POLL_INTERVAL_SECONDS`
    (1 s; Airflow allows 0) is raised to it, with a warning.
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
        # Airflow's own constructor turns these into timedeltas and fails with an OverflowError on
        # infinity: say which argument and why first. Everything else is checked in execute.
        floats = [name for name in ("timeout", "poke_interval") if isinstance(kwargs.get(name), float)]
        if floats:
            from airflow_autopilot.core.validation import raise_if, seconds_errors

            raise_if(
                [error for name in floats for error in seconds_errors(kwargs[name], name, allow_zero=True)],
                "AutopilotJobSensor arguments",
            )
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
        self._wait: JobWait | None = None
        self._link_persisted = False

    # --- set-up -----------------------------------------------------------------------------------
    @property
    def criteria(self) -> WaitCriteria:
        """The validated wait criteria (built on first use, in execute)."""
        if self._criteria is None:
            from airflow_autopilot.core.job import WaitCriteria

            self._criteria = WaitCriteria.build(
                success_statuses=self.success_statuses,
                failure_statuses=self.failure_statuses,
                target_secondary_statuses=self.target_secondary_statuses,
                failure_secondary_statuses=self.failure_secondary_statuses,
            )
        return self._criteria

    def validate(self) -> None:
        """
        Check every argument before any AWS call; raise one :class:`AutopilotValidationError` listing
        each problem, naming the argument and the rule.
        """
        from airflow_autopilot.core.validation import job_name_errors, raise_if, seconds_errors
        from airflow_autopilot.core.waits.pace import poll_interval_errors

        errors = job_name_errors(self.job_name, "job_name")
        errors += seconds_errors(self.timeout, "timeout", allow_zero=True)
        errors += poll_interval_errors(self.poke_interval, "poke_interval")
        errors += seconds_errors(self.not_found_grace_seconds, "not_found_grace_seconds", allow_zero=True)
        errors += seconds_errors(self.candidate_interval, "candidate_interval", allow_zero=True)
        try:
            _ = self.criteria  # built (and checked) now, before any AWS call
        except ValueError as err:
            errors.append(str(err))
        raise_if(errors, "AutopilotJobSensor arguments")

    def _prepare(self, context: Context) -> None:
        """Validate input (before any AWS call) and start the wait's state machine."""
        from airflow_autopilot.core.clock import default_clock, parse_timestamp
        from airflow_autopilot.core.waits.job import JobWait

        self.validate()
        botocore_config_dict(self.botocore_config)
        started: datetime | None = None
        if self.reschedule and not self.deferrable:
            try:
                # Airflow 3.0's in-process task runner hands over the API's ISO string unparsed.
                started = parse_timestamp(context["ti"].get_first_reschedule_date(context))
            except Exception:  # outside a real task runner
                started = None
        started = started or default_clock().now()
        self._wait = JobWait(
            self.job_name,
            self.criteria,
            poll_interval=self.poke_interval,
            # The sensor's own deadline: each check's calls are bounded by the time left.
            deadline=started + timedelta(seconds=self.timeout),
            log=self.log,
            not_found_grace=self.not_found_grace_seconds,
            created_at=started,
            candidate_interval=self.candidate_interval,
        )
        # The wait keeps poll intervals at or above the floor (warning when it raises one); poke
        # and reschedule mode sleep poke_interval between checks, so they keep to it too.
        self.poke_interval = self._wait.poll_interval

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

    def _check(self, context: Context) -> AutopilotJob | None:
        """One check: the job when it succeeded, ``None`` while waiting; raise on failure."""
        if self._wait is None:  # poke() called directly
            self._prepare(context)
        assert self._wait is not None
        job = self.check_job_once(self._wait)
        if self._wait.last is not None:
            self._persist_link(context)
        return job

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One check: the summary on success, ``False`` while waiting, raise on terminal failure."""
        job = self._check(context)
        if job is None:
            return False
        from airflow_autopilot.core.xcom import job_summary

        self.log.info("Autopilot job %s reached %s", self.job_name, job.describe_state())
        return PokeReturnValue(is_done=True, xcom_value=job_summary(job))

    # --- deferrable -------------------------------------------------------------------------------
    def _execute_deferrable(self, context: Context) -> Any:
        try:
            job = self._check(context)
        except AutopilotJobFailed as error:
            if self.soft_fail:
                raise AirflowSkipException(f"Skipped (soft_fail): {error}") from error
            raise
        if job is not None:
            from airflow_autopilot.core.xcom import job_summary

            self.log.info("Autopilot job %s already reached %s", self.job_name, job.describe_state())
            return job_summary(job)
        assert self._wait is not None
        self.defer_job_wait(self._wait, timeout=self.timeout or None)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except AirflowSkipException as skipped:
            # Airflow's sensor turns any error after a deferral into a skip with soft_fail; an error
            # that is not the job's outcome keeps its retries instead, as it does in poke mode.
            if isinstance(skipped.__cause__, AutopilotWaitError):
                raise skipped.__cause__ from None
            raise

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


class AutopilotModelApprovalSensor(AutopilotLineageMixin, DeferAndResumeMixin, BaseSensorOperator):
    """
    Wait until a person approves or rejects a model package version (its ``ModelApprovalStatus``,
    set in SageMaker Studio, with UpdateModelPackage, or by an Airflow Human-in-the-loop task).

    Approved succeeds and returns the JSON-safe DescribeModelPackage. Rejected fails the task
    (:class:`~airflow_autopilot.exceptions.AutopilotJobFailed`, no retries) with the
    ``ApprovalDescription``, or skips it and so its downstream tasks when ``on_rejection="skip"``.
    PendingManualApproval keeps waiting until ``timeout``. Works in poke, reschedule and deferrable
    mode (:class:`~airflow_autopilot.triggers.AutopilotResourceTrigger`); transient AWS errors never
    fail it before its timeout.

    :param model_package_arn: the version, e.g. ``"{{ ti.xcom_pull(task_ids='register')['ModelPackageArn'] }}"`` (templated).
    :param on_rejection: ``fail`` (default) or ``skip``.
    :param aws_conn_id: the Airflow AWS connection (default ``aws_default``).
    :param region_name: AWS region; overrides the connection's.
    :param verify: SSL certificate verification, as in the Amazon provider.
    :param botocore_config: botocore ``Config`` arguments (a dict).
    :param deferrable: wait in the triggerer; defaults to ``[operators] default_deferrable``.
    :param emit_asset_events: on approval, publish an asset event for the version's Model Package
        Group (the "new approved model" a downstream DAG can be scheduled on), with the version,
        candidate and objective in the extra; see ``docs/lineage.md``.
    """

    template_fields: Sequence[str] = ("model_package_arn", "on_rejection")
    asset_alias_name = MODEL_PACKAGE_GROUP_ALIAS
    ui_color = "#ffd966"

    def __init__(
        self,
        *,
        model_package_arn: str,
        on_rejection: str = "fail",
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        emit_asset_events: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.init_lineage(emit_asset_events)
        self.model_package_arn = model_package_arn
        self.on_rejection = on_rejection
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config
        self.deferrable = deferrable
        self._wait: ApprovalWait | None = None

    def _prepare(self) -> ApprovalWait:
        """Validate the inputs (before any AWS call) and start the wait's state machine."""
        from airflow_autopilot.core.validation import raise_if
        from airflow_autopilot.core.waits.approval import ApprovalWait
        from airflow_autopilot.core.waits.pace import poll_interval_errors

        errors = []
        arn = self.model_package_arn
        if not isinstance(arn, str) or ":model-package/" not in arn:
            errors.append(
                f"model_package_arn: {arn!r} must be a model package version ARN "
                "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>)"
            )
        if self.on_rejection not in ("fail", "skip"):
            errors.append(f"on_rejection: {self.on_rejection!r} must be fail or skip")
        errors += poll_interval_errors(self.poke_interval, "poke_interval")
        raise_if(errors, "AutopilotModelApprovalSensor arguments")
        botocore_config_dict(self.botocore_config)
        if self._wait is None:
            self._wait = ApprovalWait(
                arn, poll_interval=self.poke_interval, timeout=self.timeout or None, log=self.log
            )
            self.poke_interval = self._wait.poll_interval
        return self._wait

    def _check(self) -> dict[str, Any] | None:
        wait = self._prepare()
        try:
            return self.check_resource_once(wait, "model-package", self.model_package_arn)
        except AutopilotJobFailed as rejected:
            if self.on_rejection == "skip":
                raise AirflowSkipException(f"Skipped (on_rejection=skip): {rejected}") from rejected
            raise

    def execute(self, context: Context) -> Any:
        self._prepare()
        if not self.deferrable:
            return super().execute(context)
        package = self._check()
        if package is not None:
            return self._approved(context, package)
        self.defer_resource_wait(
            "model-package",
            self.model_package_arn,
            poll_interval=self.poke_interval,
            timeout=self.timeout or None,
        )

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """One check: the version on approval, ``False`` while pending, raise (or skip) on rejection."""
        package = self._check()
        if package is None:
            return False
        return PokeReturnValue(is_done=True, xcom_value=self._approved(context, package))

    def _approved(self, context: Context, package: dict[str, Any]) -> dict[str, Any]:
        from airflow_autopilot.core.lineage import LineageError, approval_lineage
        from airflow_autopilot.core.xcom import to_json_safe

        self.log.info("Model package %s is Approved", self.model_package_arn)
        try:
            self.record_lineage(context, approval_lineage(package))
        except LineageError as err:  # lineage never fails an approval
            self.log.warning("No lineage for %s: %s", self.model_package_arn, err)
        return dict(to_json_safe(package))  # type: ignore[arg-type]

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger: the version on approval, else fail or skip."""
        return self._approved(context, resolve_resource_event(event, soft_fail=self.on_rejection == "skip"))

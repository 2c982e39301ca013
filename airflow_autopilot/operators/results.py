"""Operators that hand an ended job's results to XCom, JSON-safe: BestCandidate, ModelDeployResult
(optionally waiting for the endpoint) and the top-K candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from airflow.providers.common.compat.sdk import AirflowSkipException, conf

from airflow_autopilot.exceptions import AutopilotJobFailed
from airflow_autopilot.operators.base import AWS_TEMPLATE_FIELDS, AutopilotBaseOperator, require_terminal

# The domain core is imported where a task runs: DAG files import this module, and parsing
# them needs none of it.
if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_autopilot.core.job import AutopilotJob


def _fail_or_skip(message: str, skip: bool) -> NoReturn:
    """Skip the task when ``skip`` is set, else fail it without burning retries (the job has ended)."""
    if skip:
        raise AirflowSkipException(message)
    raise AutopilotJobFailed(message)


class AutopilotBestCandidateOperator(AutopilotBaseOperator):
    """
    Push an ended job's ``BestCandidate`` to XCom, JSON-safe, with SageMaker's keys
    (``CandidateName``, ``FinalAutoMLJobObjectiveMetric``, ``InferenceContainers``,
    ``CandidateProperties``, ``CandidateSteps``, ``CandidateStatus``, ``ObjectiveStatus``, times as
    ISO 8601 strings ...).

    A job still running fails the task with a pointer to ``AutopilotJobSensor`` (retries allowed).
    An ended job without a BestCandidate (failed, stopped, runtime limit before any candidate
    finished, GenerateCandidateDefinitionsOnly) fails the task without retries, or skips it with
    ``skip_if_missing=True``, with the job's status, secondary status and reasons.

    :param job_name: the AutoMLJobName (templated).
    :param skip_if_missing: skip instead of failing when the ended job has no BestCandidate.
    """

    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "job_name")
    ui_color = "#e2efda"

    def __init__(self, *, job_name: str, skip_if_missing: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.skip_if_missing = skip_if_missing

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autopilot.core.validation import validate_job_name
        from airflow_autopilot.core.xcom import to_json_safe

        validate_job_name(self.job_name, "job_name")
        job = self.hook.get_job(self.job_name)
        require_terminal(job, "BestCandidate")
        best = job.best_candidate
        if not best:
            hint = (
                " The job was asked for candidate definitions only (GenerateCandidateDefinitionsOnly)."
                if job.generate_candidate_definitions_only
                else ""
            )
            _fail_or_skip(f"No BestCandidate. {job.failure_message()}.{hint}", self.skip_if_missing)
        if job.status != "Completed":
            self.log.warning("Returning the BestCandidate of a job that ended %s", job.describe_state())
        metric = best.get("FinalAutoMLJobObjectiveMetric") or {}
        self.log.info(
            "Best candidate of %s: %s (%s %s = %s)",
            job.name,
            best.get("CandidateName"),
            metric.get("Type", ""),
            metric.get("MetricName"),
            metric.get("Value"),
        )
        return to_json_safe(best)


class AutopilotModelDeployResultOperator(AutopilotBaseOperator):
    """
    Push an ended job's ``ModelDeployResult`` (``{"EndpointName": ...}``) to XCom, JSON-safe.

    A job that asked for no deployment (no ``ModelDeployConfig``), or whose deployment failed
    (secondary status ``ModelDeploymentError`` or no ``EndpointName``), fails the task without
    retries, or skips it with ``skip_if_missing=True``, with a message saying which. A job still
    running fails with a pointer to ``AutopilotJobSensor``.

    With ``wait_for_endpoint=True`` the task then waits until the endpoint is ``InService``
    (:meth:`AutopilotHook.wait_for_endpoint`), or when ``deferrable`` in the triggerer
    (:class:`~airflow_autopilot.triggers.AutopilotEndpointTrigger`).

    :param job_name: the AutoMLJobName (templated).
    :param skip_if_missing: skip instead of failing when there is no usable deployment.
    :param wait_for_endpoint: wait until the endpoint is InService.
    :param deferrable: wait for the endpoint in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between endpoint checks.
    :param max_attempts: endpoint checks before giving up.
    """

    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "job_name")
    ui_color = "#e2efda"

    def __init__(
        self,
        *,
        job_name: str,
        skip_if_missing: bool = False,
        wait_for_endpoint: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: int = 30,
        max_attempts: int = 120,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.skip_if_missing = skip_if_missing
        self.wait_for_endpoint = wait_for_endpoint
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_attempts = max_attempts

    def deploy_result(self, job: AutopilotJob) -> dict[str, Any]:
        """The ModelDeployResult of an ended job, or fail/skip with the reason."""
        from airflow_autopilot.core.xcom import to_json_safe

        require_terminal(job, "ModelDeployResult")
        if not job.deploy_requested:
            _fail_or_skip(
                f"Autopilot job {job.name!r} asked for no deployment (no ModelDeployConfig with "
                "AutoGenerateEndpointName or EndpointName), so it has no ModelDeployResult. "
                "Set model_deploy_config on AutopilotCreateJobOperator to have SageMaker deploy the "
                "best candidate.",
                self.skip_if_missing,
            )
        result = job.model_deploy_result or {}
        if job.secondary_status == "ModelDeploymentError" or not result.get("EndpointName"):
            _fail_or_skip(
                f"The deployment of Autopilot job {job.name!r} failed or did not happen "
                f"(ModelDeployResult: {to_json_safe(result)!r}). {job.failure_message()}",
                self.skip_if_missing,
            )
        return to_json_safe(result)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autopilot.core.validation import job_name_errors, raise_if
        from airflow_autopilot.core.waits.pace import poll_interval_errors

        errors = job_name_errors(self.job_name, "job_name")
        if self.wait_for_endpoint:
            errors += poll_interval_errors(self.poll_interval)
            attempts = self.max_attempts
            if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
                errors.append(f"max_attempts: {attempts!r} must be an integer of at least 1")
        raise_if(errors, "AutopilotModelDeployResultOperator arguments")
        result = self.deploy_result(self.hook.get_job(self.job_name))
        endpoint = result["EndpointName"]
        self.log.info("Autopilot job %s deployed endpoint %s", self.job_name, endpoint)
        if self.wait_for_endpoint:
            self.wait_until_in_service(
                self.hook,
                endpoint,
                None,
                self.hook.describe_endpoint_or_none(endpoint) or {},
                poll_interval=self.poll_interval,
                timeout=self.poll_interval * self.max_attempts,
                result=result,
            )
        return result

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, result: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """
        Resume after the endpoint trigger: the ModelDeployResult on success, else raise.

        :param context: the task context.
        :param event: the trigger event (``{"status": "success", ...}`` on success).
        :param result: the ModelDeployResult read before deferring.
        """
        return self.resolve_endpoint_event(event, result)


def _training_seconds(candidate: Mapping[str, Any]) -> float | None:
    """EndTime - CreationTime of a candidate; ``None`` when either is missing or malformed."""
    from airflow_autopilot.core.clock import parse_timestamp

    try:
        start, end = parse_timestamp(candidate.get("CreationTime")), parse_timestamp(candidate.get("EndTime"))
    except ValueError:
        return None
    if start is not None and end is not None:
        return (end - start).total_seconds()
    return None


def _format_seconds(seconds: float | None) -> str:
    from airflow_autopilot.core.clock import format_duration

    return "-" if seconds is None else format_duration(seconds)


def format_leaderboard(candidates: Sequence[Mapping[str, Any]]) -> str:
    """
    A plain-text table of candidates, in the given order: rank, name, metric, value, status and
    training time (EndTime - CreationTime).

    :param candidates: candidates as ListCandidatesForAutoMLJob returns them, or their JSON-safe
        form (ISO 8601 time strings).
    """
    header = ("#", "CandidateName", "Metric", "Value", "Status", "Training time")
    rows = [header]
    for rank, cand in enumerate(candidates, 1):
        metric = cand.get("FinalAutoMLJobObjectiveMetric") or {}
        value = metric.get("Value")
        seconds = _training_seconds(cand)
        rows.append(
            (
                str(rank),
                str(cand.get("CandidateName", "")),
                str(metric.get("MetricName", "-")),
                f"{value:.6g}" if isinstance(value, (int, float)) else "-",
                str(cand.get("CandidateStatus", "")),
                _format_seconds(seconds),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


class AutopilotCandidatesOperator(AutopilotBaseOperator):
    """
    Push the top-K candidates of a job, best first, to XCom as a JSON-safe list (each item with
    ListCandidatesForAutoMLJob's keys), and log a leaderboard table.

    "Best" follows the objective's direction (Maximize or Minimize). The job may still be running:
    the list then holds the candidates finished so far. An empty list is returned (with a warning)
    when no candidate matches.

    :param job_name: the AutoMLJobName (templated).
    :param top_k: how many candidates (at least 1).
    :param status: only candidates with this CandidateStatus (``Completed`` by default; ``None`` for all).
    """

    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "job_name", "top_k", "status")
    ui_color = "#e2efda"

    def __init__(
        self, *, job_name: str, top_k: int | str = 10, status: str | None = "Completed", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.job_name = job_name
        self.top_k = top_k
        self.status = status

    def execute(self, context: Context) -> list[dict[str, Any]]:
        from airflow_autopilot.core.job import CANDIDATE_STATUSES
        from airflow_autopilot.core.validation import job_name_errors, raise_if
        from airflow_autopilot.core.xcom import to_json_safe

        errors = job_name_errors(self.job_name, "job_name")
        top_k = self.top_k
        if isinstance(top_k, str) and top_k.strip().isdigit():
            top_k = int(top_k)
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            errors.append(f"top_k: {self.top_k!r} must be a positive integer")
        if self.status is not None and self.status not in CANDIDATE_STATUSES:
            errors.append(
                f"status: {self.status!r} must be one of {list(CANDIDATE_STATUSES)}, or None for every candidate"
            )
        raise_if(errors, "AutopilotCandidatesOperator arguments")
        assert isinstance(top_k, int)
        candidates = self.hook.list_candidates(self.job_name, status=self.status or None, limit=top_k)
        if not candidates:
            self.log.warning(
                "Autopilot job %s has no candidates%s yet",
                self.job_name,
                f" with status {self.status}" if self.status else "",
            )
            return []
        self.log.info(
            "Top %d candidate(s) of Autopilot job %s, best first:\n%s",
            len(candidates),
            self.job_name,
            format_leaderboard(candidates),
        )
        return to_json_safe(candidates)

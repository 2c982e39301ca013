"""The job model: status sets, what each secondary status means, a typed view of a job, and
the wait criteria that decide success or failure.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, Literal

# --- AutoMLJobStatus -----------------------------------------------------------------------------
COMPLETED = "Completed"
IN_PROGRESS = "InProgress"
FAILED = "Failed"
STOPPED = "Stopped"
STOPPING = "Stopping"

ALL_STATUSES = frozenset({COMPLETED, IN_PROGRESS, FAILED, STOPPED, STOPPING})
TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, STOPPED})
SUCCESS_STATUSES = frozenset({COMPLETED})
#: Unlike the Amazon provider, a Stopped job is a failure: nobody got a model from it.
FAILURE_STATUSES = frozenset({FAILED, STOPPED})

# --- AutoMLJobSecondaryStatus --------------------------------------------------------------------
#: Every secondary status SageMaker documents, with what it means to a user.
SECONDARY_STATUS_MEANINGS: Mapping[str, str] = {
    "Starting": "starting the AutoML job",
    "AnalyzingData": "analyzing the input data",
    "FeatureEngineering": "engineering features",
    "ModelTuning": "training and tuning candidates",
    "TrainingModels": "training models",
    "PreTraining": "preparing to train",
    "MaxCandidatesReached": "stopped: MaxCandidates reached",
    "MaxAutoMLJobRuntimeReached": "stopped: MaxAutoMLJobRuntimeInSeconds reached",
    "CandidateDefinitionsGenerated": "candidate definitions generated (no training was asked for)",
    "GeneratingExplainabilityReport": "generating the explainability report",
    "ExplainabilityError": "the explainability report failed",
    "GeneratingModelInsightsReport": "generating the model insights report",
    "ModelInsightsError": "the model insights report failed",
    "DeployingModel": "deploying the best candidate",
    "ModelDeploymentError": "deploying the best candidate failed",
    "Completed": "completed",
    "Failed": "failed",
    "Stopping": "stopping",
    "Stopped": "stopped",
}
ALL_SECONDARY_STATUSES = frozenset(SECONDARY_STATUS_MEANINGS)
#: Default failure secondaries. ModelDeploymentError counts only when a deployment was asked for.
DEFAULT_FAILURE_SECONDARY_STATUSES = frozenset({"ModelDeploymentError"})
#: Secondary statuses during which candidates are trained (progress worth counting).
TRAINING_SECONDARY_STATUSES = frozenset({"ModelTuning", "TrainingModels"})

# --- Candidates ----------------------------------------------------------------------------------
#: CandidateStatus values (what ListCandidatesForAutoMLJob's ``StatusEquals`` accepts).
CANDIDATE_STATUSES = ("Completed", "InProgress", "Failed", "Stopped", "Stopping")

# --- Objective metrics ---------------------------------------------------------------------------
#: Metrics where smaller is better; every other objective is maximized.
MINIMIZED_METRICS = frozenset(
    {
        "MSE",
        "RMSE",
        "MAE",
        "LogLoss",
        "InferenceLatency",
        # V2: time-series forecasting and text generation (LLM fine-tuning).
        "MAPE",
        "MASE",
        "WAPE",
        "AverageWeightedQuantileLoss",
        "ValidationLoss",
        "TrainingLoss",
        "Perplexity",
    }
)
#: Autopilot's objective metrics where larger is better.
MAXIMIZED_METRICS = frozenset(
    {
        "Accuracy",
        "AUC",
        "BalancedAccuracy",
        "F1",
        "F1macro",
        "Precision",
        "PrecisionMacro",
        "Recall",
        "RecallMacro",
        "R2",
        "Rouge1",
        "Rouge2",
        "RougeL",
        "RougeLSum",
    }
)


def known_metric_direction(metric_name: str) -> Literal["Maximize", "Minimize"] | None:
    """
    The direction of one of Autopilot's own objective metrics, ``None`` for a name it does not define.

    :param metric_name: an objective MetricName.
    """
    if metric_name in MINIMIZED_METRICS:
        return "Minimize"
    if metric_name in MAXIMIZED_METRICS:
        return "Maximize"
    return None


def metric_direction(metric_name: str) -> Literal["Maximize", "Minimize"]:
    """
    Whether an objective metric is maximized or minimized.

    :param metric_name: an AutoMLJobObjective MetricName, such as ``F1`` or ``MSE``.
    """
    return "Minimize" if metric_name in MINIMIZED_METRICS else "Maximize"


def _dig(payload: Mapping[str, Any], *path: str) -> Any:
    node: Any = payload
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            return None
        node = node[key]
    return node


def server_time(response: Mapping[str, Any]) -> datetime | None:
    """
    When the server answered: the HTTP ``Date`` header of a boto3/aiobotocore response (UTC,
    whole seconds), or ``None`` when the response carries none.

    :param response: a response with its ``ResponseMetadata``.
    """
    headers = _dig(response, "ResponseMetadata", "HTTPHeaders") or {}
    value = headers.get("date") if isinstance(headers, Mapping) else None
    if not isinstance(value, str):
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.astimezone(timezone.utc) if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


# --- what each way of reading a job shows of it ---------------------------------------------------
#: Where a job's state was read: a describe (every field), a ListAutoMLJobs summary, or the
#: describe fields a task hands to its trigger.
JobSource = Literal["describe", "list", "hand-off"]
#: The fields of a ListAutoMLJobs ``AutoMLJobSummary``.
LIST_SUMMARY_FIELDS = frozenset(
    {
        "AutoMLJobName",
        "AutoMLJobArn",
        "AutoMLJobStatus",
        "AutoMLJobSecondaryStatus",
        "CreationTime",
        "EndTime",
        "LastModifiedTime",
        "FailureReason",
        "PartialFailureReasons",
    }
)
#: The describe fields a task hands to its trigger (``last_seen``): enough for the verdict, the
#: progress lines and the coalesced poller's first window, small enough for trigger kwargs
#: (plus ``AutoMLJobConfig.CompletionCriteria.MaxCandidates``).
HAND_OFF_FIELDS = (
    "AutoMLJobName",
    "AutoMLJobArn",
    "AutoMLJobStatus",
    "AutoMLJobSecondaryStatus",
    "CreationTime",
    "LastModifiedTime",
    "EndTime",
    "FailureReason",
    "PartialFailureReasons",
    "ModelDeployConfig",
    "GenerateCandidateDefinitionsOnly",
    "AutoMLProblemTypeConfigName",
)
#: The fields each partial source shows (a field it does not show is unknown, not absent).
SOURCE_FIELDS: Mapping[str, frozenset[str]] = {
    "list": LIST_SUMMARY_FIELDS,
    "hand-off": frozenset({*HAND_OFF_FIELDS, "AutoMLJobConfig"}),
}


@dataclass(frozen=True)
class AutopilotJob:
    """
    A typed view of a DescribeAutoMLJob (V1) or DescribeAutoMLJobV2 response, or of less: a
    ListAutoMLJobs summary or a task's hand-off (``source``).

    :param raw: the response exactly as boto3 returned it (ResponseMetadata removed).
    :param api_version: ``"v1"`` or ``"v2"``, the call that produced ``raw``.
    :param observed_at: the server's time of the response (its ``Date`` header), when known: the
        job was in this state at that time on the server's clock.
    :param source: how the state was read; with ``"list"`` or ``"hand-off"`` only the fields in
        :data:`SOURCE_FIELDS` were read (no ``BestCandidate``, for one).
    """

    raw: Mapping[str, Any] = field(repr=False)
    api_version: Literal["v1", "v2"] = "v1"
    observed_at: datetime | None = field(default=None, compare=False)
    source: JobSource = field(default="describe", compare=False)

    @classmethod
    def from_list_summary(cls, row: Mapping[str, Any]) -> AutopilotJob:
        """Build the view from a ListAutoMLJobs ``AutoMLJobSummary`` (progress only: it lacks the
        best candidate and everything else a verdict needs)."""
        return cls(raw=dict(row), source="list")

    @property
    def fields_read(self) -> frozenset[str] | None:
        """The top-level fields its source shows (``None``: a describe, every field)."""
        return SOURCE_FIELDS.get(self.source)

    @classmethod
    def from_describe(
        cls, response: Mapping[str, Any], api_version: Literal["v1", "v2"] = "v1"
    ) -> AutopilotJob:
        """Build the view from a describe response; ``ResponseMetadata`` is dropped (its ``Date``
        header becomes :attr:`observed_at`)."""
        return cls(
            raw={k: v for k, v in response.items() if k != "ResponseMetadata"},
            api_version=api_version,
            observed_at=server_time(response),
        )

    # identity and status
    @property
    def name(self) -> str:
        return str(self.raw.get("AutoMLJobName", ""))

    @property
    def arn(self) -> str | None:
        return self.raw.get("AutoMLJobArn")

    @property
    def status(self) -> str:
        return str(self.raw.get("AutoMLJobStatus", ""))

    @property
    def secondary_status(self) -> str | None:
        return self.raw.get("AutoMLJobSecondaryStatus")

    @property
    def failure_reason(self) -> str | None:
        return self.raw.get("FailureReason")

    @property
    def partial_failure_reasons(self) -> list[str]:
        """Every ``PartialFailureMessage``, in order."""
        reasons = self.raw.get("PartialFailureReasons") or []
        return [str(r.get("PartialFailureMessage", "")) for r in reasons if r.get("PartialFailureMessage")]

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    # results
    @property
    def best_candidate(self) -> dict[str, Any] | None:
        return self.raw.get("BestCandidate")

    @property
    def model_deploy_result(self) -> dict[str, Any] | None:
        return self.raw.get("ModelDeployResult")

    @property
    def deploy_requested(self) -> bool:
        """True when the request asked SageMaker to deploy the best candidate."""
        cfg = self.raw.get("ModelDeployConfig") or {}
        return bool(cfg.get("AutoGenerateEndpointName") or cfg.get("EndpointName"))

    @property
    def generate_candidate_definitions_only(self) -> bool:
        return bool(self.raw.get("GenerateCandidateDefinitionsOnly"))

    @property
    def lacks_best_candidate(self) -> bool:
        """
        True for a Completed job that produced no model: no ``BestCandidate`` although training was
        asked for (for example ``MaxAutoMLJobRuntimeReached`` before the first candidate finished).
        """
        return (
            self.status == COMPLETED
            and not self.best_candidate
            and not self.generate_candidate_definitions_only
            and self.secondary_status != "CandidateDefinitionsGenerated"
        )

    # problem and objective
    @property
    def problem_type(self) -> str | None:
        return (
            self.raw.get("ProblemType")
            or _dig(self.raw, "ResolvedAttributes", "ProblemType")
            or _dig(
                self.raw,
                "ResolvedAttributes",
                "AutoMLProblemTypeResolvedAttributes",
                "TabularResolvedAttributes",
                "ProblemType",
            )
            or _dig(self.raw, "AutoMLProblemTypeConfig", "TabularJobConfig", "ProblemType")
            or self.v2_problem_type
        )

    @property
    def v2_problem_type(self) -> str | None:
        """``AutoMLProblemTypeConfigName`` of a non-tabular V2 job (``TimeSeriesForecasting``,
        ``TextClassification``, ``ImageClassification``, ``TextGeneration``), else ``None``."""
        name = self.raw.get("AutoMLProblemTypeConfigName")
        return name if name and name != "Tabular" else None

    @property
    def objective_metric(self) -> str | None:
        return (
            _dig(self.raw, "AutoMLJobObjective", "MetricName")
            or _dig(self.raw, "ResolvedAttributes", "AutoMLJobObjective", "MetricName")
            or _dig(self.raw, "BestCandidate", "FinalAutoMLJobObjectiveMetric", "MetricName")
        )

    @property
    def objective_direction(self) -> Literal["Maximize", "Minimize"] | None:
        """Maximize or Minimize: from the best candidate when present, else from the metric name."""
        declared = _dig(self.raw, "BestCandidate", "FinalAutoMLJobObjectiveMetric", "Type")
        if declared in ("Maximize", "Minimize"):
            return declared
        metric = self.objective_metric
        return metric_direction(metric) if metric else None

    @property
    def max_candidates(self) -> int | None:
        value = (
            _dig(self.raw, "AutoMLJobConfig", "CompletionCriteria", "MaxCandidates")
            or _dig(self.raw, "ResolvedAttributes", "CompletionCriteria", "MaxCandidates")
            or next(
                (
                    config["CompletionCriteria"]["MaxCandidates"]
                    for config in (self.raw.get("AutoMLProblemTypeConfig") or {}).values()
                    if isinstance(config, Mapping) and _dig(config, "CompletionCriteria", "MaxCandidates")
                ),
                None,
            )
        )
        return int(value) if value is not None else None

    # times
    @property
    def creation_time(self) -> datetime | None:
        return self.raw.get("CreationTime")

    @property
    def last_modified_time(self) -> datetime | None:
        return self.raw.get("LastModifiedTime")

    @property
    def end_time(self) -> datetime | None:
        return self.raw.get("EndTime")

    def describe_state(self) -> str:
        """A one-line human description: ``InProgress/ModelTuning (training and tuning candidates)``."""
        meaning = SECONDARY_STATUS_MEANINGS.get(self.secondary_status or "", "")
        text = f"{self.status}/{self.secondary_status}"
        return f"{text} ({meaning})" if meaning else text

    def failure_message(self) -> str:
        """Everything SageMaker said about why the job did not succeed, in one message."""
        parts = [f"Autopilot job {self.name!r} ended {self.describe_state()}"]
        if self.failure_reason:
            parts.append(f"FailureReason: {self.failure_reason}")
        for reason in self.partial_failure_reasons:
            parts.append(f"PartialFailure: {reason}")
        if self.lacks_best_candidate:
            parts.append("no BestCandidate: the job ended before any candidate finished training")
        elif not self.failure_reason and not self.partial_failure_reasons:
            parts.append("SageMaker gave no FailureReason")
        return "; ".join(parts)


def _statuses(value: Collection[str] | str | None, default: frozenset[str]) -> frozenset[str]:
    """Statuses given as a collection or as one string; ``default`` for ``None``."""
    if value is None:
        return default
    if isinstance(value, str):
        return frozenset({value})
    return frozenset(value)


@dataclass(frozen=True)
class WaitCriteria:
    """
    What ends a wait, and how. One definition used by the sensor, trigger, operators and poller.

    :param success_statuses: primary statuses that end the wait successfully.
    :param failure_statuses: primary statuses that end the wait with a failure.
    :param target_secondary_statuses: secondary statuses that end the wait early with success.
    :param failure_secondary_statuses: secondary statuses that fail the wait. ``ModelDeploymentError``
        counts only when the job asked for a deployment.
    """

    success_statuses: frozenset[str] = SUCCESS_STATUSES
    failure_statuses: frozenset[str] = FAILURE_STATUSES
    target_secondary_statuses: frozenset[str] = frozenset()
    failure_secondary_statuses: frozenset[str] = DEFAULT_FAILURE_SECONDARY_STATUSES

    @classmethod
    def build(
        cls,
        success_statuses: Collection[str] | None = None,
        failure_statuses: Collection[str] | None = None,
        target_secondary_statuses: Collection[str] | None = None,
        failure_secondary_statuses: Collection[str] | None = None,
    ) -> WaitCriteria:
        """
        Build criteria from user input, rejecting unknown status names and overlaps. A single string
        is one status (``"Completed"``), not a collection of characters.
        """
        crit = cls(
            success_statuses=_statuses(success_statuses, SUCCESS_STATUSES),
            failure_statuses=_statuses(failure_statuses, FAILURE_STATUSES),
            target_secondary_statuses=_statuses(target_secondary_statuses, frozenset()),
            failure_secondary_statuses=_statuses(
                failure_secondary_statuses, DEFAULT_FAILURE_SECONDARY_STATUSES
            ),
        )
        crit.check()
        return crit

    def check(self) -> None:
        """Raise ValueError naming the parameter when a status is unknown or listed twice."""
        for param, values, known in (
            ("success_statuses", self.success_statuses, ALL_STATUSES),
            ("failure_statuses", self.failure_statuses, ALL_STATUSES),
            ("target_secondary_statuses", self.target_secondary_statuses, ALL_SECONDARY_STATUSES),
            ("failure_secondary_statuses", self.failure_secondary_statuses, ALL_SECONDARY_STATUSES),
        ):
            unknown = sorted(set(values) - known)
            if unknown:
                raise ValueError(f"{param}: unknown status(es) {unknown}; allowed: {sorted(known)}")
        if not self.success_statuses and not self.target_secondary_statuses:
            raise ValueError("success_statuses: must not be empty unless target_secondary_statuses is given")
        both = sorted(self.success_statuses & self.failure_statuses)
        if both:
            raise ValueError(f"success_statuses and failure_statuses overlap: {both}")
        both = sorted(self.target_secondary_statuses & self.failure_secondary_statuses)
        if both:
            raise ValueError(f"target_secondary_statuses and failure_secondary_statuses overlap: {both}")

    def to_dict(self) -> dict[str, list[str]]:
        """JSON-safe form, for trigger kwargs."""
        return {
            "success_statuses": sorted(self.success_statuses),
            "failure_statuses": sorted(self.failure_statuses),
            "target_secondary_statuses": sorted(self.target_secondary_statuses),
            "failure_secondary_statuses": sorted(self.failure_secondary_statuses),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Collection[str]]) -> WaitCriteria:
        return cls.build(**{k: list(v) for k, v in data.items()})

    def verdict(self, job: AutopilotJob) -> Literal["success", "failure", "waiting"]:
        """
        Decide whether ``job`` ends the wait, and how.

        A job that reached a success *status* without a best candidate
        (:attr:`AutopilotJob.lacks_best_candidate`) is a failure: nobody got a model from it. An early
        success on one of ``target_secondary_statuses`` is not affected.
        """
        secondary = job.secondary_status or ""
        if secondary in self.failure_secondary_statuses:
            if secondary != "ModelDeploymentError" or job.deploy_requested:
                return "failure"
        if job.status in self.failure_statuses:
            return "failure"
        if secondary in self.target_secondary_statuses:
            return "success"
        if job.status in self.success_statuses:
            return "failure" if job.lacks_best_candidate else "success"
        if job.is_terminal:
            # Terminal but neither success nor failure by these criteria: it can never succeed now.
            return "failure"
        return "waiting"

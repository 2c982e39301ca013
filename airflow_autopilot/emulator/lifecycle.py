"""An emulated AutoML job of any problem type, created with CreateAutoMLJob or CreateAutoMLJobV2,
whose state is computed from the emulator clock whenever it is asked for."""

from __future__ import annotations

import copy
import threading
from typing import Any, NamedTuple

from moto.sagemaker.utils import arn_formatter
from moto.utilities.utils import get_partition

from airflow_autopilot.core.fields.automl import (
    CONFIG_NAMES,
    METRICS_BY_CONFIG,
    METRICS_BY_PROBLEM_TYPE,
    TEXT_GENERATION_METRIC,
    default_metric,
    problem_config_key,
)
from airflow_autopilot.core.job import metric_direction
from airflow_autopilot.emulator import candidates as cand
from airflow_autopilot.emulator import controls, data, reports, settings
from airflow_autopilot.emulator.deployment import deploy_best_candidate
from airflow_autopilot.emulator.step_jobs import create_step_jobs

TERMINAL_STATUSES = frozenset({"Completed", "Failed", "Stopped"})

# Timeline in stage units (one unit = the job's stage seconds):
# 0 Starting, 1 AnalyzingData (input read and checked at its end), 2 FeatureEngineering,
# 3-5 ModelTuning (candidates finish one after the other), 5 MaxCandidatesReached,
# 6 GeneratingExplainabilityReport, 7 GeneratingModelInsightsReport, 8 DeployingModel (only when
# deployment was asked for), then Completed/Completed.
# Outcomes cut it short: "failed" is Failed one unit into tuning; "stopped" is Stopping one unit into
# tuning and Stopped a unit later; "runtime-limit" is Completed/MaxAutoMLJobRuntimeReached one unit
# into tuning (at least one candidate done), "runtime-limit-no-candidate" the same before the first
# candidate finishes. GenerateCandidateDefinitionsOnly ends Completed/CandidateDefinitionsGenerated
# after AnalyzingData. The problem types beyond tabular rename some steps (_RENAMES).
TUNING_UNITS = 2.0
_ANALYSIS_AT = 1.0
_FEATURES_AT = 2.0
_TUNING_AT = 3.0
_EMPTY_NOTEBOOK = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'
# Secondary statuses of the timeline renamed per problem type (AWS reports TrainingModels rather
# than ModelTuning for forecasting, and text/image jobs have no feature engineering).
_FORECAST_RENAMES = {"ModelTuning": "TrainingModels", "MaxCandidatesReached": "TrainingModels"}
_DEEP_LEARNING_RENAMES = {
    "FeatureEngineering": "PreTraining",
    "ModelTuning": "TrainingModels",
    "MaxCandidatesReached": "TrainingModels",
    "GeneratingExplainabilityReport": "TrainingModels",
    "GeneratingModelInsightsReport": "TrainingModels",
}
_RENAMES: dict[str, dict[str, str]] = {
    cand.TABULAR: {},
    "TimeSeriesForecastingJobConfig": _FORECAST_RENAMES,
    "TextClassificationJobConfig": _DEEP_LEARNING_RENAMES,
    "ImageClassificationJobConfig": _DEEP_LEARNING_RENAMES,
    "TextGenerationJobConfig": _DEEP_LEARNING_RENAMES,
}
#: The request members DescribeAutoMLJob and DescribeAutoMLJobV2 repeat.
_V1_ECHOED = (
    "InputDataConfig",
    "OutputDataConfig",
    "RoleArn",
    "AutoMLJobObjective",
    "ProblemType",
    "AutoMLJobConfig",
    "ModelDeployConfig",
)
_V2_ECHOED = (
    "AutoMLJobInputDataConfig",
    "OutputDataConfig",
    "RoleArn",
    "AutoMLJobObjective",
    "DataSplitConfig",
    "SecurityConfig",
    "AutoMLComputeConfig",
    "ModelDeployConfig",
)
#: The members of a V1 channel that an ``AutoMLJobInputDataConfig`` channel has too.
_V2_CHANNEL_KEYS = ("ChannelType", "ContentType", "CompressionType", "DataSource")


def as_v2_request(params: dict[str, Any]) -> dict[str, Any]:
    """The CreateAutoMLJobV2 request that asks for the same job as a CreateAutoMLJob request.

    The lifecycle reads every job in this shape; DescribeAutoMLJobV2 of a V1 job answers it.

    :param params: the validated CreateAutoMLJob parameters.
    """
    job_config = params.get("AutoMLJobConfig") or {}
    channels = [
        {k: v for k, v in channel.items() if k in _V2_CHANNEL_KEYS} for channel in params["InputDataConfig"]
    ]
    tabular: dict[str, Any] = {
        "TargetAttributeName": _training_channel(params["InputDataConfig"])["TargetAttributeName"]
    }
    for key in ("CompletionCriteria", "Mode"):
        if job_config.get(key):
            tabular[key] = job_config[key]
    if job_config.get("CandidateGenerationConfig"):
        tabular["CandidateGenerationConfig"] = {
            "AlgorithmsConfig": job_config["CandidateGenerationConfig"].get("AlgorithmsConfig", [])
        }
    if params.get("ProblemType"):
        tabular["ProblemType"] = params["ProblemType"]
    if params.get("GenerateCandidateDefinitionsOnly"):
        tabular["GenerateCandidateDefinitionsOnly"] = True
    request: dict[str, Any] = {
        "AutoMLJobName": params["AutoMLJobName"],
        "AutoMLJobInputDataConfig": channels,
        "OutputDataConfig": params["OutputDataConfig"],
        "RoleArn": params["RoleArn"],
        "AutoMLProblemTypeConfig": {cand.TABULAR: tabular},
    }
    for key in ("AutoMLJobObjective", "ModelDeployConfig", "Tags"):
        if params.get(key) is not None:
            request[key] = params[key]
    for key in ("DataSplitConfig", "SecurityConfig"):
        if job_config.get(key):
            request[key] = job_config[key]
    return request


def _members(request: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The members of ``request`` a describe answer repeats (those it has)."""
    return {key: request[key] for key in keys if request.get(key) is not None}


def _training_channel(channels: list[dict[str, Any]]) -> dict[str, Any]:
    return [c for c in channels if (c.get("ChannelType") or "training") == "training"][0]


class JobState(NamedTuple):
    """Where a job stands on its timeline now."""

    #: Seconds from creation to the start of the current step.
    offset: float
    #: ``AutoMLJobStatus``.
    primary: str
    #: ``AutoMLJobSecondaryStatus``.
    secondary: str
    #: Seconds from creation to now.
    elapsed: float


class EmulatedAutoMLJob:
    """An AutoML job (V1 or V2, any problem type) stored in moto's ``auto_ml_jobs`` dict.

    Nothing runs in the background: each request about the job recomputes its state from the time
    elapsed since creation, and the side effects AWS would produce (artifacts in S3, the deployed
    endpoint) happen the first time a refresh reaches the step they belong to. A V1 job is read as
    the V2 request that asks for the same job (:func:`as_v2_request`); the problem type decides the
    input check, the step names and the candidates.

    It carries the attributes moto's ListAutoMLJobs, StopAutoMLJob, tagging and pagination code read
    from moto's own ``AutoMLJob`` (``auto_ml_job_name``, ``arn``, ``auto_ml_job_status``,
    ``auto_ml_job_secondary_status``, ``creation_time``, ``last_modified_time``, ``tags``,
    ``summary()``), computed from the clock.

    :param params: the validated CreateAutoMLJob or CreateAutoMLJobV2 parameters.
    :param backend: moto's SageMaker backend of the job's account and region (it deploys endpoints).
    :param v2: whether ``params`` is a CreateAutoMLJobV2 request.
    """

    def __init__(self, params: dict[str, Any], backend: Any, v2: bool = False) -> None:
        self._lock = threading.RLock()
        #: The request as given: DescribeAutoMLJob answers a V1 job from it.
        self.params = copy.deepcopy(params)
        self.created_with_v2 = v2
        self.request = self.params if v2 else as_v2_request(self.params)
        key = problem_config_key(self.request)
        assert key is not None
        self.config_key = key
        self.config: dict[str, Any] = self.request["AutoMLProblemTypeConfig"][key]
        self.account_id: str = backend.account_id
        self.region_name: str = backend.region_name
        self.partition = get_partition(self.region_name)
        self._backend = backend
        self.auto_ml_job_name: str = params["AutoMLJobName"]
        # AWS lowercases names in ARNs; the backend stores jobs under the lowercase name, so moto's
        # tagging (which finds a resource by the name in its ARN) still finds the job.
        self.arn = arn_formatter(
            "automl-job", self.auto_ml_job_name.lower(), self.account_id, self.region_name
        )
        self.tags: list[dict[str, str]] = list(params.get("Tags") or [])
        tag_values = controls.tags_to_dict(self.tags)
        self.outcome = (
            tag_values.get(controls.TAG_OUTCOME)
            or controls.outcome_from_name(self.auto_ml_job_name)
            or controls.OUTCOME_SUCCESS
        )
        stage = float(tag_values.get(controls.TAG_STAGE_SECONDS) or settings.stage_seconds())
        if self.outcome == controls.OUTCOME_SLOW:
            stage *= controls.SLOW_FACTOR
        self.stage_seconds = stage
        self.created = settings.now()
        self.creation_time = settings.to_datetime(self.created)
        self.candidates_only = bool(self.config.get("GenerateCandidateDefinitionsOnly"))
        self.deploy_config: dict[str, Any] | None = params.get("ModelDeployConfig")
        self.deploy_requested = self.deploy_config is not None and not self.candidates_only
        requested = (self.config.get("CompletionCriteria") or {}).get("MaxCandidates")
        wanted = int(requested) if requested else settings.DEFAULT_MAX_CANDIDATES
        self.candidate_count = max(1, min(wanted, settings.candidate_cap()))
        if key == "TextGenerationJobConfig":
            self.candidate_count = 1  # one fine-tuned model of the base model
        self.mode, self.algorithms = cand.resolve_algorithms(key, self.config)
        self.output_path = params["OutputDataConfig"]["S3OutputPath"].rstrip("/")
        self.training_channel: dict[str, Any] = _training_channel(self.request["AutoMLJobInputDataConfig"])
        #: The target column: batch transform and the explainability report leave it out of the features.
        self.target: str = self.config.get("TargetAttributeName") or "target"
        # Tabular jobs resolve what the request leaves open at the end of AnalyzingData.
        self.analysed = False
        self.problem_type: str | None = (
            self.config.get("ProblemType") if key == cand.TABULAR else CONFIG_NAMES[key]
        )
        self.metric: str | None = (self.request.get("AutoMLJobObjective") or {}).get("MetricName")
        if key == "TextGenerationJobConfig":
            self.metric = TEXT_GENERATION_METRIC
        elif key != cand.TABULAR:
            self.metric = self.metric or METRICS_BY_CONFIG[key][0]
        self.failure_reason: str | None = None
        self.partial_failure_reasons: list[dict[str, str]] = []
        self._timeline: list[tuple[float, str, str]] = [
            (0.0, "InProgress", "Starting"),
            (_ANALYSIS_AT * stage, "InProgress", "AnalyzingData"),
        ]
        self._plans: list[cand.CandidatePlan] = []
        self._cut: float | None = None
        self._cut_status = "Stopped"
        self._stopping_until: float | None = None
        self._written: set[int] = set()
        self._deploy_at: float | None = None
        self._deployed = False
        self.endpoint_name: str | None = None
        self.artifacts: dict[str, str] | None = None
        self._features: list[str] | None = None

    # ----------------------------------------------------------------- clock

    def _elapsed(self) -> float:
        return max(0.0, settings.now() - self.created)

    def refresh(self) -> float:
        """Bring the job up to the emulator clock; return the elapsed seconds.

        Runs the data analysis, writes candidate artifacts and deploys the endpoint when their time
        has come.
        """
        with self._lock:
            elapsed = self._elapsed()
            if not self.analysed and self._cut is None and elapsed >= _ANALYSIS_AT * self.stage_seconds:
                self._analyse()
            if self.analysed:
                self._materialise(elapsed)
            return elapsed

    def _state_at(self, elapsed: float) -> tuple[float, str, str]:
        current = self._timeline[0]
        for entry in self._timeline:
            if entry[0] <= elapsed:
                current = entry
        return current

    # --------------------------------------------------------------- analysis

    def _fail_at(self, offset: float, reason: str, partial: list[str] | None = None) -> None:
        self.failure_reason = reason[:1024]
        self.partial_failure_reasons = [{"PartialFailureMessage": p[:1024]} for p in partial or []]
        self._timeline.append((offset, "Failed", "Failed"))

    def _analyse(self) -> None:
        self.analysed = True
        try:
            self._analyse_input()
        except Exception as error:  # noqa: BLE001 - whatever the input does, the job must end
            self._timeline = self._timeline[:2]
            self._plans = []
            self._fail_at(
                _FEATURES_AT * self.stage_seconds,
                "InternalServerError: The input data could not be analysed "
                f"({type(error).__name__}: {error}).",
            )

    def _analyse_input(self) -> None:
        end_of_analysis = _FEATURES_AT * self.stage_seconds
        if not data.bucket_exists(self.output_path, self.account_id, self.region_name):
            bucket, _ = data.split_s3_uri(self.output_path)
            self._fail_at(
                end_of_analysis,
                f"ClientError: The S3OutputPath bucket '{bucket}' does not exist or is not accessible.",
            )
            return
        analysis = data.analyze_input(
            self.config_key,
            self.config,
            self.training_channel,
            self.account_id,
            self.region_name,
            "AutoMLJobInputDataConfig" if self.created_with_v2 else "InputDataConfig",
        )
        if analysis.failure_reason:
            self._fail_at(end_of_analysis, analysis.failure_reason)
            return
        if self.config_key == cand.TABULAR:
            if not self._resolve_tabular(analysis, end_of_analysis):
                return
            self._write_notebooks()
            if self.candidates_only:
                self._timeline.append((end_of_analysis, "Completed", "CandidateDefinitionsGenerated"))
                return
        self._plan_run()

    def _resolve_tabular(self, analysis: data.DataAnalysis, end_of_analysis: float) -> bool:
        """Settle the problem type and metric the request left open; ``False`` if the job failed."""
        if self.problem_type is None:
            self.problem_type = analysis.problem_type or "BinaryClassification"
        if self.metric is None:
            self.metric = default_metric(self.problem_type)
        elif self.metric not in METRICS_BY_PROBLEM_TYPE[self.problem_type]:
            self._fail_at(
                end_of_analysis,
                f"ClientError: The objective metric '{self.metric}' is not valid for the inferred "
                f"problem type {self.problem_type}. Valid metrics: "
                f"{', '.join(METRICS_BY_PROBLEM_TYPE[self.problem_type])}.",
            )
            return False
        return True

    def _write_notebooks(self) -> None:
        self.artifacts = cand.notebook_locations(self.auto_ml_job_name, self.output_path)
        objects = dict.fromkeys(self.artifacts.values(), _EMPTY_NOTEBOOK)
        data.put_objects(objects, self.account_id, self.region_name)

    def _plan_run(self) -> None:
        unit = self.stage_seconds
        assert self.metric is not None
        tuning_start = _TUNING_AT * unit
        self._plans = cand.plan_candidates(
            self.auto_ml_job_name,
            self.candidate_count,
            self.algorithms,
            self.metric,
            tuning_start,
            TUNING_UNITS * unit,
        )
        self._timeline.append((_FEATURES_AT * unit, "InProgress", "FeatureEngineering"))
        self._timeline.append((tuning_start, "InProgress", "ModelTuning"))
        first_done = self._plans[0].completed_offset
        outcome = self.outcome
        if outcome == controls.OUTCOME_FAILED:
            cut = tuning_start + unit
            self._cut, self._cut_status = cut, "Failed"
            failed = [p for p in self._plans if p.created_offset < cut < p.completed_offset]
            partial = [
                f"Candidate {p.name} failed: AlgorithmError: training job {p.name} exited with an "
                "error (emulated by autopilot-emulator:outcome=failed)."
                for p in failed
            ]
            self._fail_at(
                cut,
                "ClientError: Autopilot could not train any more candidates: training jobs failed "
                "(emulated by autopilot-emulator:outcome=failed).",
                partial or ["Candidate training failed (emulated)."],
            )
        elif outcome == controls.OUTCOME_STOPPED:
            self._stop_at(tuning_start + unit)
        elif outcome == controls.OUTCOME_RUNTIME_LIMIT:
            cut = max(tuning_start + unit, first_done)
            self._cut, self._cut_status = cut, "Stopped"
            self._timeline.append((cut, "Completed", "MaxAutoMLJobRuntimeReached"))
        elif outcome == controls.OUTCOME_RUNTIME_LIMIT_NO_CANDIDATE:
            cut = (tuning_start + first_done) / 2
            self._cut, self._cut_status = cut, "Stopped"
            self._timeline.append((cut, "Completed", "MaxAutoMLJobRuntimeReached"))
        else:
            offset = tuning_start + TUNING_UNITS * unit
            for secondary in (
                "MaxCandidatesReached",
                "GeneratingExplainabilityReport",
                "GeneratingModelInsightsReport",
            ):
                self._timeline.append((offset, "InProgress", secondary))
                offset += unit
            if self.deploy_requested or outcome == controls.OUTCOME_DEPLOY_ERROR:
                self._timeline.append((offset, "InProgress", "DeployingModel"))
                offset += unit
                self._deploy_at = offset
            else:
                self._timeline.append((offset, "Completed", "Completed"))
        self._rename_steps()

    def _rename_steps(self) -> None:
        renames = _RENAMES[self.config_key]
        timeline: list[tuple[float, str, str]] = []
        for offset, primary, secondary in self._timeline:
            entry = (offset, primary, renames.get(secondary, secondary))
            if timeline and timeline[-1][1:] == entry[1:]:
                continue  # a renamed step that repeats the previous one is the same state
            timeline.append(entry)
        self._timeline = timeline

    # ------------------------------------------------------------ candidates

    def _context(self) -> cand.CandidateContext:
        assert self.problem_type is not None and self.metric is not None
        return cand.CandidateContext(
            job_name=self.auto_ml_job_name,
            account_id=self.account_id,
            region=self.region_name,
            partition=self.partition,
            output_path=self.output_path,
            problem_type=self.problem_type,
            metric=self.metric,
            mode=self.mode,
        )

    def _candidate_status(self, plan: cand.CandidatePlan, elapsed: float) -> str | None:
        cut = self._cut
        if plan.created_offset > elapsed or (cut is not None and plan.created_offset >= cut):
            return None
        if plan.completed_offset <= elapsed and (cut is None or plan.completed_offset <= cut):
            return "Completed"
        if cut is not None and elapsed >= cut:
            if self._stopping_until is not None and elapsed < self._stopping_until:
                return "Stopping"
            return self._cut_status
        return "InProgress"

    def _candidate_times(self, plan: cand.CandidatePlan, status: str) -> tuple[float, float | None]:
        """Return (last modified offset, end offset) of a candidate in ``status``."""
        if status == "Completed":
            return plan.completed_offset, plan.completed_offset
        if status == "InProgress":
            return plan.created_offset, None
        assert self._cut is not None
        if status == "Stopping":
            return self._cut, None
        end = self._stopping_until if self._stopping_until is not None else self._cut
        return end, end

    def _render_candidate(self, plan: cand.CandidatePlan, status: str) -> dict[str, Any]:
        ctx = self._context()
        modified, end = self._candidate_times(plan, status)
        candidate: dict[str, Any] = {
            "CandidateName": plan.name,
            "ObjectiveStatus": {"Completed": "Succeeded", "Failed": "Failed"}.get(status, "Pending"),
            "CandidateSteps": cand.candidate_steps(ctx, plan),
            "CandidateStatus": status,
            "CreationTime": settings.to_datetime(self.created + plan.created_offset),
            "LastModifiedTime": settings.to_datetime(self.created + modified),
        }
        if end is not None:
            candidate["EndTime"] = settings.to_datetime(self.created + end)
        if status == "Failed":
            candidate["FailureReason"] = (
                f"AlgorithmError: training job {plan.name} exited with an error "
                "(emulated by autopilot-emulator:outcome=failed)."
            )
        if status == "Completed":
            candidate["FinalAutoMLJobObjectiveMetric"] = {
                "Type": metric_direction(ctx.metric),
                "MetricName": ctx.metric,
                "Value": plan.objective_value,
                "StandardMetricName": ctx.metric,
            }
            candidate.update(self._result_fields(ctx, plan))
        return candidate

    def _result_fields(self, ctx: cand.CandidateContext, plan: cand.CandidatePlan) -> dict[str, Any]:
        """A completed candidate's containers and properties."""
        return cand.result_fields(ctx, plan, self.config_key, self.config)

    def candidates(self) -> list[dict[str, Any]]:
        """Return every candidate visible now (refreshes the job), in creation order."""
        with self._lock:
            elapsed = self.refresh()
            result = []
            for plan in self._plans:
                status = self._candidate_status(plan, elapsed)
                if status is not None:
                    result.append(self._render_candidate(plan, status))
            return result

    def _completed_plans(self, elapsed: float) -> list[cand.CandidatePlan]:
        return [p for p in self._plans if self._candidate_status(p, elapsed) == "Completed"]

    def _best_plan(self, elapsed: float) -> cand.CandidatePlan | None:
        best: cand.CandidatePlan | None = None
        assert self.metric is not None or not self._plans
        for plan in self._completed_plans(elapsed):
            if best is None or cand.is_better(self.metric or "", plan.objective_value, best.objective_value):
                best = plan
        return best

    # --------------------------------------------------------- side effects

    def _materialise(self, elapsed: float) -> None:
        if not self._plans:
            return
        ctx = self._context()
        for plan in self._completed_plans(elapsed):
            if plan.index in self._written:
                continue
            self._written.add(plan.index)
            if self._features is None:
                self._features = reports.training_features(
                    self.training_channel, self.target, self.account_id, self.region_name
                )
            metrics = self._result_fields(ctx, plan)["CandidateProperties"]["CandidateMetrics"]
            locations = cand.artifact_locations(ctx, plan)
            objects = {
                **cand.model_objects(ctx, plan),
                **reports.report_objects(locations, plan.name, ctx.problem_type, metrics, self._features),
            }
            data.put_objects(objects, self.account_id, self.region_name)
            create_step_jobs(
                self._backend,
                ctx,
                plan,
                self.params["RoleArn"],
                self.training_channel["DataSource"]["S3DataSource"]["S3Uri"],
            )
        if self._deploy_at is not None and not self._deployed and elapsed >= self._deploy_at:
            self._deploy()

    def _deploy(self) -> None:
        self._deployed = True
        assert self._deploy_at is not None
        if self.outcome == controls.OUTCOME_DEPLOY_ERROR:
            self._deploy_failed(
                "Model deployment failed: the endpoint could not be created "
                "(emulated by autopilot-emulator:outcome=deploy-error)."
            )
            return
        best = self._best_plan(self._deploy_at)
        assert best is not None and self.deploy_config is not None
        try:
            self.endpoint_name = deploy_best_candidate(
                self._backend,
                job_name=self.auto_ml_job_name,
                role_arn=self.params["RoleArn"],
                containers=cand.deploy_containers(self._result_fields(self._context(), best)),
                deploy_config=self.deploy_config,
            )
        except Exception as error:  # noqa: BLE001 - any moto refusal is a deployment error
            self._deploy_failed(f"Model deployment failed: {getattr(error, 'message', None) or error}")
            return
        self._timeline.append((self._deploy_at, "Completed", "Completed"))

    def _deploy_failed(self, message: str) -> None:
        assert self._deploy_at is not None
        self.partial_failure_reasons = [{"PartialFailureMessage": message[:1024]}]
        self._timeline.append((self._deploy_at, "Completed", "ModelDeploymentError"))

    # ------------------------------------------------------------------ stop

    def _stop_at(self, offset: float) -> None:
        unit = self.stage_seconds
        self._timeline = [entry for entry in self._timeline if entry[0] <= offset]
        self._timeline.append((offset, "Stopping", "Stopping"))
        self._timeline.append((offset + unit, "Stopped", "Stopped"))
        self._cut, self._cut_status = offset, "Stopped"
        self._stopping_until = offset + unit
        self._deploy_at = None
        self.failure_reason = None
        self.partial_failure_reasons = []

    def stop(self) -> None:
        """Stop the job now: ``Stopping`` for one stage, then ``Stopped``.

        Stopping a job that is already stopping or in a terminal state changes nothing.
        """
        with self._lock:
            state = self.state()
            if state.primary in TERMINAL_STATUSES or state.primary == "Stopping":
                return
            if not self.analysed:
                self.analysed = True  # a job stopped before its analysis never reads its input
            self._stop_at(state.elapsed)

    # ------------------------------------------------------------ read side

    def state(self) -> JobState:
        """Refresh the job and return where it stands now."""
        elapsed = self.refresh()
        offset, primary, secondary = self._state_at(elapsed)
        return JobState(offset, primary, secondary, elapsed)

    def changes(self) -> list[tuple[float, str, str]]:
        """The job's change log up to now: ``(emulator time, status, secondary status)`` of each
        state it entered, oldest first (a job's ``LastModifiedTime`` is the time of the last one).
        """
        with self._lock:
            elapsed = self.refresh()
            log: list[tuple[float, str, str]] = []
            for offset, primary, secondary in self._timeline:
                if offset <= elapsed and (not log or log[-1][1:] != (primary, secondary)):
                    log.append((self.created + offset, primary, secondary))
            return log

    @property
    def auto_ml_job_status(self) -> str:
        """``AutoMLJobStatus`` now."""
        return self.state().primary

    @auto_ml_job_status.setter
    def auto_ml_job_status(self, value: str) -> None:
        # moto's own StopAutoMLJob assigns "Stopped"; treat any assignment as a stop request.
        if value in ("Stopped", "Stopping"):
            self.stop()

    @property
    def auto_ml_job_secondary_status(self) -> str:
        """``AutoMLJobSecondaryStatus`` now."""
        return self.state().secondary

    @auto_ml_job_secondary_status.setter
    def auto_ml_job_secondary_status(self, value: str) -> None:
        if value in ("Stopped", "Stopping"):
            self.stop()

    @property
    def last_modified_time(self) -> Any:
        """``LastModifiedTime``: the start of the current step."""
        return settings.to_datetime(self.created + self.state().offset)

    def _summary(self, state: JobState) -> dict[str, Any]:
        result: dict[str, Any] = {
            "AutoMLJobName": self.auto_ml_job_name,
            "AutoMLJobArn": self.arn,
            "AutoMLJobStatus": state.primary,
            "AutoMLJobSecondaryStatus": state.secondary,
            "CreationTime": self.creation_time,
            "LastModifiedTime": settings.to_datetime(self.created + state.offset),
        }
        if state.primary in TERMINAL_STATUSES:
            result["EndTime"] = settings.to_datetime(self.created + state.offset)
        if state.primary == "Failed" and self.failure_reason:
            result["FailureReason"] = self.failure_reason
        if self.partial_failure_reasons and state.primary in TERMINAL_STATUSES:
            result["PartialFailureReasons"] = self.partial_failure_reasons
        return result

    def summary(self) -> dict[str, Any]:
        """Return the ``AutoMLJobSummary`` used by ListAutoMLJobs."""
        with self._lock:
            return self._summary(self.state())

    def _best_candidate(self, elapsed: float, primary: str) -> dict[str, Any] | None:
        if primary == "Failed":
            return None
        best = self._best_plan(elapsed)
        return self._render_candidate(best, "Completed") if best is not None else None

    def _completion_criteria(self) -> dict[str, Any]:
        criteria = dict(self.config.get("CompletionCriteria") or {})
        criteria["MaxCandidates"] = self.candidate_count
        criteria.setdefault("MaxRuntimePerTrainingJobInSeconds", 86400)
        criteria.setdefault("MaxAutoMLJobRuntimeInSeconds", 2592000)
        return criteria

    def _outcome(self, state: JobState) -> dict[str, Any]:
        """What DescribeAutoMLJob and DescribeAutoMLJobV2 share: status, best candidate, results."""
        result = self._summary(state)
        best = self._best_candidate(state.elapsed, state.primary)
        if best is not None:
            result["BestCandidate"] = best
        if self.artifacts:
            result["AutoMLJobArtifacts"] = dict(self.artifacts)
        if self._deployed:
            result["ModelDeployResult"] = {"EndpointName": self.endpoint_name} if self.endpoint_name else {}
        return result

    def describe(self) -> dict[str, Any]:
        """Return the DescribeAutoMLJob response (of a job created with CreateAutoMLJob)."""
        with self._lock:
            result = self._outcome(self.state())
            result.update(_members(self.params, _V1_ECHOED))
            result["GenerateCandidateDefinitionsOnly"] = self.candidates_only
            if self.analysed and self.problem_type is not None and self.metric is not None:
                result["ResolvedAttributes"] = {
                    "AutoMLJobObjective": {"MetricName": self.metric},
                    "ProblemType": self.problem_type,
                    "CompletionCriteria": self._completion_criteria(),
                }
            return result

    def describe_v2(self) -> dict[str, Any]:
        """Return the DescribeAutoMLJobV2 response (AWS describes V1 jobs with it too)."""
        with self._lock:
            result = self._outcome(self.state())
            result.update(_members(self.request, _V2_ECHOED))
            config = dict(self.config)
            if self.config_key == cand.TABULAR:
                config["GenerateCandidateDefinitionsOnly"] = self.candidates_only
            result["AutoMLProblemTypeConfig"] = {self.config_key: config}
            result["AutoMLProblemTypeConfigName"] = CONFIG_NAMES[self.config_key]
            resolved = self._resolved_v2()
            if resolved:
                result["ResolvedAttributes"] = resolved
            return result

    def _resolved_v2(self) -> dict[str, Any] | None:
        if not self.analysed or self.problem_type is None or self.metric is None:
            return None
        resolved: dict[str, Any] = {"CompletionCriteria": self._completion_criteria()}
        if self.config_key == "TextGenerationJobConfig":
            base_model = self.config.get("BaseModelName") or cand.DEFAULT_BASE_MODEL
            resolved["AutoMLProblemTypeResolvedAttributes"] = {
                "TextGenerationResolvedAttributes": {"BaseModelName": base_model}
            }
            return resolved
        resolved["AutoMLJobObjective"] = {"MetricName": self.metric}
        if self.config_key == cand.TABULAR:
            resolved["AutoMLProblemTypeResolvedAttributes"] = {
                "TabularResolvedAttributes": {"ProblemType": self.problem_type}
            }
        return resolved

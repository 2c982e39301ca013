"""An emulated CreateAutoMLJobV2 job of any problem type, on the V1 job's clock-driven lifecycle."""

from __future__ import annotations

import copy
from typing import Any

from airflow_autopilot.core.validation import default_metric
from airflow_autopilot.core.validation_v2 import (
    CONFIG_NAMES,
    METRICS_BY_CONFIG,
    TEXT_GENERATION_METRIC,
    problem_config_key,
)
from airflow_autopilot.emulator import candidates as cand
from airflow_autopilot.emulator import candidates_v2 as cand2
from airflow_autopilot.emulator import data_v2
from airflow_autopilot.emulator.lifecycle import EmulatedAutoMLJob

# Secondary statuses of the V1 timeline renamed for the non-tabular problem types (AWS reports
# TrainingModels rather than ModelTuning for them, and text/image jobs have no feature engineering).
_FORECAST_RENAMES = {"ModelTuning": "TrainingModels", "MaxCandidatesReached": "TrainingModels"}
_DEEP_LEARNING_RENAMES = {
    "FeatureEngineering": "PreTraining",
    "ModelTuning": "TrainingModels",
    "MaxCandidatesReached": "TrainingModels",
    "GeneratingExplainabilityReport": "TrainingModels",
    "GeneratingModelInsightsReport": "TrainingModels",
}
_RENAMES = {
    "TabularJobConfig": {},
    "TimeSeriesForecastingJobConfig": _FORECAST_RENAMES,
    "TextClassificationJobConfig": _DEEP_LEARNING_RENAMES,
    "ImageClassificationJobConfig": _DEEP_LEARNING_RENAMES,
    "TextGenerationJobConfig": _DEEP_LEARNING_RENAMES,
}


def v1_params(params: dict[str, Any], config_key: str) -> dict[str, Any]:
    """The V1-shaped parameters the shared lifecycle reads, from a CreateAutoMLJobV2 request.

    :param params: the validated CreateAutoMLJobV2 parameters.
    :param config_key: the ``AutoMLProblemTypeConfig`` member the request sets.
    """
    config = params["AutoMLProblemTypeConfig"][config_key]
    target = config.get("TargetAttributeName") or "target"
    channels = []
    for channel in params["AutoMLJobInputDataConfig"]:
        channels.append({**channel, "TargetAttributeName": target})
    job_config: dict[str, Any] = {}
    if config.get("CompletionCriteria"):
        job_config["CompletionCriteria"] = config["CompletionCriteria"]
    if config_key == "TabularJobConfig":
        for key in ("Mode", "CandidateGenerationConfig"):
            if config.get(key):
                job_config[key] = config[key]
    result: dict[str, Any] = {
        "AutoMLJobName": params["AutoMLJobName"],
        "InputDataConfig": channels,
        "OutputDataConfig": params["OutputDataConfig"],
        "RoleArn": params["RoleArn"],
        "AutoMLJobConfig": job_config,
        "Tags": params.get("Tags"),
        "ModelDeployConfig": params.get("ModelDeployConfig"),
        "GenerateCandidateDefinitionsOnly": bool(config.get("GenerateCandidateDefinitionsOnly")),
    }
    if config_key == "TabularJobConfig":
        result["ProblemType"] = config.get("ProblemType")
        result["AutoMLJobObjective"] = params.get("AutoMLJobObjective")
    elif config_key == "TextGenerationJobConfig":
        result["AutoMLJobObjective"] = {"MetricName": TEXT_GENERATION_METRIC}
    else:
        metric = (params.get("AutoMLJobObjective") or {}).get("MetricName") or METRICS_BY_CONFIG[config_key][
            0
        ]
        result["AutoMLJobObjective"] = {"MetricName": metric}
    return {k: v for k, v in result.items() if v is not None}


class EmulatedAutoMLJobV2(EmulatedAutoMLJob):
    """A CreateAutoMLJobV2 job: the V1 lifecycle (outcomes, stop, limits, deployment, faults) with
    the V2 problem type's data checks, statuses, candidates and DescribeAutoMLJobV2 shape.

    :param params: the validated CreateAutoMLJobV2 parameters.
    :param backend: moto's SageMaker backend of the job's account and region.
    """

    is_v2 = True

    def __init__(self, params: dict[str, Any], backend: Any) -> None:
        key = problem_config_key(params)
        assert key is not None
        self.config_key = key
        self.v2_params = copy.deepcopy(params)
        self.config: dict[str, Any] = self.v2_params["AutoMLProblemTypeConfig"][key]
        super().__init__(v1_params(params, key), backend)
        if key != "TabularJobConfig":
            self.problem_type = CONFIG_NAMES[key]
            self.metric = self.params["AutoMLJobObjective"]["MetricName"]
            self.mode = "ENSEMBLING"
            self.algorithms = cand2.algorithms_for(key, self.config)
        if key == "TextGenerationJobConfig":
            self.candidate_count = 1  # one fine-tuned model of the base model
        self.base_model = self.config.get("BaseModelName") or cand2.DEFAULT_BASE_MODEL

    # ------------------------------------------------------------------ analysis

    def _analyse_input(self) -> None:
        if self.config_key == "TabularJobConfig":
            super()._analyse_input()
            return
        unit = self.stage_seconds
        end_of_analysis = 2.0 * unit
        if not data_v2.bucket_ok(self.output_path, self.account_id, self.region_name):
            bucket = self.output_path.split("://", 1)[-1].split("/", 1)[0]
            self._fail_at(
                end_of_analysis,
                f"ClientError: The S3OutputPath bucket '{bucket}' does not exist or is not accessible.",
            )
            return
        reason = data_v2.check_input(
            self.config_key, self.config, self.training_channel, self.account_id, self.region_name
        )
        if reason:
            self._fail_at(end_of_analysis, reason)
            return
        self._plan_run()

    def _plan_run(self) -> None:
        super()._plan_run()
        renames = _RENAMES[self.config_key]
        timeline: list[tuple[float, str, str]] = []
        for offset, primary, secondary in self._timeline:
            entry = (offset, primary, renames.get(secondary, secondary))
            if timeline and timeline[-1][1:] == entry[1:]:
                continue  # a renamed step that repeats the previous one is the same state
            timeline.append(entry)
        self._timeline = timeline

    # ---------------------------------------------------------------- candidates

    def _result_fields(self, ctx: cand.CandidateContext, plan: cand.CandidatePlan) -> dict[str, Any]:
        if self.config_key == "TabularJobConfig":
            return super()._result_fields(ctx, plan)
        return cand2.result_fields(self.config_key, ctx, plan, self.config, self.base_model)

    def _deploy_containers(self, plan: cand.CandidatePlan) -> list[dict[str, Any]]:
        if self.config_key == "TabularJobConfig":
            return super()._deploy_containers(plan)
        fields = cand2.result_fields(self.config_key, self._context(), plan, self.config, self.base_model)
        if "InferenceContainers" in fields:
            return list(fields["InferenceContainers"])
        return list(fields["InferenceContainerDefinitions"]["CPU"])  # the emulator deploys on CPU

    # ----------------------------------------------------------------- describe

    def describe_v2(self) -> dict[str, Any]:
        """Return the DescribeAutoMLJobV2 response."""
        v1 = super().describe()
        params = self.v2_params
        result: dict[str, Any] = {
            key: v1[key]
            for key in (
                "AutoMLJobName",
                "AutoMLJobArn",
                "AutoMLJobStatus",
                "AutoMLJobSecondaryStatus",
                "CreationTime",
                "LastModifiedTime",
                "EndTime",
                "FailureReason",
                "PartialFailureReasons",
                "BestCandidate",
                "AutoMLJobArtifacts",
                "ModelDeployConfig",
                "ModelDeployResult",
            )
            if key in v1
        }
        result["AutoMLJobInputDataConfig"] = params["AutoMLJobInputDataConfig"]
        result["OutputDataConfig"] = params["OutputDataConfig"]
        result["RoleArn"] = params["RoleArn"]
        for key in ("AutoMLJobObjective", "DataSplitConfig", "SecurityConfig", "AutoMLComputeConfig"):
            if params.get(key) is not None:
                result[key] = params[key]
        config = dict(self.config)
        if self.config_key == "TabularJobConfig":
            config["GenerateCandidateDefinitionsOnly"] = self.candidates_only
        result["AutoMLProblemTypeConfig"] = {self.config_key: config}
        result["AutoMLProblemTypeConfigName"] = CONFIG_NAMES[self.config_key]
        if self.config_key != "TabularJobConfig":
            result.pop("AutoMLJobArtifacts", None)
        resolved = self._resolved_v2()
        if resolved:
            result["ResolvedAttributes"] = resolved
        return result

    def _resolved_v2(self) -> dict[str, Any] | None:
        if not self.analysed or self.problem_type is None or self.metric is None:
            return None
        resolved: dict[str, Any] = {"CompletionCriteria": self._completion_criteria()}
        if self.config_key == "TabularJobConfig":
            resolved["AutoMLJobObjective"] = {"MetricName": self.metric or default_metric(self.problem_type)}
            resolved["AutoMLProblemTypeResolvedAttributes"] = {
                "TabularResolvedAttributes": {"ProblemType": self.problem_type}
            }
        elif self.config_key == "TextGenerationJobConfig":
            resolved["AutoMLProblemTypeResolvedAttributes"] = {
                "TextGenerationResolvedAttributes": {"BaseModelName": self.base_model}
            }
        else:
            resolved["AutoMLJobObjective"] = {"MetricName": self.metric}
        return resolved

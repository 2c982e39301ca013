"""AutopilotCreateJobV2Operator: CreateAutoMLJobV2 (tabular, time-series forecasting, text, image,
text generation) with the V1 operator's re-attachment, on_kill stop, return value and waiting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_autopilot.operators.base import AWS_TEMPLATE_FIELDS
from airflow_autopilot.operators.create import AutopilotCreateJobOperator

# The domain core (V2 request rules, naming) is imported where the task runs: DAG files import
# this module, and parsing them needs none of it.
if TYPE_CHECKING:
    from airflow_autopilot.core.naming import TryChain

#: Parameters that go into the V2 request (and are template fields).
V2_REQUEST_PARAMETERS: tuple[str, ...] = (
    "job_name",
    "problem_type_config",
    "s3_input_uri",
    "validation_s3_input_uri",
    "input_data_config",
    "content_type",
    "compression_type",
    "s3_data_type",
    "s3_output_path",
    "output_kms_key_id",
    "role_arn",
    "objective_metric",
    "max_candidates",
    "max_runtime_per_training_job_in_seconds",
    "max_auto_ml_job_runtime_in_seconds",
    "validation_fraction",
    "security_config",
    "model_deploy_config",
    "compute_config",
    "tags",
    "extras",
)


class AutopilotCreateJobV2Operator(AutopilotCreateJobOperator):
    """
    Create a SageMaker Autopilot job with CreateAutoMLJobV2, re-attaching on retries; optionally wait.

    Every problem type: give ``problem_type_config`` as SageMaker's ``AutoMLProblemTypeConfig``, one of
    ``{"TabularJobConfig": {...}}``, ``{"TimeSeriesForecastingJobConfig": {...}}``,
    ``{"TextClassificationJobConfig": {...}}``, ``{"ImageClassificationJobConfig": {...}}`` or
    ``{"TextGenerationJobConfig": {...}}``. The request is validated in ``execute`` before any AWS
    call (the problem type's config, its objective metrics, forecast frequency, horizon and
    quantiles, column names, data split, deploy config, name and tags); every problem is reported at
    once. Naming, retries, ``on_kill``, the return value (``{"AutoMLJobName", "AutoMLJobArn"}``) and
    waiting are :class:`AutopilotCreateJobOperator`'s.

    :param problem_type_config: ``AutoMLProblemTypeConfig`` (exactly one problem type).
    :param s3_input_uri: S3 prefix (or manifest) of the training data.
    :param validation_s3_input_uri: S3 prefix of separate validation data (second channel).
    :param input_data_config: the full ``AutoMLJobInputDataConfig`` channel list, instead of the above.
    :param content_type: the channels' ``ContentType`` (``image/png`` and the like for images).
    :param compression_type: ``None`` or ``Gzip``.
    :param s3_data_type: ``S3Prefix`` (default), ``ManifestFile`` or ``AugmentedManifestFile``.
    :param s3_output_path: ``OutputDataConfig.S3OutputPath``.
    :param output_kms_key_id: ``OutputDataConfig.KmsKeyId``.
    :param role_arn: the SageMaker execution role ARN.
    :param objective_metric: ``AutoMLJobObjective.MetricName`` (allowed ones depend on the problem type).
    :param max_candidates: merged into the problem type's ``CompletionCriteria.MaxCandidates``.
    :param max_runtime_per_training_job_in_seconds: merged into ``CompletionCriteria``.
    :param max_auto_ml_job_runtime_in_seconds: merged into ``CompletionCriteria``.
    :param validation_fraction: ``DataSplitConfig.ValidationFraction`` (0 < x < 1).
    :param security_config: ``SecurityConfig``.
    :param model_deploy_config: ``ModelDeployConfig``.
    :param compute_config: ``AutoMLComputeConfig``.
    :param tags: ``{key: value}`` or a tag list; the operator adds its ``airflow-autopilot:owner`` tag.
    :param extras: CreateAutoMLJobV2 fields merged last, nested dicts key by key.

    ``job_name``, ``job_name_prefix``, ``wait_for_completion``, ``deferrable``, ``poll_interval``,
    ``max_wait_seconds`` and the connection parameters are :class:`AutopilotCreateJobOperator`'s.
    """

    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "job_name_prefix", *V2_REQUEST_PARAMETERS)
    template_fields_renderers = {
        "problem_type_config": "json",
        "input_data_config": "json",
        "security_config": "json",
        "model_deploy_config": "json",
        "compute_config": "json",
        "tags": "json",
        "extras": "json",
    }
    create_operation = "CreateAutoMLJobV2"

    def __init__(
        self,
        *,
        problem_type_config: dict[str, Any] | None = None,
        s3_input_uri: str | None = None,
        validation_s3_input_uri: str | None = None,
        input_data_config: list[dict[str, Any]] | None = None,
        content_type: str | None = None,
        compression_type: str | None = None,
        s3_data_type: str | None = None,
        s3_output_path: str | None = None,
        output_kms_key_id: str | None = None,
        role_arn: str | None = None,
        objective_metric: str | None = None,
        max_candidates: int | str | None = None,
        max_runtime_per_training_job_in_seconds: int | str | None = None,
        max_auto_ml_job_runtime_in_seconds: int | str | None = None,
        validation_fraction: float | str | None = None,
        security_config: dict[str, Any] | None = None,
        model_deploy_config: dict[str, Any] | None = None,
        compute_config: dict[str, Any] | None = None,
        tags: dict[str, str] | list[dict[str, str]] | None = None,
        extras: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        # The V1 operator assigns the parameters both share (verbatim, as template fields must be).
        super().__init__(
            s3_input_uri=s3_input_uri,
            validation_s3_input_uri=validation_s3_input_uri,
            input_data_config=input_data_config,
            content_type=content_type,
            compression_type=compression_type,
            s3_data_type=s3_data_type,
            s3_output_path=s3_output_path,
            output_kms_key_id=output_kms_key_id,
            role_arn=role_arn,
            objective_metric=objective_metric,
            max_candidates=max_candidates,
            max_runtime_per_training_job_in_seconds=max_runtime_per_training_job_in_seconds,
            max_auto_ml_job_runtime_in_seconds=max_auto_ml_job_runtime_in_seconds,
            validation_fraction=validation_fraction,
            security_config=security_config,
            model_deploy_config=model_deploy_config,
            tags=tags,
            extras=extras,
            **kwargs,
        )
        self.problem_type_config = problem_type_config
        self.compute_config = compute_config

    def build_request(self, chain: TryChain) -> tuple[dict[str, Any], list[str]]:
        """
        The validated CreateAutoMLJobV2 request for this try chain, with the ownership tag.

        :param chain: the task's try chain.
        :return: the request and the top-level ``extras`` fields passed through unchecked.
        :raises AutopilotValidationError: listing every problem; nothing is sent to AWS.
        """
        from airflow_autopilot.core.requests_v2 import build_create_v2_request, validate_operator_v2_request
        from airflow_autopilot.core.validation import seconds_errors

        errors: list[str] = []
        from airflow_autopilot.core.waits.pace import poll_interval_errors  # the rule is in core

        errors += poll_interval_errors(self.poll_interval)
        errors += seconds_errors(self.max_wait_seconds, "max_wait_seconds", allow_none=True)
        v1_only = (
            "target_attribute_name",
            "problem_type",
            "mode",
            "algorithms",
            "feature_specification_s3_uri",
        )
        for name in (*v1_only, "generate_candidate_definitions_only"):
            if getattr(self, name) is not None:
                errors.append(
                    f"{name}: a CreateAutoMLJob (V1) parameter; with V2 it goes inside problem_type_config "
                    "(for example TabularJobConfig.TargetAttributeName)"
                )
        params = {name: getattr(self, name) for name in V2_REQUEST_PARAMETERS}
        params["job_name"] = self.resolve_job_name(chain, errors)
        params["owner_tag"] = chain.owner_tag
        request, build_errors = build_create_v2_request(params)
        passthrough = validate_operator_v2_request(
            request, errors + build_errors, channels_given=self.input_data_config is not None
        )
        return request, passthrough

    def submit(self, request: dict[str, Any], *, checked: bool) -> str:
        """
        CreateAutoMLJobV2; return the ARN.

        :param request: the validated request.
        :param checked: every field is known to the validation rules (else send it as it is).
        """
        if checked:
            return self.hook.create_auto_ml_job_v2(request)
        return str(self.hook.client.create_auto_ml_job_v2(**request)["AutoMLJobArn"])

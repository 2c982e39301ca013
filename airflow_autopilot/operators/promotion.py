"""Promotion operators driven by XCom: the promote-or-reject gate, Model Registry registration and
endpoint deployment of a BestCandidate.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import BaseBranchOperator, conf

from airflow_autopilot.core.fields.endpoint import (
    ENDPOINT,
    ENDPOINT_CONFIG,
    ENDPOINT_CONFIG_DEFAULTS,
    UPDATE_ENDPOINT,
    VARIANTS,
)
from airflow_autopilot.core.fields.model import DEFAULT_INSTANCE_TYPE as DEFAULT_INSTANCE_TYPE
from airflow_autopilot.core.fields.model import MODEL, MODEL_DEFAULTS
from airflow_autopilot.core.fields.model_package import MODEL_PACKAGE, MODEL_PACKAGE_DEFAULTS
from airflow_autopilot.core.fields.spec import RequestTables
from airflow_autopilot.core.lineage_names import ENDPOINT_ALIAS, MODEL_PACKAGE_GROUP_ALIAS
from airflow_autopilot.operators._tables import RequestTablesMixin
from airflow_autopilot.operators.base import (
    AWS_TEMPLATE_FIELDS,
    AutopilotBaseOperator,
)
from airflow_autopilot.operators.lineage import AutopilotLineageMixin

# The domain core is imported where a task runs: DAG files import this module, and parsing
# them needs none of it.
if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_autopilot.core.lineage import TaskLineage
    from airflow_autopilot.core.promotion import DeployPlan, PromotionDecision
    from airflow_autopilot.core.waits.endpoint import EndpointWait


#: XCom key of the gate's decision (``PromotionDecision.to_dict()``).
DECISION_XCOM_KEY = "promotion_decision"
#: XCom key of a deployment's rollout record (:func:`~airflow_autopilot.core.rollout.rollout_record`).
ROLLOUT_XCOM_KEY = "rollout"


#: The register operator's request table (CreateModelPackage) and defaults.
REGISTER_TABLES = RequestTables(MODEL_PACKAGE, defaults=MODEL_PACKAGE_DEFAULTS)
#: The deploy operator's request tables (CreateEndpoint, CreateModel, CreateEndpointConfig and
#: UpdateEndpoint) and defaults.
DEPLOY_TABLES = RequestTables(
    ENDPOINT,
    MODEL,
    ENDPOINT_CONFIG,
    UPDATE_ENDPOINT,
    defaults={**MODEL_DEFAULTS, **ENDPOINT_CONFIG_DEFAULTS},
)


def _task_ids(value: Any, field: str) -> list[str]:
    from airflow_autopilot.core.promotion import PromotionInputError

    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, Iterable)
        or isinstance(value, Mapping)
        or not (ids := list(value))
        or not all(isinstance(i, str) and i for i in ids)
    ):
        raise PromotionInputError(f"{field}: {value!r} must be a task id or a non-empty list of task ids")
    return ids


# --- the gate ------------------------------------------------------------------------------------
class AutopilotPromotionBranchOperator(BaseBranchOperator, AutopilotBaseOperator):
    """
    Branch to ``promote_task_ids`` or ``reject_task_ids`` from a BestCandidate.

    The candidate is promoted when its objective value meets ``threshold`` (``>=`` for Maximize,
    ``<=`` for Minimize; the direction comes from ``FinalAutoMLJobObjectiveMetric.Type``, else from
    the metric name) and, when ``model_package_group_name`` is set, beats the champion (the newest
    Approved version of the group, with the metric :class:`AutopilotRegisterCandidateOperator`
    stored on it) by more than 0 and at least ``min_improvement``. A group that does not exist or has
    no Approved version means there is no champion. A version registered for this same candidate
    (an earlier run of the DAG run got as far as registering it) is never its champion, so a
    cleared or re-run promotion reaches the decision the first run reached.

    The decision (``PromotionDecision.to_dict()``: promote, reason, values) is pushed to XCom under
    ``promotion_decision`` and logged; Airflow records the branch it followed under ``skipmixin_key``
    (``{"followed": [...]}``).

    Gates on more than the objective: ``metric_conditions`` are checked against the candidate's
    ``CandidateProperties.CandidateMetrics`` and ``report_conditions`` against numbers in the
    model-insights and explainability reports under ``CandidateArtifactLocations`` (read from S3).
    Every condition must pass; the decision's ``conditions`` lists each one (threshold and champion
    included) with its value and verdict, in the log and in XCom. Conditions are validated before
    any AWS call; a metric or report value that is missing fails its condition.

    :param best_candidate: the BestCandidate (templated): a dict, its JSON, or its Jinja-rendered
        repr, e.g. ``"{{ ti.xcom_pull(task_ids='best_candidate') }}"`` or ``best_task.output``.
    :param promote_task_ids: task id(s) to follow on promotion.
    :param reject_task_ids: task id(s) to follow on rejection.
    :param threshold: the bar in metric units (templated); ``None`` for no bar.
    :param model_package_group_name: compare with this group's champion (templated); ``None`` skips.
    :param min_improvement: least improvement over the champion, in metric units (templated, >= 0).
    :param metric_conditions: ``{"F1": ">= 0.80", "LogLoss": "<= 0.4"}``: metric name to
        ``<operator> <number>`` (operators ``>= <= > < == !=``), over ``CandidateMetrics`` (templated).
    :param metric_set: the ``Set`` of ``CandidateMetrics`` the conditions read: ``Validation``
        (default), ``Train`` or ``Test``.
    :param report_conditions: ``[{"report": "ModelInsights", "path":
        "binary_classification_metrics.recall.value", "condition": ">= 0.7"}]``: ``report`` is
        ``ModelInsights`` or ``Explainability``, ``path`` a dotted JSON path into the report file
        (``file``, default ``report.json`` / ``analysis.json`` under the report's prefix) (templated).
    """

    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS,
        "best_candidate",
        "threshold",
        "model_package_group_name",
        "min_improvement",
        "metric_conditions",
        "metric_set",
        "report_conditions",
    )
    ui_color = "#fff2cc"

    def __init__(
        self,
        *,
        best_candidate: Any,
        promote_task_ids: str | Sequence[str],
        reject_task_ids: str | Sequence[str],
        threshold: float | str | None = None,
        model_package_group_name: str | None = None,
        min_improvement: float | str = 0.0,
        metric_conditions: dict[str, str] | str | None = None,
        metric_set: str = "Validation",
        report_conditions: list[dict[str, str]] | str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.best_candidate = best_candidate
        self.promote_task_ids = promote_task_ids
        self.reject_task_ids = reject_task_ids
        self.threshold = threshold
        self.model_package_group_name = model_package_group_name
        self.min_improvement = min_improvement
        self.metric_conditions = metric_conditions
        self.metric_set = metric_set
        self.report_conditions = report_conditions

    def decide(self) -> PromotionDecision:
        """Validate the inputs, look up the champion and return the decision."""
        from airflow_autopilot.core.promotion import (
            CandidateScore,
            Champion,
            PromotionInputError,
            decide_promotion,
            parse_mapping,
            parse_number,
            validate_resource_name,
        )

        promote_ids = _task_ids(self.promote_task_ids, "promote_task_ids")
        reject_ids = _task_ids(self.reject_task_ids, "reject_task_ids")
        if set(promote_ids) & set(reject_ids):
            raise PromotionInputError("promote_task_ids and reject_task_ids must not share task ids")
        best = parse_mapping(self.best_candidate, "best_candidate")
        score = CandidateScore.from_best_candidate(best)
        threshold = parse_number(self.threshold, "threshold")
        min_improvement = parse_number(self.min_improvement, "min_improvement") or 0.0
        if min_improvement < 0:
            raise PromotionInputError(f"min_improvement: {min_improvement} must be >= 0")
        from airflow_autopilot.core.gates import (
            check_metric,
            check_report,
            combine,
            parse_metric_conditions,
            parse_report_conditions,
            report_uri,
        )

        metric_conditions = parse_metric_conditions(self.metric_conditions, metric_set=self.metric_set)
        report_conditions = parse_report_conditions(self.report_conditions)
        group = self.model_package_group_name
        champion = None
        if group is not None:  # None skips the champion; a rendered "None" is a missing XCom
            validate_resource_name(group, "model_package_group_name")
            package = self.model_hook.latest_approved_version(group, excluding_candidate=score.candidate_name)
            if package is None:
                self.log.info(
                    "Model Package Group %s has no Approved version of another candidate: no champion",
                    group,
                )
            else:
                champion = Champion.from_package(package)
        decision = decide_promotion(
            score, threshold=threshold, champion=champion, min_improvement=min_improvement
        )
        results = [check_metric(best, condition) for condition in metric_conditions]
        for condition in report_conditions:
            uri = report_uri(best, condition)
            document = self.model_hook.read_json_or_none(uri) if uri else None
            results.append(check_report(document, condition, uri))
        return combine(decision, results)

    def choose_branch(self, context: Context) -> list[str]:
        from airflow_autopilot.core.xcom import to_json_safe

        decision = self.decide()
        self.log.info(
            "Promotion gate: %s %s. %s",
            "PROMOTE" if decision.promote else "REJECT",
            decision.candidate_name,
            decision.reason,
        )
        for row in decision.conditions:
            self.log.info(
                "  %-4s %s %s: %s%s",
                "PASS" if row["passed"] else "FAIL",
                row["condition"],
                row["rule"],
                "missing" if row["value"] is None else f"{row['value']:.6g}",
                f" ({row['detail']})" if row["detail"] else "",
            )
        context["ti"].xcom_push(key=DECISION_XCOM_KEY, value=to_json_safe(decision.to_dict()))
        field = "promote_task_ids" if decision.promote else "reject_task_ids"
        return _task_ids(getattr(self, field), field)


# --- Model Registry ------------------------------------------------------------------------------
class AutopilotRegisterCandidateOperator(RequestTablesMixin, AutopilotLineageMixin, AutopilotBaseOperator):
    """
    Register a BestCandidate as a new version of a Model Package Group (created when missing).

    The version holds every inference container (Image, ModelDataUrl, Environment) and, in its
    CustomerMetadataProperties, ``autopilot:job-name``, ``autopilot:candidate-name``,
    ``autopilot:objective-metric``, ``autopilot:objective-value`` and ``autopilot:objective-type``
    (what :class:`AutopilotPromotionBranchOperator` reads from the champion).

    Retry-safe and safe under concurrency: CreateModelPackage gets a ``ClientToken`` derived from the
    job, the candidate and the group, so every try (and every task) registering that candidate gets
    the version the first one created, with a constant number of calls whatever the group's size.
    Returns ``{"ModelPackageArn", "ModelPackageVersion"}``.

    :param best_candidate: the BestCandidate (templated; dict, JSON or Jinja-rendered repr).
    :param job_name: the AutoMLJobName the candidate comes from (templated).
    :param model_package_group_description: description of a group this task creates.
    :param processing_unit: ``CPU`` (default) or ``GPU``: which of a V2 text or image candidate's
        ``InferenceContainerDefinitions`` to register (other candidates have one container list).
    :param emit_asset_events: add the AssetAlias ``autopilot-model-package-group`` to ``outlets``
        and an event for the group's asset (:func:`~airflow_autopilot.assets.model_package_group_asset`)
        with ``job_name``, ``candidate_name``, ``objective_metric``, ``objective_value``,
        ``model_package_group``, ``model_package_arn``, ``model_package_version`` and
        ``approval_status`` in its extra (docs/lineage.md).

    The CreateModelPackage parameters (from its table, :mod:`airflow_autopilot.core.fields.model_package`):

    """

    request_tables = REGISTER_TABLES
    other_template_fields = (
        "best_candidate",
        "job_name",
        "model_package_group_description",
        "processing_unit",
    )
    ui_color = "#c9daf8"
    asset_alias_name = MODEL_PACKAGE_GROUP_ALIAS

    def __init__(
        self,
        *,
        best_candidate: Any,
        job_name: str,
        model_package_group_description: str | None = None,
        processing_unit: str | None = None,
        emit_asset_events: bool = False,
        **kwargs: Any,
    ) -> None:
        request = self.take_request_parameters(kwargs)
        super().__init__(**kwargs)
        self.init_lineage(emit_asset_events)
        self.assign_request_parameters(request)
        self.best_candidate = best_candidate
        self.processing_unit = processing_unit
        self.job_name = job_name
        self.model_package_group_description = model_package_group_description

    def build_request(self) -> dict[str, Any]:
        """The CreateModelPackage request, validated (no AWS call)."""
        from airflow_autopilot.core.promotion import (
            CandidateScore,
            candidate_metadata,
            inference_containers,
            parse_mapping,
            refuse,
            request_errors,
        )
        from airflow_autopilot.core.validation import validate_job_name

        best = parse_mapping(self.best_candidate, "best_candidate")
        score = CandidateScore.from_best_candidate(best)
        containers = inference_containers(best, processing_unit=self.processing_unit)
        validate_job_name(self.job_name, "job_name")
        params = self.request_parameters()
        spec = self.request_tables.get(MODEL_PACKAGE)
        built = spec.build(
            {
                **params,
                "model_package_description": params["model_package_description"]
                or f"Autopilot job {self.job_name}, candidate {score.candidate_name}",
                "containers": containers,
                "own_metadata": candidate_metadata(self.job_name, score),
            }
        )
        # The hook adds the ClientToken (derived from the job, the candidate and the group).
        refuse(request_errors(spec, built))
        return built[0]

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autopilot.core.promotion import (
            META_CANDIDATE_NAME,
            CandidateScore,
            parse_mapping,
            registration_token,
        )
        from airflow_autopilot.core.xcom import to_json_safe

        request = self.build_request()
        group = request["ModelPackageGroupName"]
        candidate = request["CustomerMetadataProperties"][META_CANDIDATE_NAME]
        hook = self.model_hook
        hook.ensure_model_package_group(group, self.model_package_group_description)
        package = hook.register_version(request, registration_token(self.job_name, candidate, group))
        self.log.info(
            "Version %s of %s holds job %s, candidate %s (%s); a retry gets this same version",
            package.get("ModelPackageVersion"),
            group,
            self.job_name,
            candidate,
            package.get("ModelApprovalStatus"),
        )
        from airflow_autopilot.core.lineage import registration_lineage, score_extra

        score = CandidateScore.from_best_candidate(parse_mapping(self.best_candidate, "best_candidate"))
        self.record_lineage(
            context,
            registration_lineage(
                job_name=self.job_name,
                group_name=group,
                containers=request["InferenceSpecification"]["Containers"],
                score=score_extra(score.candidate_name, score.metric_name, score.value),
                package_arn=package["ModelPackageArn"],
                version=package.get("ModelPackageVersion"),
                approval_status=package.get("ModelApprovalStatus"),
            ),
        )
        return to_json_safe(
            {
                "ModelPackageArn": package["ModelPackageArn"],
                "ModelPackageVersion": package.get("ModelPackageVersion"),
            }
        )

    def planned_lineage(self) -> TaskLineage | None:
        """The candidate's job output and artifacts (the version is known once registered)."""
        from airflow_autopilot.core.lineage import LineageError, TaskLineage, candidate_inputs
        from airflow_autopilot.core.promotion import PromotionInputError, inference_containers, parse_mapping

        try:
            best = parse_mapping(self.best_candidate, "best_candidate")
            containers = inference_containers(best, processing_unit=self.processing_unit)
            return TaskLineage(inputs=candidate_inputs(containers, self.job_name))
        except (PromotionInputError, LineageError):
            return None


# --- endpoint ------------------------------------------------------------------------------------
class AutopilotDeployCandidateOperator(RequestTablesMixin, AutopilotLineageMixin, AutopilotBaseOperator):
    """
    Deploy a BestCandidate to a real-time endpoint: CreateModel (every inference container),
    CreateEndpointConfig, then CreateEndpoint, or UpdateEndpoint when the endpoint exists with
    another config; then wait until it is InService.

    Names are derived so retries reuse what an earlier try created: the model is
    ``<candidate name>-<8 hex>`` and the config ``<endpoint name>-<8 hex>`` (hash of what they hold),
    both at most 63 characters. An endpoint already on this config is only waited for.

    Returns ``{"EndpointName", "EndpointArn", "ModelName", "EndpointConfigName"}``. An endpoint that
    ends ``Failed`` fails the task (no retries) with SageMaker's FailureReason.

    Guardrailed updates: ``rollout`` (``"canary:10%:600s"``, grammar in docs/promotion.md) or
    ``deployment_config`` (SageMaker's DeploymentConfig) says how an update of an existing endpoint
    shifts traffic, and ``auto_rollback_alarms`` which CloudWatch alarms roll it back (each checked
    to exist with DescribeAlarms before any SageMaker call). The wait (sync or deferred) logs each
    phase and traffic shift and ends in one of three outcomes: promoted (the new config serves all
    traffic: the task succeeds), rolled back (the endpoint serves its previous config: the task
    fails with :class:`~airflow_autopilot.core.rollout.AutopilotRolledBack` naming the alarm(s) and
    the phase) or failed. Whenever the task waited, XCom ``rollout`` holds the rollout record:
    ``endpoint_name``, ``outcome``, ``previous_config``, ``new_config``, ``serving_config``,
    ``phases``, ``alarms``, ``rolled_back_during`` and ``failure_reason``.

    :param best_candidate: the BestCandidate (templated; dict, JSON or Jinja-rendered repr).
    :param inference_response_keys: e.g. ``["predicted_label", "probability"]``: sets
        ``SAGEMAKER_INFERENCE_OUTPUT`` on the containers, checked against ``SAGEMAKER_INFERENCE_SUPPORTED``.
    :param processing_unit: ``CPU`` or ``GPU``: which of a V2 text or image candidate's
        ``InferenceContainerDefinitions`` to deploy; default: the instance type's (GPU for ml.g*/ml.p*).
    :param wait_for_completion: wait until InService (default True).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between endpoint checks.
    :param max_wait_seconds: give up waiting after this long.
    :param model_package_arn: the Model Registry version this candidate was registered as
        (templated; lineage and asset metadata only: the endpoint is built from ``best_candidate``).
    :param emit_asset_events: add the AssetAlias ``autopilot-endpoint`` to ``outlets`` and, once
        the endpoint is InService (or without waiting, once requested), an event for the endpoint's
        asset (:func:`~airflow_autopilot.assets.endpoint_asset`) with ``endpoint_name``,
        ``endpoint_arn``, ``endpoint_config_name``, ``model_name``, ``candidate_name``,
        ``objective_metric``, ``objective_value`` and ``model_package_arn`` in its extra.

    The CreateEndpoint, CreateModel, CreateEndpointConfig and UpdateEndpoint parameters (from their
    tables, :mod:`airflow_autopilot.core.fields.endpoint` and :mod:`~airflow_autopilot.core.fields.model`):

    """

    request_tables = DEPLOY_TABLES
    other_template_fields = (
        "best_candidate",
        "inference_response_keys",
        "processing_unit",
        "model_package_arn",
    )
    ui_color = "#c9daf8"
    asset_alias_name = ENDPOINT_ALIAS

    def __init__(
        self,
        *,
        best_candidate: Any,
        inference_response_keys: Sequence[str] | str | None = None,
        processing_unit: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        max_wait_seconds: float = 3600.0,
        model_package_arn: str | None = None,
        emit_asset_events: bool = False,
        **kwargs: Any,
    ) -> None:
        request = self.take_request_parameters(kwargs)
        super().__init__(**kwargs)
        self.init_lineage(emit_asset_events)
        self.assign_request_parameters(request)
        self.best_candidate = best_candidate
        self.model_package_arn = model_package_arn
        self.inference_response_keys = inference_response_keys
        self.processing_unit = processing_unit
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_wait_seconds = max_wait_seconds

    def request_parameters(self) -> dict[str, Any]:
        """The request parameters, as rendered; a serverless deployment's instance defaults left out."""
        from airflow_autopilot.core.fields.endpoint import serverless_params

        return serverless_params(super().request_parameters())

    def plan(self) -> DeployPlan:
        """Validate the inputs and derive the names (no AWS call): every problem of the four
        requests at once, each naming the request field, the rule and the parameter."""
        from airflow_autopilot.core.fields.endpoint import endpoint_config_request, endpoint_request
        from airflow_autopilot.core.fields.model import model_request
        from airflow_autopilot.core.promotion import (
            CandidateScore,
            DeployPlan,
            inference_containers,
            parse_mapping,
            parse_string_list,
            refuse,
            request_errors,
            safe_resource_name,
            with_response_keys,
        )
        from airflow_autopilot.core.rollout import instance_count_errors
        from airflow_autopilot.core.validation import seconds_errors
        from airflow_autopilot.core.waits.pace import poll_interval_errors

        best = parse_mapping(self.best_candidate, "best_candidate")
        score = CandidateScore.from_best_candidate(best)
        keys = parse_string_list(self.inference_response_keys, "inference_response_keys")
        containers = with_response_keys(inference_containers(best, processing_unit=self.deploy_unit()), keys)
        params = self.request_parameters()
        # Each request from this operator's own table (an extended copy in a subclass).
        endpoint_spec, model_spec, config_spec, update_spec = (
            self.request_tables.get(spec) for spec in (ENDPOINT, MODEL, ENDPOINT_CONFIG, UPDATE_ENDPOINT)
        )
        model_name = params["model_name"] or safe_resource_name(score.candidate_name, containers)
        model = model_request(params, model_name=model_name, containers=containers, spec=model_spec)
        # The config's name is a hash of what it holds: derived once the rest is known to be valid.
        config = endpoint_config_request(params, config_name="", model_name=model_name, spec=config_spec)
        endpoint = endpoint_request(endpoint_spec, params, config_name="")
        update = endpoint_request(update_spec, params, config_name="")
        derived = frozenset({"EndpointConfigName"})
        variant = config[0][VARIANTS][0]
        count = variant.get("InitialInstanceCount")
        refuse(
            [
                *request_errors(endpoint_spec, endpoint, derived=derived),
                *request_errors(model_spec, model),
                *request_errors(config_spec, config, derived=derived),
                *request_errors(update_spec, update, derived=derived),
                *instance_count_errors(update[0].get("DeploymentConfig"), count),
                *poll_interval_errors(self.poll_interval),
                *seconds_errors(self.max_wait_seconds, "max_wait_seconds"),
            ]
        )
        endpoint_name = endpoint[0]["EndpointName"]
        # What else the config holds (serverless, data capture, a weight) makes it another config;
        # left out when not set, so the names of plain deployments stay what they were.
        options = {
            key: value
            for key, value in {
                "ServerlessConfig": variant.get("ServerlessConfig"),
                "InitialVariantWeight": variant.get("InitialVariantWeight"),
                "DataCaptureConfig": config[0].get("DataCaptureConfig"),
            }.items()
            if value is not None and not (key == "InitialVariantWeight" and value == 1.0)
        }
        return DeployPlan(
            endpoint_name=endpoint_name,
            model_name=model_name,
            config_name=safe_resource_name(
                endpoint_name, model_name, variant.get("InstanceType"), count, *([options] if options else [])
            ),
            containers=containers,
            instance_count=count,
            tags=model[0].get("Tags", []),
            instance_type=variant.get("InstanceType"),
        )

    def rollout_alarms(self) -> list[str]:
        """The ``auto_rollback_alarms`` names (validated with the requests in :meth:`plan`)."""
        from airflow_autopilot.core.rollout import alarm_names

        return alarm_names(self.request_parameters().get("auto_rollback_alarms"))[0]

    def check_alarms_exist(self, names: Sequence[str]) -> None:
        """
        Refuse alarms CloudWatch does not know (DescribeAlarms), before any SageMaker call: SageMaker
        would accept the update and never roll it back.

        :param names: the alarm names.
        :raises PromotionInputError: naming ``auto_rollback_alarms``, the missing alarms and the rule.
        """
        if not names:
            return
        from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

        from airflow_autopilot.core.errors import guarded_client
        from airflow_autopilot.core.permissions import package_class
        from airflow_autopilot.core.promotion import PromotionInputError

        # Guarded as the hooks' clients are: a denied DescribeAlarms names statement ReadAlarms.
        client = guarded_client(
            AwsBaseHook(**self.hook_kwargs(), client_type="cloudwatch").get_conn(), package_class(self)
        )
        found: set[str] = set()
        for page in client.get_paginator("describe_alarms").paginate(
            AlarmNames=list(names), AlarmTypes=["MetricAlarm", "CompositeAlarm"]
        ):
            for kind in ("MetricAlarms", "CompositeAlarms"):
                found.update(alarm["AlarmName"] for alarm in page.get(kind, []))
        missing = [name for name in names if name not in found]
        if missing:
            raise PromotionInputError(
                f"auto_rollback_alarms: {missing} do(es) not exist in CloudWatch (region "
                f"{client.meta.region_name}); every alarm must exist, or SageMaker would never roll "
                "the update back"
            )

    def rollout_wait(self, plan: DeployPlan, previous_config: str | None) -> EndpointWait:
        """The wait of this deployment: for the new config, knowing the previous one and the alarms."""
        from airflow_autopilot.core.waits.endpoint import EndpointWait

        return EndpointWait(
            plan.endpoint_name,
            plan.config_name,
            previous_config=previous_config,
            alarms=self.rollout_alarms(),
            poll_interval=self.poll_interval,
            timeout=self.max_wait_seconds,
            log=self.log,
        )

    def report_rollout(self, context: Context, record: Mapping[str, Any] | None, message: str) -> None:
        """
        Push the rollout record to XCom (key ``rollout``); raise
        :class:`~airflow_autopilot.core.rollout.AutopilotRolledBack` when it says rolled back.

        :param context: the task context.
        :param record: the rollout record, if the wait produced one.
        :param message: the wait's message (the reason), for a rollback's error.
        """
        from airflow_autopilot.core.rollout import AutopilotRolledBack

        if not isinstance(record, Mapping):
            return
        ti = context.get("ti") if isinstance(context, Mapping) else None
        if ti is not None:
            ti.xcom_push(key=ROLLOUT_XCOM_KEY, value=dict(record))
        self.log.info(
            "Rollout of %s: %s (previous config %s, new config %s, serving %s)",
            record.get("endpoint_name"),
            record.get("outcome"),
            record.get("previous_config"),
            record.get("new_config"),
            record.get("serving_config"),
        )
        if record.get("outcome") == "rolled_back":
            during = record.get("rolled_back_during")
            raise AutopilotRolledBack(
                f"{message}. Rolled back during: {during or 'an unknown phase'}", record
            )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autopilot.core.xcom import to_json_safe
        from airflow_autopilot.exceptions import AutopilotError

        plan = self.plan()
        params = self.request_parameters()
        self.check_alarms_exist(self.rollout_alarms())
        status = self.model_hook.deploy(
            plan.endpoint_name,
            model_name=plan.model_name,
            config_name=plan.config_name,
            role_arn=params["role_arn"],
            containers=plan.containers,
            instance_type=plan.instance_type,
            instance_count=plan.instance_count,
            tags=plan.tags,
            poll_interval=self.poll_interval,
            timeout=self.max_wait_seconds,
            params=params,
            tables=self.request_tables,
        )
        # While an update runs, DescribeEndpoint still names the config being replaced: the previous
        # one (read from the describe the deploy made anyway, not from one more call).
        previous_config = status.get("EndpointConfigName")
        if previous_config == plan.config_name:
            previous_config = None  # a new endpoint, or an earlier try's update already through
        if status.get("EndpointStatus") == "Creating" and (
            params.get("rollout") or params.get("deployment_config")
        ):
            self.log.info(
                "Endpoint %s is new: it is created on %s directly (a rollout shifts the traffic of "
                "an update; there is none yet)",
                plan.endpoint_name,
                plan.config_name,
            )
        result = to_json_safe(
            {
                "EndpointName": plan.endpoint_name,
                "EndpointArn": status.get("EndpointArn"),
                "ModelName": plan.model_name,
                "EndpointConfigName": plan.config_name,
            }
        )
        if self.wait_for_completion:
            wait = self.rollout_wait(plan, previous_config)
            try:
                self.wait_until_in_service(
                    self.model_hook,
                    plan.endpoint_name,
                    plan.config_name,
                    status,
                    poll_interval=self.poll_interval,
                    timeout=self.max_wait_seconds,
                    result=result,
                    wait=wait,
                )
            except AutopilotError as failed:  # rolled back, failed, or timed out (outcome None)
                self.report_rollout(context, wait.record(wait.last or status), str(failed))
                raise
            self.report_rollout(context, wait.record(wait.last or status), "")
        self.record_deployment(context, result)
        return result

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, result: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """
        Resume after :class:`~airflow_autopilot.triggers.AutopilotEndpointTrigger`: push the event's
        rollout record; the result when promoted, else fail: with
        :class:`~airflow_autopilot.core.rollout.AutopilotRolledBack` for a rollback, with the trigger's
        message otherwise (the FailureReason for a Failed endpoint).
        """
        if isinstance(event, Mapping):
            self.report_rollout(context, event.get("rollout"), str(event.get("message") or ""))
        if not result and isinstance(event, Mapping):
            # dag.test() resumes with the event alone (it drops the deferral's kwargs): the result is
            # derived again, as execute derived it, with the ARN the event's endpoint carries.
            from airflow_autopilot.core.xcom import to_json_safe

            plan = self.plan()
            described = event.get("endpoint")
            endpoint: Mapping[str, Any] = described if isinstance(described, Mapping) else {}
            result = to_json_safe(
                {
                    "EndpointName": plan.endpoint_name,
                    "EndpointArn": endpoint.get("EndpointArn"),
                    "ModelName": plan.model_name,
                    "EndpointConfigName": plan.config_name,
                }
            )
        done = self.resolve_endpoint_event(event, result)
        self.record_deployment(context, done)
        return done

    def deploy_unit(self) -> str | None:
        """The processing unit whose containers are deployed: the given one, else the instance type's."""
        from airflow_autopilot.core.promotion import processing_unit_for

        return self.processing_unit or processing_unit_for(self.request_parameters()["instance_type"])

    def record_deployment(self, context: Context, result: Mapping[str, Any]) -> None:
        """
        Record the deployment's lineage and asset event (when SageMaker gave the endpoint's ARN).

        :param context: the task context.
        :param result: the task's return value.
        """
        lineage = self.deployment(result)
        if lineage is None:
            self.log.warning("No EndpointArn for %s: no lineage or asset event", result.get("EndpointName"))
            return
        self.record_lineage(context, lineage)

    def deployment(self, result: Mapping[str, Any]) -> TaskLineage | None:
        """The lineage of the deployment ``result`` describes; ``None`` without its EndpointArn."""
        from airflow_autopilot.core.lineage import LineageError, deployment_lineage, score_extra
        from airflow_autopilot.core.promotion import CandidateScore, inference_containers, parse_mapping

        best = parse_mapping(self.best_candidate, "best_candidate")
        score = CandidateScore.from_best_candidate(best)
        package = self.model_package_arn or None
        try:
            return deployment_lineage(
                endpoint_name=result["EndpointName"],
                endpoint_arn=result.get("EndpointArn") or "",
                config_name=result["EndpointConfigName"],
                model_name=result["ModelName"],
                containers=inference_containers(best, processing_unit=self.deploy_unit()),
                score=score_extra(score.candidate_name, score.metric_name, score.value),
                model_package_arn=package if isinstance(package, str) else None,
            )
        except LineageError:
            return None

    def planned_lineage(self) -> TaskLineage | None:
        """The candidate's artifacts (the endpoint's ARN is known once it is requested)."""
        from airflow_autopilot.core.lineage import LineageError, TaskLineage, candidate_inputs
        from airflow_autopilot.core.promotion import PromotionInputError, inference_containers, parse_mapping

        try:
            best = parse_mapping(self.best_candidate, "best_candidate")
            containers = inference_containers(best, processing_unit=self.deploy_unit())
            return TaskLineage(inputs=candidate_inputs(containers, None))
        except (PromotionInputError, LineageError):
            return None

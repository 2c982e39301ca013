"""Rollback as an operation: put an endpoint back on an earlier registered model version, with the
deploy operator's guardrails."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_autopilot.operators.promotion import AutopilotDeployCandidateOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: XCom key of the version a rollback chose: ``ModelPackageArn``, ``ModelPackageVersion``,
#: ``CandidateName``, ``reason`` and the ``BestCandidate`` deployed from it.
ROLLBACK_XCOM_KEY = "rollback_target"
#: Approved versions read, newest first, to find the one an endpoint serves.
MAX_VERSIONS_READ = 50
#: Stands in for the version's candidate while the deploy parameters are checked before any call.
_PREFLIGHT_CANDIDATE: dict[str, Any] = {
    "CandidateName": "rollback-preflight",
    "FinalAutoMLJobObjectiveMetric": {"MetricName": "unknown", "Value": 0.0},
    "InferenceContainers": [{"Image": "preflight"}],
}


class AutopilotRollbackEndpointOperator(AutopilotDeployCandidateOperator):
    """
    Put an endpoint back on an earlier model version of a Model Package Group: by default the
    previous Approved version (the newest Approved version older than the one the endpoint serves;
    the newest Approved one when it serves none of them), or the version ``model_package_arn`` names.

    The version's containers are deployed exactly as :class:`AutopilotDeployCandidateOperator`
    deploys a candidate (every parameter of it applies: the rollout and alarms, instance type and
    count, response keys ...), so with the same parameters as the promotion that first deployed the
    version, its model and endpoint config are the ones that served before, reused by name. The
    three outcomes are the deploy's: promoted (the version serves 100 %), rolled back by SageMaker,
    or failed. An endpoint that does not exist is not created: there is nothing to roll back.

    The chosen version (``ModelPackageArn``, ``ModelPackageVersion``, ``CandidateName``, ``reason``
    and the ``BestCandidate`` built from it) is pushed to XCom under ``rollback_target`` before the
    endpoint changes; the return value is the deploy's.

    :param model_package_group_name: the group whose previous Approved version to put back (templated).
    :param model_package_arn: the Approved version to put back instead (templated).

    Every other parameter is :class:`AutopilotDeployCandidateOperator`'s (``best_candidate`` excepted):

    """

    # Named again so the template fields are derived for this class too.
    request_tables = AutopilotDeployCandidateOperator.request_tables
    # The deploy's fields plus the group (mypy reads the base's tuple as fixed-length).
    other_template_fields = (  # type: ignore[assignment]
        *AutopilotDeployCandidateOperator.other_template_fields,
        "model_package_group_name",
    )
    ui_color = "#f4cccc"

    def __init__(
        self,
        *,
        model_package_group_name: str | None = None,
        model_package_arn: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("best_candidate", None)
        super().__init__(model_package_arn=model_package_arn, **kwargs)
        self.model_package_group_name = model_package_group_name

    def target(self) -> tuple[str | None, str | None]:
        """The group or the named version (exactly one), validated (no AWS call)."""
        from airflow_autopilot.core.promotion import PromotionInputError, refuse, validate_resource_name

        group = self.model_package_group_name if self.model_package_group_name not in ("", "None") else None
        arn = self.model_package_arn if self.model_package_arn not in ("", "None") else None
        errors: list[str] = []
        if (group is None) == (arn is None):
            errors.append(
                "model_package_group_name / model_package_arn: give exactly one: the group whose previous "
                "Approved version to put back, or the version to put back"
            )
        if group is not None:
            try:
                validate_resource_name(group, "model_package_group_name")
            except PromotionInputError as err:
                errors += list(err.errors) or [str(err)]
        if arn is not None and (not isinstance(arn, str) or ":model-package/" not in arn):
            errors.append(f"model_package_arn: {arn!r} must be a model package version ARN")
        refuse(errors)
        return group, arn

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autopilot.core.rollback import candidate_of_version
        from airflow_autopilot.core.xcom import to_json_safe
        from airflow_autopilot.exceptions import AutopilotJobFailed

        group, arn = self.target()
        # Every deploy parameter is checked before any call, with a stand-in for the version.
        self.best_candidate = _PREFLIGHT_CANDIDATE
        endpoint_name = self.plan().endpoint_name
        hook = self.model_hook
        endpoint = hook.describe_endpoint_or_none(endpoint_name)
        if endpoint is None:
            raise AutopilotJobFailed(
                f"endpoint_name: endpoint {endpoint_name!r} does not exist; nothing to roll back"
            )
        if arn is not None:
            package = hook.describe_model_package(arn)
            if package.get("ModelApprovalStatus") != "Approved":
                raise AutopilotJobFailed(
                    f"model_package_arn: version {arn} is {package.get('ModelApprovalStatus')}; "
                    "only an Approved version is rolled back to"
                )
            reason = "the version named by model_package_arn"
        else:
            assert group is not None
            package, reason = self.previous_version(group, endpoint)
        candidate = candidate_of_version(package)
        chosen = to_json_safe(
            {
                "ModelPackageArn": package.get("ModelPackageArn"),
                "ModelPackageVersion": package.get("ModelPackageVersion"),
                "CandidateName": candidate["CandidateName"],
                "reason": reason,
                "BestCandidate": candidate,
            }
        )
        context["ti"].xcom_push(key=ROLLBACK_XCOM_KEY, value=chosen)
        self.log.warning(
            "Rolling endpoint %s (serving %s) back to version %s of %s (candidate %s): %s",
            endpoint_name,
            endpoint.get("EndpointConfigName"),
            package.get("ModelPackageVersion"),
            package.get("ModelPackageGroupName") or group,
            candidate["CandidateName"],
            reason,
        )
        self.use_target(chosen)
        return super().execute(context)

    def execute_complete(self, context: Context, *args: Any, **kwargs: Any) -> Any:
        """Resume the deploy's deferred wait with the version chosen before deferring."""
        chosen = context["ti"].xcom_pull(task_ids=self.task_id, key=ROLLBACK_XCOM_KEY)
        if isinstance(chosen, Mapping):
            self.use_target(chosen)
        return super().execute_complete(context, *args, **kwargs)

    def use_target(self, chosen: Mapping[str, Any]) -> None:
        """Deploy the chosen version: its BestCandidate, and its ARN for lineage."""
        self.best_candidate = dict(chosen["BestCandidate"])
        self.model_package_arn = chosen.get("ModelPackageArn")

    def previous_version(self, group: str, endpoint: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        """The previous Approved version of ``group`` for the model ``endpoint`` serves, and why."""
        from itertools import islice

        from airflow_autopilot.core.rollback import previous_version
        from airflow_autopilot.exceptions import AutopilotJobFailed

        hook = self.model_hook
        serving = hook.endpoint_config_containers(str(endpoint.get("EndpointConfigName")))
        approved = [
            hook.describe_model_package(summary["ModelPackageArn"])
            for summary in islice(hook.iter_versions(group, approval_status="Approved"), MAX_VERSIONS_READ)
        ]
        package, reason = previous_version(approved, serving)
        if package is None:
            raise AutopilotJobFailed(
                f"Cannot roll endpoint {endpoint.get('EndpointName')} back within {group}: {reason}. "
                "Name the version with model_package_arn."
            )
        return dict(package), reason

"""AutopilotModelHook: the Model Registry, model, endpoint-config and endpoint calls of promotion."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from airflow_autopilot.core.errors import already_exists, is_missing
from airflow_autopilot.core.promotion import (
    ENDPOINT_BUSY_STATUSES,
    ENDPOINT_FAILED_STATUSES,
    META_CANDIDATE_NAME,
    META_JOB_NAME,
)
from airflow_autopilot.exceptions import AutopilotJobFailed
from airflow_autopilot.hooks.autopilot import AutopilotHook


class AutopilotModelHook(AutopilotHook):
    """
    Model Registry and endpoint calls for promoting an Autopilot candidate. Every ``ensure_*``
    method is retry-safe: it describes first and reuses what an earlier try created.

    Takes the same arguments as :class:`~airflow_autopilot.hooks.AutopilotHook`.
    """

    # --- Model Registry ---------------------------------------------------------------------------
    def ensure_model_package_group(self, group_name: str, description: str | None = None) -> str:
        """
        The group's ARN, creating the group when it does not exist.

        :param group_name: ModelPackageGroupName.
        :param description: ModelPackageGroupDescription for a new group.
        """
        try:
            return self.client.describe_model_package_group(ModelPackageGroupName=group_name)[
                "ModelPackageGroupArn"
            ]
        except ClientError as err:
            if not is_missing(err):
                raise
        kwargs: dict[str, Any] = {"ModelPackageGroupName": group_name}
        if description:
            kwargs["ModelPackageGroupDescription"] = description
        try:
            arn = self.client.create_model_package_group(**kwargs)["ModelPackageGroupArn"]
        except ClientError as err:
            if not already_exists(err):
                raise
            arn = self.client.describe_model_package_group(ModelPackageGroupName=group_name)[
                "ModelPackageGroupArn"
            ]
        self.log.info("Created Model Package Group %s", group_name)
        return arn

    def iter_versions(
        self, group_name: str, *, approval_status: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """
        ListModelPackages summaries of a group, newest first; nothing when the group does not exist.

        :param group_name: ModelPackageGroupName.
        :param approval_status: only versions with this ModelApprovalStatus.
        """
        kwargs: dict[str, Any] = {
            "ModelPackageGroupName": group_name,
            "SortBy": "CreationTime",
            "SortOrder": "Descending",
        }
        if approval_status:
            kwargs["ModelApprovalStatus"] = approval_status
        try:
            for page in self.client.get_paginator("list_model_packages").paginate(**kwargs):
                yield from page.get("ModelPackageSummaryList", [])
        except ClientError as err:
            if not is_missing(err):
                raise

    def describe_model_package(self, arn: str) -> dict[str, Any]:
        """DescribeModelPackage, without ResponseMetadata."""
        response = dict(self.client.describe_model_package(ModelPackageName=arn))
        response.pop("ResponseMetadata", None)
        return response

    def latest_approved_version(self, group_name: str) -> dict[str, Any] | None:
        """DescribeModelPackage of the newest Approved version of the group, or ``None``."""
        for summary in self.iter_versions(group_name, approval_status="Approved"):
            return self.describe_model_package(summary["ModelPackageArn"])
        return None

    def find_candidate_version(
        self, group_name: str, job_name: str, candidate_name: str
    ) -> dict[str, Any] | None:
        """
        The version of the group registered for this job and candidate (by its
        CustomerMetadataProperties), newest first, or ``None``.
        """
        for summary in self.iter_versions(group_name):
            package = self.describe_model_package(summary["ModelPackageArn"])
            meta: Mapping[str, Any] = package.get("CustomerMetadataProperties") or {}
            if meta.get(META_JOB_NAME) == job_name and meta.get(META_CANDIDATE_NAME) == candidate_name:
                return package
        return None

    # --- models and endpoints ---------------------------------------------------------------------
    def ensure_model(
        self, model_name: str, role_arn: str, containers: list[dict[str, Any]], tags: list[dict[str, str]]
    ) -> bool:
        """
        CreateModel with every container (an inference pipeline), unless the model exists.

        :return: True when created, False when an existing model was reused.
        """
        try:
            self.client.describe_model(ModelName=model_name)
            return False
        except ClientError as err:
            if not is_missing(err):
                raise
        kwargs: dict[str, Any] = {
            "ModelName": model_name,
            "ExecutionRoleArn": role_arn,
            "Containers": containers,
        }
        if tags:
            kwargs["Tags"] = tags
        try:
            self.client.create_model(**kwargs)
        except ClientError as err:
            if not already_exists(err):
                raise
            return False
        return True

    def ensure_endpoint_config(
        self,
        config_name: str,
        model_name: str,
        *,
        instance_type: str,
        instance_count: int,
        tags: list[dict[str, str]],
    ) -> bool:
        """
        CreateEndpointConfig with one ``AllTraffic`` variant, unless the config exists.

        :return: True when created, False when an existing config was reused.
        """
        try:
            self.client.describe_endpoint_config(EndpointConfigName=config_name)
            return False
        except ClientError as err:
            if not is_missing(err):
                raise
        kwargs: dict[str, Any] = {
            "EndpointConfigName": config_name,
            "ProductionVariants": [
                {
                    "VariantName": "AllTraffic",
                    "ModelName": model_name,
                    "InitialInstanceCount": instance_count,
                    "InstanceType": instance_type,
                    "InitialVariantWeight": 1.0,
                }
            ],
        }
        if tags:
            kwargs["Tags"] = tags
        try:
            self.client.create_endpoint_config(**kwargs)
        except ClientError as err:
            if not already_exists(err):
                raise
            return False
        return True

    def deploy(
        self,
        endpoint_name: str,
        *,
        model_name: str,
        config_name: str,
        role_arn: str,
        containers: list[dict[str, Any]],
        instance_type: str,
        instance_count: int,
        tags: list[dict[str, str]],
        poll_interval: float = 30.0,
        timeout: float | None = 3600.0,
    ) -> dict[str, Any]:
        """
        Put ``containers`` behind ``endpoint_name``: CreateModel, CreateEndpointConfig, then
        CreateEndpoint, or UpdateEndpoint when the endpoint exists on another config. Retry-safe:
        what an earlier try created is reused, and an endpoint already on ``config_name`` is left alone.

        :param endpoint_name: the endpoint.
        :param model_name: the model to create (or reuse).
        :param config_name: the endpoint config to create (or reuse).
        :param role_arn: the model's execution role.
        :param containers: the inference containers (a serial pipeline).
        :param instance_type: endpoint instance type.
        :param instance_count: endpoint instances.
        :param tags: tags of the model, config and a new endpoint.
        :param poll_interval: seconds between checks while a busy endpoint settles before its update.
        :param timeout: how long to wait for a busy endpoint to settle.
        :return: DescribeEndpoint after the create or update was requested (``{}`` if not visible yet).
        :raises AutopilotJobFailed: when the endpoint exists in a state SageMaker cannot update.
        """
        created = self.ensure_model(model_name, role_arn, containers, tags)
        self.log.info(
            "%s model %s (%d containers)", "Created" if created else "Reusing", model_name, len(containers)
        )
        created = self.ensure_endpoint_config(
            config_name, model_name, instance_type=instance_type, instance_count=instance_count, tags=tags
        )
        self.log.info(
            "%s endpoint config %s (%s x%d)",
            "Created" if created else "Reusing",
            config_name,
            instance_type,
            instance_count,
        )
        current = self.describe_endpoint_or_none(endpoint_name)
        if current is None:
            kwargs: dict[str, Any] = {"EndpointName": endpoint_name, "EndpointConfigName": config_name}
            if tags:
                kwargs["Tags"] = tags
            try:
                self.client.create_endpoint(**kwargs)
                self.log.info("Creating endpoint %s on %s", endpoint_name, config_name)
            except ClientError as err:
                if not already_exists(err):
                    raise
                current = self.describe_endpoint_or_none(endpoint_name)
        if current is not None:
            self._switch_endpoint(current, config_name, poll_interval=poll_interval, timeout=timeout)
        return self.describe_endpoint_or_none(endpoint_name) or {}

    def _switch_endpoint(
        self, current: Mapping[str, Any], config_name: str, *, poll_interval: float, timeout: float | None
    ) -> None:
        """Reuse the endpoint when it already uses ``config_name``, else UpdateEndpoint to it."""
        endpoint = current["EndpointName"]
        if current.get("EndpointConfigName") == config_name:
            self.log.info(
                "Endpoint %s already uses %s (%s); reusing it",
                endpoint,
                config_name,
                current.get("EndpointStatus"),
            )
            return
        status = current.get("EndpointStatus")
        if status in ENDPOINT_FAILED_STATUSES:
            raise AutopilotJobFailed(
                f"Endpoint {endpoint!r} exists and is {status} "
                f"({current.get('FailureReason') or 'no FailureReason'}); SageMaker cannot update it. "
                "Delete it or choose another endpoint_name."
            )
        if status in ENDPOINT_BUSY_STATUSES:
            # UpdateEndpoint is refused while the endpoint is busy: let it settle on whatever config.
            self.log.info("Endpoint %s is %s; waiting before updating it", endpoint, status)
            self.wait_for_endpoint(endpoint, poll_interval=poll_interval, timeout=timeout)
        self.client.update_endpoint(EndpointName=endpoint, EndpointConfigName=config_name)
        self.log.info(
            "Updating endpoint %s from %s to %s", endpoint, current.get("EndpointConfigName"), config_name
        )

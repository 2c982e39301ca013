"""
AutopilotModelHook: the SageMaker Model Registry, model, endpoint-config and endpoint calls that
promotion needs, on top of :class:`~airflow_autopilot.hooks.AutopilotHook` (same connection
handling and botocore retries).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import ClientError

from airflow_autopilot.core.errors import already_exists, is_missing
from airflow_autopilot.core.promotion import META_CANDIDATE_NAME, META_JOB_NAME
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

    def describe_endpoint_or_none(self, endpoint_name: str) -> dict[str, Any] | None:
        """DescribeEndpoint without ResponseMetadata, or ``None`` when there is no such endpoint."""
        try:
            response = dict(self.client.describe_endpoint(EndpointName=endpoint_name))
        except ClientError as err:
            if is_missing(err):
                return None
            raise
        response.pop("ResponseMetadata", None)
        return response

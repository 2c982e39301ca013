"""AutopilotModelHook: the Model Registry, model, endpoint-config and endpoint calls of promotion."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any, Literal

from botocore.exceptions import ClientError

from airflow_autopilot.core.errors import already_exists, guarded_client, is_missing, was_refused
from airflow_autopilot.core.fields.endpoint import (
    ENDPOINT,
    ENDPOINT_CONFIG,
    UPDATE_ENDPOINT,
    endpoint_config_request,
    endpoint_request,
)
from airflow_autopilot.core.fields.model import MODEL, model_request
from airflow_autopilot.core.fields.spec import RequestTables
from airflow_autopilot.core.promotion import endpoint_action, registered_for
from airflow_autopilot.core.waits.loop import drive
from airflow_autopilot.core.waits.resource import resource_wait
from airflow_autopilot.exceptions import AutopilotJobFailed
from airflow_autopilot.hooks.autopilot import AutopilotHook

#: No tables of an operator's own: every request is built with its module-level table.
NO_TABLES = RequestTables()
#: The delete call and its name member of each kind of resource a try may create and then undo.
UNDO_CALLS: dict[str, tuple[str, str]] = {
    "model": ("delete_model", "ModelName"),
    "endpoint-config": ("delete_endpoint_config", "EndpointConfigName"),
}


class CreatedResources:
    """The resources one try created, newest last, to delete when a later step is refused."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str]] = []

    def add(self, kind: str, name: str) -> None:
        """Record that this try created resource ``name`` of ``kind`` (a key of :data:`UNDO_CALLS`).

        :param kind: the kind of resource.
        :param name: its name.
        """
        self.created.append((kind, name))


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

    def latest_approved_version(
        self, group_name: str, *, excluding_candidate: str | None = None
    ) -> dict[str, Any] | None:
        """
        DescribeModelPackage of the newest Approved version of the group, or ``None``.

        :param group_name: ModelPackageGroupName.
        :param excluding_candidate: skip versions registered for this candidate
            (:func:`~airflow_autopilot.core.promotion.registered_for`): it is not its own champion.
        """
        for summary in self.iter_versions(group_name, approval_status="Approved"):
            package = self.describe_model_package(summary["ModelPackageArn"])
            if excluding_candidate is not None and registered_for(package, excluding_candidate):
                self.log.info(
                    "Version %s of %s holds candidate %s itself (registered by an earlier run); "
                    "not a champion for it",
                    package.get("ModelPackageVersion"),
                    group_name,
                    excluding_candidate,
                )
                continue
            return package
        return None

    def register_version(self, request: Mapping[str, Any], client_token: str) -> dict[str, Any]:
        """
        CreateModelPackage with ``client_token``, then DescribeModelPackage of the version: the
        version the first request with this token created, however many tries or tasks send it.

        :param request: the CreateModelPackage arguments.
        :param client_token: a deterministic token
            (:func:`~airflow_autopilot.core.promotion.registration_token`).
        """
        arn = self.client.create_model_package(**request, ClientToken=client_token)["ModelPackageArn"]
        return self.describe_model_package(arn)

    def read_json_or_none(self, uri: str) -> Any:
        """
        The parsed JSON object at an ``s3://`` URI (a candidate's report), or ``None`` when there is
        no such object or it is not JSON.

        :param uri: ``s3://bucket/key``.
        """
        import json

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        bucket, key = S3Hook.parse_s3_url(uri)
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as err:
            if is_missing(err) or "NoSuchKey" in str(err) or "404" in str(err):
                self.log.warning("Report %s not found", uri)
                return None
            raise
        try:
            return json.loads(body)
        except ValueError:
            self.log.warning("Report %s is not JSON", uri)
            return None

    # --- models and endpoints ---------------------------------------------------------------------
    @contextmanager
    def undo_if_refused(self) -> Iterator[CreatedResources]:
        """Within the block, record what is created (:meth:`CreatedResources.add`); when a later
        step is refused (AccessDenied, a validation error: :func:`~airflow_autopilot.core.errors.was_refused`),
        delete what was recorded, newest first, then re-raise: nothing half-created is left behind
        (docs/security.md). A delete that fails is logged with what is left; the refusal is raised.
        A timeout or 5xx undoes nothing: the refused-looking step may have taken effect.
        """
        created = CreatedResources()
        try:
            yield created
        except Exception as err:
            if was_refused(err) and created.created:
                self._undo(created)
            raise

    def _undo(self, created: CreatedResources) -> None:
        for kind, name in reversed(created.created):
            method, member = UNDO_CALLS[kind]
            try:
                getattr(self.client, method)(**{member: name})
                self.log.info(
                    "Deleted %s %s, which this try created before a later step was refused", kind, name
                )
            except Exception as err:  # noqa: BLE001 - the refusal is what the task fails with
                from airflow_autopilot.core.redaction import describe_error

                self.log.warning(
                    "Could not delete %s %s this try created: %s", kind, name, describe_error(err)
                )

    def ensure_model(
        self,
        model_name: str,
        role_arn: str,
        containers: list[dict[str, Any]],
        tags: list[dict[str, str]],
        *,
        params: Mapping[str, Any] | None = None,
        tables: RequestTables | None = None,
    ) -> bool:
        """
        CreateModel with every container (an inference pipeline), unless the model exists.

        :param params: the operator's other request parameters (fields of CreateModel's table,
            :data:`~airflow_autopilot.core.fields.model.MODEL`, without an argument here).
        :param tables: the operator's request tables (default: the module-level ones).
        :return: True when created, False when an existing model was reused.
        """
        try:
            self.client.describe_model(ModelName=model_name)
            return False
        except ClientError as err:
            if not is_missing(err):
                raise
        kwargs, _ = model_request(
            {**(params or {}), "role_arn": role_arn, "tags": tags},
            model_name=model_name,
            containers=containers,
            spec=(tables or NO_TABLES).get(MODEL),
        )
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
        instance_type: str | None,
        instance_count: int | None,
        tags: list[dict[str, str]],
        params: Mapping[str, Any] | None = None,
        tables: RequestTables | None = None,
    ) -> bool:
        """
        CreateEndpointConfig with one ``AllTraffic`` variant, unless the config exists.

        :param params: the operator's other request parameters (fields of CreateEndpointConfig's
            table, :data:`~airflow_autopilot.core.fields.endpoint.ENDPOINT_CONFIG`).
        :param tables: the operator's request tables (default: the module-level ones).
        :return: True when created, False when an existing config was reused.
        """
        try:
            self.client.describe_endpoint_config(EndpointConfigName=config_name)
            return False
        except ClientError as err:
            if not is_missing(err):
                raise
        kwargs, _ = endpoint_config_request(
            {
                **(params or {}),
                "instance_type": instance_type,
                "initial_instance_count": instance_count,
                "tags": tags,
            },
            config_name=config_name,
            model_name=model_name,
            spec=(tables or NO_TABLES).get(ENDPOINT_CONFIG),
        )
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
        instance_type: str | None,
        instance_count: int | None,
        tags: list[dict[str, str]],
        poll_interval: float = 30.0,
        timeout: float | None = 3600.0,
        params: Mapping[str, Any] | None = None,
        tables: RequestTables | None = None,
    ) -> dict[str, Any]:
        """
        Put ``containers`` behind ``endpoint_name``: CreateModel, CreateEndpointConfig, then
        CreateEndpoint, or UpdateEndpoint when the endpoint exists on another config. Retry-safe:
        what an earlier try created is reused, an endpoint already on ``config_name`` (or with an
        update to it in flight) is left alone, and an endpoint SageMaker is busy with is waited for
        and decided on again once it settles (:func:`~airflow_autopilot.core.promotion.endpoint_action`).

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
        :param params: the operator's other request parameters (fields of the four requests' tables
            without an argument here), passed to every request's builder.
        :param tables: the operator's tables of the four requests, each built with its own
            (default: the module-level ones).
        :return: DescribeEndpoint after the create or update was requested (``{}`` if not visible yet).
        :raises AutopilotJobFailed: when the endpoint exists in a state SageMaker cannot update.
        """
        params = {**(params or {}), "endpoint_name": endpoint_name, "tags": tags}
        tables = tables or NO_TABLES
        # A refused call deletes what this try created (the model, the config): nothing half-made.
        with self.undo_if_refused() as undo:
            created = self.ensure_model(model_name, role_arn, containers, tags, params=params, tables=tables)
            if created:
                undo.add("model", model_name)
            self.log.info(
                "%s model %s (%d containers)",
                "Created" if created else "Reusing",
                model_name,
                len(containers),
            )
            created = self.ensure_endpoint_config(
                config_name,
                model_name,
                instance_type=instance_type,
                instance_count=instance_count,
                tags=tags,
                params=params,
                tables=tables,
            )
            if created:
                undo.add("endpoint-config", config_name)
            self.log.info(
                "%s endpoint config %s (%s)",
                "Created" if created else "Reusing",
                config_name,
                f"{instance_type} x{instance_count}" if instance_type else "serverless",
            )
            current = self.describe_endpoint_or_none(endpoint_name)
            action = endpoint_action(current, config_name)
            if action == "create":
                kwargs, _ = endpoint_request(tables.get(ENDPOINT), params, config_name=config_name)
                try:
                    self.client.create_endpoint(**kwargs)
                    self.log.info("Creating endpoint %s on %s", endpoint_name, config_name)
                    return self.describe_endpoint_or_none(endpoint_name) or {}
                except ClientError as err:
                    if not already_exists(err):
                        raise
                # Created between our describe and our create (a parallel try).
                current = self.describe_endpoint_or_none(endpoint_name)
                action = endpoint_action(current, config_name)
            if action == "settle" and current is not None:
                # UpdateEndpoint is refused while SageMaker is busy with the endpoint, and a describe
                # taken now is stale once it settles: wait, then decide from the settled endpoint.
                self.log.info(
                    "Endpoint %s is %s; waiting for it to settle before deciding whether to update it",
                    endpoint_name,
                    current.get("EndpointStatus"),
                )
                current = self.wait_for_endpoint(endpoint_name, poll_interval=poll_interval, timeout=timeout)
                action = endpoint_action(current, config_name)
            if current is not None and action in ("reuse", "refuse", "update"):
                self._switch_endpoint(current, config_name, action, params, tables)
            return self.describe_endpoint_or_none(endpoint_name) or {}

    def _switch_endpoint(
        self,
        current: Mapping[str, Any],
        config_name: str,
        action: str,
        params: Mapping[str, Any],
        tables: RequestTables,
    ) -> None:
        """Carry out ``action`` (:func:`~airflow_autopilot.core.promotion.endpoint_action`) on the endpoint."""
        endpoint = current["EndpointName"]
        status = current.get("EndpointStatus")
        if action == "reuse":
            if current.get("EndpointConfigName") == config_name:
                self.log.info("Endpoint %s already uses %s (%s); reusing it", endpoint, config_name, status)
            else:
                self.log.info(
                    "Endpoint %s is %s: an update to %s is already in flight; waiting for it",
                    endpoint,
                    status,
                    config_name,
                )
            return
        if action == "refuse":
            raise AutopilotJobFailed(
                f"Endpoint {endpoint!r} exists and is {status} "
                f"({current.get('FailureReason') or 'no FailureReason'}); SageMaker cannot update it. "
                "Delete it or choose another endpoint_name."
            )
        kwargs, _ = endpoint_request(
            tables.get(UPDATE_ENDPOINT), {**params, "endpoint_name": endpoint}, config_name=config_name
        )
        self.client.update_endpoint(**kwargs)
        self.log.info(
            "Updating endpoint %s from %s to %s", endpoint, current.get("EndpointConfigName"), config_name
        )

    # --- what an endpoint serves, and asking it -------------------------------------------------
    def endpoint_config_containers(self, config_name: str) -> list[dict[str, Any]]:
        """
        The containers of the model an endpoint config serves (its first variant's model):
        DescribeEndpointConfig, then DescribeModel (``Containers``, or ``PrimaryContainer``).

        :param config_name: the EndpointConfigName.
        """
        config = self.client.describe_endpoint_config(EndpointConfigName=config_name)
        variants = config.get("ProductionVariants") or []
        if not variants or not variants[0].get("ModelName"):
            return []
        model = self.client.describe_model(ModelName=variants[0]["ModelName"])
        containers = model.get("Containers") or (
            [model["PrimaryContainer"]] if model.get("PrimaryContainer") else []
        )
        return [dict(c) for c in containers]

    def update_endpoint_config(
        self,
        endpoint_name: str,
        config_name: str,
        *,
        tables: RequestTables | None = None,
        params: Mapping[str, Any] | None = None,
    ) -> None:
        """
        UpdateEndpoint onto ``config_name`` (built with UpdateEndpoint's table: a restore or a
        rollback of an endpoint to a config it served before).

        :param endpoint_name: the endpoint.
        :param config_name: the EndpointConfigName to serve.
        :param tables: the operator's request tables (default: the module-level ones).
        :param params: the operator's other UpdateEndpoint parameters (a deployment config ...).
        """
        kwargs, _ = endpoint_request(
            (tables or NO_TABLES).get(UPDATE_ENDPOINT),
            {**(params or {}), "endpoint_name": endpoint_name},
            config_name=config_name,
        )
        self.client.update_endpoint(**kwargs)

    @cached_property
    def _runtime_client(self) -> Any:
        """The boto3 ``sagemaker-runtime`` client of this hook's connection (its endpoint URL,
        botocore config and retries), with the package's error handling."""
        client = self._bounded_session.client(
            service_name="sagemaker-runtime",
            endpoint_url=self.conn_config.get_service_endpoint_url(service_name="sagemaker-runtime"),
            config=self._get_config(self.config),
            verify=self.verify,
        )
        return guarded_client(client, self.caller)

    def invoke_endpoint(self, endpoint_name: str, body: str, *, content_type: str, accept: str) -> str:
        """
        InvokeEndpoint (``sagemaker-runtime``) with one request body; the decoded answer.

        :param endpoint_name: the endpoint.
        :param body: the request body.
        :param content_type: its ContentType.
        :param accept: the Accept of the answer.
        :raises botocore.exceptions.ClientError: as SageMaker answers (``ModelError`` when the model
            failed the request).
        """
        response = self._runtime_client.invoke_endpoint(
            EndpointName=endpoint_name, Body=body.encode(), ContentType=content_type, Accept=accept
        )
        return response["Body"].read().decode("utf-8", errors="replace")

    def read_head(self, uri: str, max_bytes: int) -> tuple[str, bool, str]:
        """
        The first ``max_bytes`` of an S3 object, or of the first object under a prefix (as a job's
        input or validation data URI names one).

        :param uri: ``s3://bucket/key`` or ``s3://bucket/prefix``.
        :param max_bytes: how much to read.
        :return: the text, whether the object is longer, and the object's URI.
        :raises AutopilotError: when there is no such object and no object under the prefix.
        """
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from airflow_autopilot.exceptions import AutopilotError

        bucket, key = S3Hook.parse_s3_url(uri)
        s3 = S3Hook(aws_conn_id=self.aws_conn_id, region_name=self.region_name, verify=self.verify)
        client = s3.get_conn()
        try:
            found = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        except ClientError as err:
            if not (is_missing(err) or "NoSuchKey" in str(err) or "404" in str(err)):
                raise
            listed = client.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=100).get("Contents") or []
            keys = sorted(o["Key"] for o in listed if not o["Key"].endswith("/") and o.get("Size", 1))
            if not keys:
                raise AutopilotError(f"rows_s3_uri: no object at {uri} and none under it") from err
            key = keys[0]
            found = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}")
        data = found["Body"].read()
        truncated = len(data) > max_bytes
        return data[:max_bytes].decode("utf-8", errors="replace"), truncated, f"s3://{bucket}/{key}"

    # --- batch transform and approval -------------------------------------------------------------
    def describe_transform_job_or_none(self, job_name: str) -> dict[str, Any] | None:
        """DescribeTransformJob without ResponseMetadata, or ``None`` when there is no such job."""
        return self.describe_or_none("describe_transform_job", TransformJobName=job_name)

    def describe_resource(
        self, kind: Literal["transform-job", "model-package"], name: str
    ) -> dict[str, Any] | None:
        """The describe of a transform job or a model package version, ``None`` when missing."""
        if kind == "transform-job":
            return self.describe_transform_job_or_none(name)
        return self.describe_or_none("describe_model_package", ModelPackageName=name)

    def wait_for_resource(
        self,
        kind: Literal["transform-job", "model-package"],
        name: str,
        *,
        poll_interval: float = 30.0,
        timeout: float | None = 3600.0,
        sleep: Callable[[float], object] | None = None,
    ) -> dict[str, Any]:
        """
        Poll until a transform job ends (``transform-job``) or a model package version is Approved or
        Rejected (``model-package``), with the one wait state machine.

        :return: the last describe.
        :raises AutopilotJobFailed: for a Failed or Stopped transform job, or a Rejected version.
        :raises AutopilotError: on timeout or when the resource does not exist.
        """
        wait = resource_wait(kind, name, poll_interval=poll_interval, timeout=timeout, log=self.log)

        def describe() -> dict[str, Any]:
            with self.time_limit(wait.call_budget()):
                found = self.describe_resource(kind, name)
            if found is None:
                raise wait.missing()
            return found

        return drive(wait, describe, sleep=sleep)

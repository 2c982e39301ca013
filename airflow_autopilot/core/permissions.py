"""The IAM permissions each operator, sensor, trigger and hook method needs, as data, and the
least-privilege policy document built from them (``autopilot-iam-policy``, docs/security.md)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: Where a person goes from a denied call: the page that explains each statement.
DOCS_PAGE = "docs/security.md"
#: The service principal a role passed to SageMaker must be passed to.
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Grant:
    """One statement of the policy: actions on one kind of resource, and why they are needed.

    :param sid: the statement id in the generated policy.
    :param actions: IAM actions, ``service:Operation``.
    :param resource: the kind of resource (a key of :data:`RESOURCE_PATTERNS`).
    :param why: one sentence for docs/security.md and for the error a denial raises.
    :param condition: the statement's ``Condition`` block, if any.
    :param without: what happens without it, for a statement whose absence fails no task (it
        only costs something); ``None``: a task fails without it.
    :param when: the :class:`Scope` field that must name something for the statement to be in a
        policy (``"kms_keys"``: only a DAG that sets KMS keys needs to use them); ``None``: always.
    """

    sid: str
    actions: tuple[str, ...]
    resource: str
    why: str
    condition: Mapping[str, Any] | None = None
    without: str | None = None
    when: str | None = None


#: ARN pattern of each kind of resource; ``{name}`` placeholders come from :class:`Scope`.
#: SageMaker lowercases the resource names in its ARNs, so the names are matched lowercased.
RESOURCE_PATTERNS: dict[str, str] = {
    "automl-job": "arn:{partition}:sagemaker:{region}:{account}:automl-job/{job}",
    "automl-job-list": "*",
    "model": "arn:{partition}:sagemaker:{region}:{account}:model/{model}",
    "endpoint-config": "arn:{partition}:sagemaker:{region}:{account}:endpoint-config/{endpoint_config}",
    "endpoint": "arn:{partition}:sagemaker:{region}:{account}:endpoint/{endpoint}",
    "model-package-group": "arn:{partition}:sagemaker:{region}:{account}:model-package-group/{group}",
    "model-package": "arn:{partition}:sagemaker:{region}:{account}:model-package/{group}/*",
    "transform-job": "arn:{partition}:sagemaker:{region}:{account}:transform-job/{transform_job}",
    "role": "{role}",
    "s3-bucket": "arn:{partition}:s3:::{bucket}",
    "s3-object": "arn:{partition}:s3:::{bucket}/*",
    "cloudwatch-alarm": "arn:{partition}:cloudwatch:{region}:{account}:alarm:*",
    "kms-key": "{kms_key}",
    "sqs-queue": "arn:{partition}:sqs:{region}:{account}:{queue}",
}

_G = Grant
#: Every statement the package can need, by sid.
GRANTS: dict[str, Grant] = {
    g.sid: g
    for g in (
        _G(
            "CreateAutoMLJob",
            ("sagemaker:CreateAutoMLJob", "sagemaker:CreateAutoMLJobV2", "sagemaker:AddTags"),
            "automl-job",
            "start the Autopilot job (AddTags: SageMaker authorizes the request's Tags with it)",
        ),
        _G(
            "ReadAutoMLJob",
            (
                "sagemaker:DescribeAutoMLJob",
                "sagemaker:DescribeAutoMLJobV2",
                "sagemaker:ListCandidatesForAutoMLJob",
            ),
            "automl-job",
            "read the job's status, best candidate and candidates (V1 and V2 describes: the "
            "package falls back from one to the other)",
        ),
        _G(
            "StopAutoMLJob",
            ("sagemaker:StopAutoMLJob", "sagemaker:AddTags", "sagemaker:DeleteTags", "sagemaker:ListTags"),
            "automl-job",
            "find the job an earlier try started by its tags (re-attach on a retry) and stop it, "
            "marked with a tag, when the task is killed",
            without="a first try runs; a retry or a killed task fails on the denied call",
        ),
        _G(
            "ListAutoMLJobs",
            ("sagemaker:ListAutoMLJobs",),
            "automl-job-list",
            "the coalesced poller of deferred waits answers many jobs with one ListAutoMLJobs page; "
            "without it each job is described one call at a time (more calls, more throttling). "
            "List actions take no resource, so the statement is on '*'",
            without="deferred waits describe each job on its own instead of sharing one list page",
        ),
        _G(
            "AcknowledgeJobEvents",
            ("sagemaker:ListTags", "sagemaker:AddTags"),
            "automl-job",
            "the event watcher reads a finished job's tags and claims its report with an "
            "acknowledgement tag (docs/events.md), so each job starts one DAG run",
        ),
        _G(
            "ReceiveQueueMessages",
            ("sqs:ReceiveMessage", "sqs:DeleteMessage"),
            "sqs-queue",
            "the SQS watcher (an AssetWatcher's trigger, run by the triggerer) long-polls the queue "
            "and deletes the messages it handed to Airflow as an asset event (docs/events.md)",
        ),
        _G(
            "PassRoleToSageMaker",
            ("iam:PassRole",),
            "role",
            "hand the execution role to SageMaker (only to SageMaker: iam:PassedToService)",
            {"StringEquals": {"iam:PassedToService": SAGEMAKER_PRINCIPAL}},
        ),
        _G(
            "ReadTrainingData",
            ("s3:ListBucket",),
            "s3-bucket",
            "list the input prefix (lineage schema of the training data, batch input check)",
        ),
        _G(
            "ReadObjects",
            ("s3:GetObject",),
            "s3-object",
            "read the first training file's header (lineage) and the job's JSON reports (gates)",
            without="lineage events carry no schema of the training data; report gates fail",
        ),
        _G(
            "ModelPackageGroup",
            ("sagemaker:CreateModelPackageGroup", "sagemaker:DescribeModelPackageGroup"),
            "model-package-group",
            "create the model package group once and read it",
        ),
        _G(
            "ModelPackages",
            (
                "sagemaker:CreateModelPackage",
                "sagemaker:DescribeModelPackage",
                "sagemaker:AddTags",
            ),
            "model-package",
            "register the candidate as a version and read it back",
        ),
        _G(
            "ListModelPackages",
            ("sagemaker:ListModelPackages",),
            "automl-job-list",
            "find the group's current champion and a version registered by an earlier try",
        ),
        _G(
            "ReadModelPackage",
            ("sagemaker:DescribeModelPackage",),
            "model-package",
            "wait for a version's approval status",
        ),
        _G(
            "Models",
            (
                "sagemaker:CreateModel",
                "sagemaker:DescribeModel",
                "sagemaker:AddTags",
                "sagemaker:DeleteModel",
            ),
            "model",
            "create the candidate's model (re-used by name on a retry), and delete the model this "
            "try created when a later step is refused (nothing half-created is left)",
        ),
        _G(
            "EndpointConfigs",
            (
                "sagemaker:CreateEndpointConfig",
                "sagemaker:DescribeEndpointConfig",
                "sagemaker:AddTags",
                "sagemaker:DeleteEndpointConfig",
            ),
            "endpoint-config",
            "create the endpoint configuration that serves the model, and delete the one this try "
            "created when creating or updating the endpoint is refused",
        ),
        _G(
            "Endpoints",
            (
                "sagemaker:CreateEndpoint",
                "sagemaker:UpdateEndpoint",
                "sagemaker:DescribeEndpoint",
                "sagemaker:AddTags",
            ),
            "endpoint",
            "create the endpoint, or update it onto the new configuration",
        ),
        _G(
            "ReadEndpoint",
            ("sagemaker:DescribeEndpoint",),
            "endpoint",
            "wait for the endpoint to be InService",
        ),
        _G(
            "InvokeEndpoint",
            ("sagemaker:InvokeEndpoint",),
            "endpoint",
            "send the smoke test's sample rows to the deployed model",
        ),
        _G(
            "ReadEndpointConfig",
            ("sagemaker:DescribeEndpointConfig",),
            "endpoint-config",
            "read which model an endpoint config serves (smoke test, rollback)",
        ),
        _G(
            "ReadModel",
            ("sagemaker:DescribeModel",),
            "model",
            "read the served model's containers (its response keys, the version it holds)",
        ),
        _G(
            "RestoreEndpoint",
            ("sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint"),
            "endpoint",
            "put the endpoint back on the config it served before a deployment that failed its smoke test",
        ),
        _G(
            "ReadAlarms",
            ("cloudwatch:DescribeAlarms",),
            "cloudwatch-alarm",
            "check that each auto_rollback_alarms alarm exists before a guardrailed update",
        ),
        _G(
            "UseKmsKeys",
            ("kms:CreateGrant", "kms:DescribeKey"),
            "kms-key",
            "let SageMaker use the customer-managed KMS keys the requests name (volume, output, "
            "endpoint and data-capture keys): it creates grants on them for its instances, on the "
            "caller's behalf (kms:ViaService: only through SageMaker). Only in the policy of a DAG "
            "that sets keys",
            {"StringLike": {"kms:ViaService": "sagemaker.*.amazonaws.com"}},
            when="kms_keys",
        ),
        _G(
            "TransformJobs",
            (
                "sagemaker:CreateTransformJob",
                "sagemaker:DescribeTransformJob",
                "sagemaker:StopTransformJob",
                "sagemaker:AddTags",
                "sagemaker:DeleteTags",
                "sagemaker:ListTags",
            ),
            "transform-job",
            "run the batch transform job, re-attach to it on a retry, stop it when the task is killed",
        ),
    )
}

_JOB_WAIT = ("ReadAutoMLJob", "ListAutoMLJobs")
_RESOURCE_WAIT = ("ReadModelPackage", "ReadEndpoint", "TransformJobs")
#: The statements each public hook method needs (methods that make no AWS call are not listed).
HOOK_METHODS: dict[str, tuple[str, ...]] = {
    "AutopilotHook.describe_auto_ml_job": ("ReadAutoMLJob",),
    "AutopilotHook.describe_auto_ml_job_v2": ("ReadAutoMLJob",),
    "AutopilotHook.get_job": ("ReadAutoMLJob",),
    "AutopilotHook.wait_for_job": ("ReadAutoMLJob",),
    "AutopilotHook.count_candidates": ("ReadAutoMLJob",),
    "AutopilotHook.list_candidates": ("ReadAutoMLJob",),
    "AutopilotHook.create_auto_ml_job": ("CreateAutoMLJob",),
    "AutopilotHook.create_auto_ml_job_v2": ("CreateAutoMLJob",),
    "AutopilotHook.stop_auto_ml_job": ("StopAutoMLJob", "ReadAutoMLJob"),
    "AutopilotHook.list_auto_ml_jobs": ("ListAutoMLJobs",),
    "AutopilotHook.describe_or_none": ("ReadEndpoint", "ReadModelPackage", "Models", "EndpointConfigs"),
    "AutopilotHook.describe_endpoint_or_none": ("ReadEndpoint",),
    "AutopilotHook.wait_for_endpoint": ("ReadEndpoint",),
    "AutopilotModelHook.ensure_model_package_group": ("ModelPackageGroup",),
    "AutopilotModelHook.iter_versions": ("ListModelPackages",),
    "AutopilotModelHook.describe_model_package": ("ReadModelPackage",),
    "AutopilotModelHook.latest_approved_version": ("ListModelPackages", "ReadModelPackage"),
    "AutopilotModelHook.register_version": ("ModelPackages",),
    "AutopilotModelHook.read_json_or_none": ("ReadObjects",),
    "AutopilotModelHook.ensure_model": ("Models", "PassRoleToSageMaker"),
    "AutopilotModelHook.ensure_endpoint_config": ("EndpointConfigs",),
    "AutopilotModelHook.deploy": ("Models", "EndpointConfigs", "Endpoints", "PassRoleToSageMaker"),
    "AutopilotModelHook.endpoint_config_containers": ("ReadEndpointConfig", "ReadModel"),
    "AutopilotModelHook.update_endpoint_config": ("RestoreEndpoint",),
    "AutopilotModelHook.invoke_endpoint": ("InvokeEndpoint",),
    "AutopilotModelHook.read_head": ("ReadTrainingData", "ReadObjects"),
    "AutopilotModelHook.undo_if_refused": ("Models", "EndpointConfigs"),
    "AutopilotModelHook.describe_transform_job_or_none": ("TransformJobs",),
    "AutopilotModelHook.describe_resource": _RESOURCE_WAIT,
    "AutopilotModelHook.wait_for_resource": _RESOURCE_WAIT,
}


def _hook_statements(*hooks: str) -> tuple[str, ...]:
    """Every statement of the named hooks' methods, in :data:`GRANTS` order."""
    used = {sid for method, sids in HOOK_METHODS.items() if method.split(".")[0] in hooks for sid in sids}
    return tuple(sid for sid in GRANTS if sid in used)


#: The statements each public class (and trigger) needs, by class name. An operator that can defer
#: lists its trigger's statements too: the triggerer runs them with the same connection. A hook
#: needs what all its methods need (:data:`HOOK_METHODS` says which method needs what).
USES: dict[str, tuple[str, ...]] = {
    "AutopilotHook": _hook_statements("AutopilotHook"),
    "AutopilotModelHook": _hook_statements("AutopilotHook", "AutopilotModelHook"),
    "AutopilotJobTrigger": _JOB_WAIT,
    "AutopilotEndpointTrigger": ("ReadEndpoint",),
    "AutopilotResourceTrigger": _RESOURCE_WAIT,
    "AutopilotJobCompletedTrigger": ("ReadAutoMLJob", "ListAutoMLJobs", "AcknowledgeJobEvents"),
    "SqsQueueWatcher": ("ReceiveQueueMessages",),
    "AutopilotCreateJobOperator": (
        "CreateAutoMLJob",
        *_JOB_WAIT,
        "StopAutoMLJob",
        "PassRoleToSageMaker",
        "ReadTrainingData",
        "ReadObjects",
        "UseKmsKeys",
    ),
    "AutopilotCreateJobV2Operator": (
        "CreateAutoMLJob",
        *_JOB_WAIT,
        "StopAutoMLJob",
        "PassRoleToSageMaker",
        "ReadTrainingData",
        "ReadObjects",
        "UseKmsKeys",
    ),
    "AutopilotJobSensor": _JOB_WAIT,
    "AutopilotBestCandidateOperator": ("ReadAutoMLJob",),
    "AutopilotCandidatesOperator": ("ReadAutoMLJob",),
    "AutopilotModelDeployResultOperator": (*_JOB_WAIT, "ReadEndpoint"),
    "AutopilotPromotionBranchOperator": (
        "ReadAutoMLJob",
        "ListModelPackages",
        "ReadModelPackage",
        "ReadObjects",
    ),
    "AutopilotRegisterCandidateOperator": (
        "ReadAutoMLJob",
        "ModelPackageGroup",
        "ModelPackages",
        "ListModelPackages",
    ),
    "AutopilotModelApprovalSensor": ("ReadModelPackage",),
    "AutopilotDeployCandidateOperator": (
        "ReadAutoMLJob",
        "ReadModelPackage",
        "Models",
        "EndpointConfigs",
        "Endpoints",
        "PassRoleToSageMaker",
        "ReadAlarms",
        "UseKmsKeys",
    ),
    "AutopilotEndpointSmokeTestOperator": (
        "ReadEndpoint",
        "ReadEndpointConfig",
        "ReadModel",
        "InvokeEndpoint",
        "ReadTrainingData",
        "ReadObjects",
        "RestoreEndpoint",
    ),
    "AutopilotRollbackEndpointOperator": (
        "ReadAutoMLJob",
        "ReadModelPackage",
        "ListModelPackages",
        "Models",
        "EndpointConfigs",
        "Endpoints",
        "PassRoleToSageMaker",
        "ReadAlarms",
        "ReadEndpointConfig",
        "ReadModel",
        "UseKmsKeys",
    ),
    "AutopilotBatchTransformOperator": (
        "ReadAutoMLJob",
        "ReadModelPackage",
        "ListModelPackages",
        "Models",
        "TransformJobs",
        "PassRoleToSageMaker",
        "ReadTrainingData",
        "UseKmsKeys",
    ),
}

#: The resource a SageMaker operation acts on: (resource kind, request member naming it). The
#: emulator checks a request against this resource when it enforces IAM; ``None``: no resource.
OPERATION_RESOURCES: dict[str, tuple[str, str] | None] = {
    "CreateAutoMLJob": ("automl-job", "AutoMLJobName"),
    "CreateAutoMLJobV2": ("automl-job", "AutoMLJobName"),
    "DescribeAutoMLJob": ("automl-job", "AutoMLJobName"),
    "DescribeAutoMLJobV2": ("automl-job", "AutoMLJobName"),
    "ListCandidatesForAutoMLJob": ("automl-job", "AutoMLJobName"),
    "StopAutoMLJob": ("automl-job", "AutoMLJobName"),
    "ListAutoMLJobs": None,
    "ListModelPackages": None,
    "CreateModelPackageGroup": ("model-package-group", "ModelPackageGroupName"),
    "DescribeModelPackageGroup": ("model-package-group", "ModelPackageGroupName"),
    "CreateModelPackage": ("model-package", "ModelPackageGroupName"),
    "DescribeModelPackage": ("model-package", "ModelPackageName"),
    "CreateModel": ("model", "ModelName"),
    "DescribeModel": ("model", "ModelName"),
    "DeleteModel": ("model", "ModelName"),
    "CreateEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "DescribeEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "DeleteEndpointConfig": ("endpoint-config", "EndpointConfigName"),
    "CreateEndpoint": ("endpoint", "EndpointName"),
    "UpdateEndpoint": ("endpoint", "EndpointName"),
    "DescribeEndpoint": ("endpoint", "EndpointName"),
    "CreateTransformJob": ("transform-job", "TransformJobName"),
    "DescribeTransformJob": ("transform-job", "TransformJobName"),
    "StopTransformJob": ("transform-job", "TransformJobName"),
    "InvokeEndpoint": ("endpoint", "EndpointName"),
    "AddTags": ("arn", "ResourceArn"),
    "DeleteTags": ("arn", "ResourceArn"),
    "ListTags": ("arn", "ResourceArn"),
}


@dataclass
class Scope:
    """The resource names a policy is narrowed to; a field left ``None`` becomes a wildcard.

    :param region: the AWS region.
    :param account: the AWS account id.
    :param partition: the AWS partition.
    :param job_prefixes: AutoML job names or name prefixes (a prefix ends with ``*``).
    :param buckets: S3 buckets read.
    :param groups: model package group names.
    :param endpoints: endpoint names.
    :param roles: role ARNs passed to SageMaker.
    :param models: model names or prefixes (``*``-ended).
    :param transform_jobs: transform job names or prefixes (``*``-ended).
    :param kms_keys: KMS keys the requests name (key ARNs, key ids or aliases; ``*``: a key the
        DAG computes at run time); ``None``: the DAG sets none.
    :param queues: SQS queue names a watcher receives from.
    :param endpoint_configs: endpoint config names a DAG's own hook calls give (``*``: computed
        at run time); ``None``: the operators' (named after the endpoint).
    """

    region: str = "*"
    account: str = "*"
    partition: str = "aws"
    job_prefixes: set[str] | None = None
    buckets: set[str] | None = None
    groups: set[str] | None = None
    endpoints: set[str] | None = None
    roles: set[str] | None = None
    models: set[str] | None = None
    transform_jobs: set[str] | None = None
    kms_keys: set[str] | None = None
    queues: set[str] | None = None
    endpoint_configs: set[str] | None = None
    #: Placeholder of each resource kind and the Scope field that fills it.
    _FIELDS: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {
            "job": ("job_prefixes", "*"),
            "bucket": ("buckets", "*"),
            "group": ("groups", "*"),
            "endpoint": ("endpoints", "*"),
            "endpoint_config": ("endpoints", "*"),
            "role": ("roles", "arn:{partition}:iam::{account}:role/*"),
            "model": ("models", "*"),
            "transform_job": ("transform_jobs", "*"),
            "kms_key": ("kms_keys", "arn:{partition}:kms:*:{account}:key/*"),
            "queue": ("queues", "*"),
        },
        repr=False,
    )

    def arns(self, kind: str) -> list[str]:
        """The ARN patterns of resource ``kind`` in this scope.

        :param kind: a key of :data:`RESOURCE_PATTERNS`.
        """
        pattern = RESOURCE_PATTERNS[kind]
        slot = next((name for name in self._FIELDS if "{" + name + "}" in pattern), None)
        values: list[str] = ["*"]
        if slot is not None:
            attribute, wildcard = self._FIELDS[slot]
            given = getattr(self, attribute)
            if given:
                values = sorted(given)
            else:
                values = [wildcard.format(partition=self.partition, account=self.account)]
            if slot == "endpoint_config":
                if self.endpoint_configs:
                    values = sorted(self.endpoint_configs)  # named by the DAG's own code
                else:
                    # The operators name endpoint configs after their endpoint plus a suffix.
                    values = [v if v.endswith("*") else f"{v}*" for v in values]
        if slot == "kms_key":
            values = sorted({self.kms_key_arn(v) for v in values})
        arns = []
        for value in values:
            if slot is not None and slot not in ("role", "bucket", "kms_key", "queue"):
                value = value.lower()  # SageMaker ARNs carry lowercased names
            names = {name: "*" for name in self._FIELDS}
            if slot is not None:
                names[slot] = value
            arns.append(
                pattern.format(partition=self.partition, region=self.region, account=self.account, **names)
            )
        return arns

    def kms_key_arn(self, key: str) -> str:
        """The ARN IAM authorizes a use of ``key`` against: a key ARN as given, a key id as its
        ARN, and an alias (or ``*``) as any key of the account (IAM matches the key an alias
        points to, which the DAG does not show).

        :param key: a key ARN, key id, alias, alias ARN or ``*``.
        """
        if key.startswith("arn:") and ":key/" in key:
            return key
        if key == "*" or "alias/" in key or key.startswith("arn:"):
            return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/*"
        return f"arn:{self.partition}:kms:{self.region}:{self.account}:key/{key}"


class UnknownClassError(ValueError):
    """A class name that :data:`USES` does not list."""


def statements_for(classes: Iterable[str], methods: Iterable[str] = ()) -> list[str]:
    """The statement ids the given classes and hook methods need, in :data:`GRANTS` order.

    :param classes: operator, sensor, trigger or hook class names.
    :param methods: hook methods (keys of :data:`HOOK_METHODS`) a DAG's own tasks call.
    :raises UnknownClassError: for a name :data:`USES` does not list.
    """
    needed: set[str] = {sid for method in methods for sid in HOOK_METHODS[method]}
    for name in classes:
        if name not in USES:
            known = ", ".join(sorted(USES))
            raise UnknownClassError(f"operators: {name!r} is not one of this package's classes ({known})")
        needed.update(USES[name])
    return [sid for sid in GRANTS if sid in needed]


def package_class(obj: object) -> str | None:
    """The name of the first class of ``obj`` (an operator, sensor, trigger or hook, or a subclass
    of one) that :data:`USES` lists, else ``None`` (a class of another package).

    :param obj: the instance.
    """
    return next((cls.__name__ for cls in type(obj).__mro__ if cls.__name__ in USES), None)


def actions_for(classes: Iterable[str], methods: Iterable[str] = ()) -> set[str]:
    """Every IAM action the given classes and hook methods need.

    :param classes: class names, as for :func:`statements_for`.
    :param methods: hook methods, as for :func:`statements_for`.
    """
    return {action for sid in statements_for(classes, methods) for action in GRANTS[sid].actions}


def policy_document(
    classes: Iterable[str],
    scope: Scope | None = None,
    *,
    omit: Iterable[str] = (),
    methods: Iterable[str] = (),
) -> dict[str, Any]:
    """The least-privilege IAM policy document for ``classes``, narrowed to ``scope``.

    :param classes: class names, as for :func:`statements_for`.
    :param scope: the resource names to narrow to; wildcards where ``None``.
    :param omit: statement ids to leave out (to show what a missing statement does).
    :param methods: hook methods a DAG's own tasks call, as for :func:`statements_for`.
    """
    scope = scope or Scope()
    skipped = set(omit)
    chosen = statements_for(classes, methods)
    statements = []
    for sid in chosen:
        grant = GRANTS[sid]
        if grant.when is not None and not getattr(scope, grant.when):
            continue  # the DAG names nothing the statement is about
        if sid in skipped or any(
            other != sid
            and other not in skipped
            and GRANTS[other].resource == grant.resource
            and set(grant.actions) < set(GRANTS[other].actions)
            for other in chosen
        ):
            continue  # left out, or a narrower copy of a statement that is in
        arns = scope.arns(grant.resource)
        statement: dict[str, Any] = {
            "Sid": sid,
            "Effect": "Allow",
            "Action": sorted(grant.actions),
            "Resource": arns[0] if len(arns) == 1 else arns,
        }
        if grant.condition:
            statement["Condition"] = json.loads(json.dumps(grant.condition))
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def operation_arn(
    operation: str, params: Mapping[str, Any], region: str, account: str, partition: str = "aws"
) -> str:
    """The ARN of the resource a SageMaker request acts on, ``*`` when it acts on none (lists).

    :param operation: the SageMaker operation name.
    :param params: the request members.
    :param region: the request's region.
    :param account: the account.
    :param partition: the partition.
    """
    target = OPERATION_RESOURCES.get(operation)
    if target is None:
        return "*"
    kind, member = target
    value = params.get(member)
    if not isinstance(value, str) or not value:
        return "*"
    if value.startswith("arn:"):
        return value.lower() if kind != "arn" else value
    if kind == "model-package":
        # CreateModelPackage names the group; the version ARN is group/number.
        return f"arn:{partition}:sagemaker:{region}:{account}:model-package/{value.lower()}/*"
    return f"arn:{partition}:sagemaker:{region}:{account}:{kind}/{value.lower()}"


#: IAM actions of the S3 operations whose names are not their actions (S3's AccessDenied names no
#: action, and a HEAD request's 403 carries no message at all: the action comes from the operation).
S3_OPERATION_ACTIONS: dict[str, str] = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "HeadObject": "s3:GetObject",
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action a request of ``operation`` to ``service`` is authorized as.

    :param service: the IAM service prefix (the client's signing name: ``sagemaker``, ``s3``).
    :param operation: the API operation name (``ListObjectsV2``).
    """
    if service == "s3" and operation in S3_OPERATION_ACTIONS:
        return S3_OPERATION_ACTIONS[operation]
    return f"{service}:{operation}"


def denial_hint(action: str) -> str:
    """What a person reads when ``action`` was denied: the statement that grants it, why the
    package needs it and which classes use it, and the docs page.

    :param action: the denied IAM action, ``service:Operation``.
    """
    prefix, _, name = action.partition(":")
    action = f"{SIGNING_PREFIXES.get(prefix, prefix)}:{name}"
    # The narrowest statement first: a policy holds it when it needs no broader one.
    sids = sorted(
        (sid for sid, grant in GRANTS.items() if action in grant.actions),
        key=lambda sid: len(GRANTS[sid].actions),
    )
    if not sids:
        return f"{action} is not an action this package calls; see {DOCS_PAGE}"
    grant = GRANTS[sids[0]]
    also = "".join(f"; also in statement {sid!r}" for sid in sids[1:])
    users = sorted(name for name, used in USES.items() if set(used) & set(sids) and not name.endswith("Hook"))
    return (
        f"the policy lacks {action} (statement {grant.sid!r}: {grant.why}{also}); needed by "
        f"{', '.join(users)}. Generate the policy with `autopilot-iam-policy` and see {DOCS_PAGE}"
    )


#: IAM's prefix of a service whose requests are signed (and, by moto, denied) under another name.
SIGNING_PREFIXES = {"monitoring": "cloudwatch"}

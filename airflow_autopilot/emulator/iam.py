"""IAM enforcement on request: moto's access control switched on, and users with a given policy."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

#: The user ``--enforce-iam`` creates for setting the emulator up (every action allowed).
ADMIN_USER = "autopilot-emulator-admin"
ADMIN_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}


def set_enforcement(enabled: bool) -> None:
    """Have moto check every request's signature and its caller's IAM policies (``True``), or let
    every request through (``False``, moto's default).

    moto's documented switch (``INITIAL_NO_AUTH_ACTION_COUNT``, which its ``/moto-api/reset-auth``
    route and ``set_initial_no_auth_action_count`` set): after that many requests, every request
    is authenticated and authorized. It is process-wide: the in-process mock and a server in this
    process share it.

    :param enabled: whether to enforce.
    """
    from moto import settings as moto_settings
    from moto.core import ActionAuthenticatorMixin

    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0 if enabled else float("inf")
    ActionAuthenticatorMixin.request_count = 0


def is_enforced() -> bool:
    """Whether moto currently enforces IAM on every request."""
    from moto import settings as moto_settings

    return bool(moto_settings.INITIAL_NO_AUTH_ACTION_COUNT == 0)


@contextmanager
def enforced() -> Iterator[None]:
    """Enforce IAM within the block; afterwards, as before."""
    before = is_enforced()
    set_enforcement(True)
    try:
        yield
    finally:
        set_enforcement(before)


#: IAM's service prefix of a service moto authorizes under another name (its signing name): a
#: policy's ``cloudwatch:X`` is what moto checks as ``monitoring:X``.
SIGNING_NAMES = {"cloudwatch": "monitoring"}


#: Batch operations AWS authorizes as their single action (``sqs:DeleteMessageBatch`` needs
#: ``sqs:DeleteMessage``: there is no IAM action of its own), which moto checks under their own name.
BATCH_ACTIONS = {
    "sqs:DeleteMessage": "sqs:DeleteMessageBatch",
    "sqs:SendMessage": "sqs:SendMessageBatch",
    "sqs:ChangeMessageVisibility": "sqs:ChangeMessageVisibilityBatch",
}


def as_moto_checks(policy: Mapping[str, Any]) -> dict[str, Any]:
    """``policy`` as moto can check it: each statement granting actions of a service in
    :data:`SIGNING_NAMES` is repeated with those actions under the name moto authorizes them by,
    on resource ``*`` (moto knows no resource of such a request), and a statement granting an
    action of :data:`BATCH_ACTIONS` also grants its batch operation, so a user holds in the
    emulator what the policy grants on AWS.

    :param policy: the policy document.
    """
    statements = policy.get("Statement") or []
    if isinstance(statements, Mapping):
        statements = [statements]
    extra = []
    for statement in statements:
        actions = statement.get("Action") if isinstance(statement, Mapping) else None
        listed = [actions] if isinstance(actions, str) else list(actions or [])
        aliased = [
            f"{SIGNING_NAMES[prefix]}:{name}"
            for prefix, _, name in (str(a).partition(":") for a in listed)
            if prefix in SIGNING_NAMES
        ]
        batched = [BATCH_ACTIONS[str(a)] for a in listed if str(a) in BATCH_ACTIONS]
        if batched:
            extra.append({**statement, "Sid": f"{statement.get('Sid', '')}Batches", "Action": batched})
        if aliased:
            extra.append(
                {
                    **statement,
                    "Sid": f"{statement.get('Sid', '')}AsMotoChecks",
                    "Action": aliased,
                    "Resource": "*",
                }
            )
    return {**policy, "Statement": [*statements, *extra]}


def create_user(iam_client: Any, name: str, policy: Mapping[str, Any]) -> tuple[str, str]:
    """Create IAM user ``name`` with ``policy`` as its only (inline) policy; return its access key
    id and secret. Call it while IAM is not enforced, or with an admin's client.

    :param iam_client: a boto3 IAM client of the emulator.
    :param name: the user name.
    :param policy: the policy document (:func:`as_moto_checks` applied).
    """
    iam_client.create_user(UserName=name)
    iam_client.put_user_policy(
        UserName=name, PolicyName=f"{name}-policy", PolicyDocument=json.dumps(as_moto_checks(policy))
    )
    key = iam_client.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


class EnforcedIam:
    """IAM enforced on an emulator: an admin user (every action) made first, for setting things up
    and reading them back, and users with exactly the policies a test gives them.

    :param handle: the running emulator (its :meth:`client` makes the clients).
    """

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        was_enforced = is_enforced()
        set_enforcement(False)
        try:
            self.admin_keys = create_user(handle.client("iam"), ADMIN_USER, ADMIN_POLICY)
        finally:
            set_enforcement(was_enforced)

    def start(self) -> EnforcedIam:
        """Enforce IAM from now on; return ``self``."""
        set_enforcement(True)
        return self

    def stop(self) -> None:
        """Let every request through again."""
        set_enforcement(False)

    def client(self, service: str = "sagemaker", **kwargs: Any) -> Any:
        """A client of the emulator with the admin's keys.

        :param service: the boto3 service name.
        :param kwargs: more ``boto3.client`` arguments.
        """
        kwargs.setdefault("aws_access_key_id", self.admin_keys[0])
        kwargs.setdefault("aws_secret_access_key", self.admin_keys[1])
        return self.handle.client(service, **kwargs)

    def create_user(self, name: str, *policies: Mapping[str, Any]) -> tuple[str, str]:
        """Create user ``name`` whose permissions are exactly ``policies``; return its keys.

        :param name: the user name.
        :param policies: policy documents, each put as one inline policy.
        """
        iam_client = self.client("iam")
        keys = create_user(
            iam_client, name, policies[0] if policies else {"Version": "2012-10-17", "Statement": []}
        )
        for number, policy in enumerate(policies[1:], start=2):
            iam_client.put_user_policy(
                UserName=name,
                PolicyName=f"{name}-policy-{number}",
                PolicyDocument=json.dumps(as_moto_checks(policy)),
            )
        return keys


#: The SageMaker operations that hand a role to SageMaker, and the request member naming the role.
#: (CreateTransformJob names no role: its model carries the one CreateModel passed.)
PASSED_ROLES: dict[str, str] = {
    "CreateAutoMLJob": "RoleArn",
    "CreateAutoMLJobV2": "RoleArn",
    "CreateModel": "ExecutionRoleArn",
}
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def _pattern_matches(pattern: str, value: str, *, ignore_case: bool) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` one character."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _any_matches(patterns: Any, value: str, *, ignore_case: bool) -> bool:
    listed = [patterns] if isinstance(patterns, str) else list(patterns or [])
    return any(_pattern_matches(str(p), value, ignore_case=ignore_case) for p in listed)


#: The condition operators :func:`statement_applies` evaluates; a statement with any other
#: operator does not apply (a policy the emulator cannot judge grants nothing).
_CONDITION_OPERATORS = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringLike": lambda expected, actual: _pattern_matches(expected, actual, ignore_case=False),
}


def _conditions_hold(conditions: Mapping[str, Any] | None, context: Mapping[str, str]) -> bool:
    for operator, keys in (conditions or {}).items():
        compare = _CONDITION_OPERATORS.get(operator)
        if compare is None or not isinstance(keys, Mapping):
            return False
        for key, expected in keys.items():
            actual = next((v for k, v in context.items() if k.lower() == str(key).lower()), None)
            values = [expected] if isinstance(expected, str) else list(expected)
            if actual is None or not any(compare(str(e), actual) for e in values):
                return False
    return True


def statement_applies(
    statement: Mapping[str, Any], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    """Whether ``statement`` covers ``action`` on ``resource`` with the request's condition keys
    (``Action``/``NotAction``, ``Resource``/``NotResource`` and ``StringEquals``/``StringLike``
    conditions, as IAM evaluates them).

    :param statement: one policy statement.
    :param action: the IAM action, ``iam:PassRole``.
    :param resource: the resource ARN.
    :param context: the request's condition keys (``iam:PassedToService``).
    """
    if "NotAction" in statement:
        if _any_matches(statement["NotAction"], action, ignore_case=True):
            return False
    elif not _any_matches(statement.get("Action"), action, ignore_case=True):
        return False
    if "NotResource" in statement:
        if _any_matches(statement["NotResource"], resource, ignore_case=False):
            return False
    elif not _any_matches(statement.get("Resource", "*"), resource, ignore_case=False):
        return False
    return _conditions_hold(statement.get("Condition"), context)


def is_allowed(
    documents: Sequence[Mapping[str, Any]], action: str, resource: str, context: Mapping[str, str]
) -> bool:
    """IAM's verdict over identity policies: allowed when a statement allows and none denies.

    :param documents: the caller's policy documents.
    :param action: the IAM action.
    :param resource: the resource ARN.
    :param context: the request's condition keys.
    """
    allowed = False
    for document in documents:
        statements = document.get("Statement", [])
        for statement in [statements] if isinstance(statements, Mapping) else statements:
            if statement_applies(statement, action, resource, context):
                if statement.get("Effect") == "Deny":
                    return False
                allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _policy_document(policy: Any) -> dict[str, Any]:
    """The document of a policy as moto's access control collects it: an inline policy (a dict
    with ``policy_document``) or a managed policy (its default version's document)."""
    if isinstance(policy, Mapping):
        document = policy["policy_document"]
    else:
        document = next(v.document for v in policy.versions if v.is_default)
    return json.loads(document) if isinstance(document, str) else dict(document)


def _caller(headers: Mapping[str, str], account_id: str) -> Any:
    """moto's view of the caller whose access key signed the request, else ``None``."""
    from moto.iam.access_control import create_access_key

    found = _CREDENTIAL.search(str(headers.get("Authorization") or headers.get("authorization") or ""))
    if found is None:
        return None
    return create_access_key(account_id, "aws", found.group(1), dict(headers))


def caller_arn(headers: Mapping[str, str], account_id: str) -> str:
    """The ARN of the user (or assumed role) that signed the request.

    :param headers: the request headers.
    :param account_id: the account.
    """
    caller = _caller(headers, account_id)
    return str(caller.arn) if caller is not None else f"arn:aws:iam::{account_id}:user/unknown"


def pass_role_denial(
    operation: str, params: Mapping[str, Any], headers: Mapping[str, str], account_id: str
) -> str | None:
    """When IAM is enforced, SageMaker's own check of a request that hands it a role: the caller
    needs ``iam:PassRole`` on the role with ``iam:PassedToService`` = ``sagemaker.amazonaws.com``
    (moto's SageMaker checks only the SageMaker action). The AccessDenied message, or ``None``.

    :param operation: the SageMaker operation.
    :param params: the request members.
    :param headers: the request headers (the caller's access key is in the signature).
    :param account_id: the account.
    """
    member = PASSED_ROLES.get(operation)
    role = params.get(member) if member else None
    if not is_enforced() or not isinstance(role, str) or not role:
        return None
    from airflow_autopilot.core.permissions import SAGEMAKER_PRINCIPAL

    caller = _caller(headers, account_id)
    if caller is None:
        return None  # moto's own check has already refused an unsigned request
    documents = [_policy_document(policy) for policy in caller.collect_policies()]
    if is_allowed(documents, "iam:PassRole", role, {"iam:PassedToService": SAGEMAKER_PRINCIPAL}):
        return None
    return (
        f"iam:PassRole on resource: {role} because no identity-based policy allows the iam:PassRole "
        f"action with iam:PassedToService {SAGEMAKER_PRINCIPAL}"
    )


#: The request members that name a KMS key, at any depth (``OutputDataConfig.KmsKeyId``,
#: ``SecurityConfig.VolumeKmsKeyId``, ``DataCaptureConfig.KmsKeyId``, ``TransformOutput.KmsKeyId``...).
KMS_MEMBERS = ("KmsKeyId", "VolumeKmsKeyId")
#: What SageMaker does with a key the request names, on the caller's behalf (the ``UseKmsKeys``
#: statement): it creates grants on it for its instances, after reading it.
KMS_ACTIONS = ("kms:DescribeKey", "kms:CreateGrant")


def kms_keys_named(params: Any, path: str = "") -> list[tuple[str, str]]:
    """Every (member path, key) of a request that names a KMS key.

    :param params: the request members.
    :param path: the path of ``params`` in the request.
    """
    found: list[tuple[str, str]] = []
    if isinstance(params, Mapping):
        for name, value in params.items():
            where = f"{path}.{name}" if path else str(name)
            if name in KMS_MEMBERS and isinstance(value, str) and value:
                found.append((where, value))
            else:
                found.extend(kms_keys_named(value, where))
    elif isinstance(params, list):
        for number, item in enumerate(params):
            found.extend(kms_keys_named(item, f"{path}[{number}]"))
    return found


class KmsKeyMissingError(ValueError):
    """A request names a KMS key the emulator's KMS does not hold."""


def kms_denial(
    params: Mapping[str, Any], headers: Mapping[str, str], account_id: str, region: str
) -> str | None:
    """When IAM is enforced, SageMaker's use of the KMS keys a request names: each key must exist
    in the emulator's (moto's) KMS, and the caller's policies must allow :data:`KMS_ACTIONS` on the
    key's ARN through SageMaker (``kms:ViaService``). The AccessDenied message, or ``None``.

    :param params: the request members.
    :param headers: the request headers (the caller's access key is in the signature).
    :param account_id: the account.
    :param region: the request's region.
    :raises KmsKeyMissingError: naming the member and the key, for a key KMS does not hold.
    """
    keys = kms_keys_named(params)
    if not keys or not is_enforced():
        return None
    caller = _caller(headers, account_id)
    if caller is None:
        return None
    from moto.kms.models import kms_backends

    backend = kms_backends[account_id][region]
    documents = [_policy_document(policy) for policy in caller.collect_policies()]
    context = {"kms:ViaService": f"sagemaker.{region}.amazonaws.com"}
    for member, key in keys:
        try:
            arn = str(backend.describe_key(key).arn)
        except Exception as err:  # moto's NotFoundException: the key (or alias) is not there
            raise KmsKeyMissingError(
                f"{member}: KMS key {key!r} does not exist in {region} (create it, or name an existing "
                "key ARN, key id or alias)"
            ) from err
        for action in KMS_ACTIONS:
            if not is_allowed(documents, action, arn, context):
                return (
                    f"{action} on resource: {arn} because no identity-based policy allows the {action} "
                    f"action with kms:ViaService {context['kms:ViaService']} (the key {member} names)"
                )
    return None

"""IAM enforcement on request: moto's access control switched on, and users with a given policy."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
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


def as_moto_checks(policy: Mapping[str, Any]) -> dict[str, Any]:
    """``policy`` as moto can check it: each statement granting actions of a service in
    :data:`SIGNING_NAMES` is repeated with those actions under the name moto authorizes them by,
    on resource ``*`` (moto knows no resource of such a request), so a user holds in the emulator
    what the policy grants on AWS.

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

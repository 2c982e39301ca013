"""How this package classifies AWS errors: throttling, not found, transient, already exists."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from airflow_autopilot.exceptions import AutopilotJobNotFound

#: AWS error codes that mean "slow down", whatever the HTTP status.
THROTTLING_ERROR_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
#: ResourceNotFound codes (a job just created may not be visible yet).
NOT_FOUND_ERROR_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException"})


def _client_error_parts(error: BaseException) -> tuple[str | None, int | None]:
    """(error code, HTTP status) of a botocore ``ClientError``-shaped exception, else (None, None)."""
    response = getattr(error, "response", None)
    if not isinstance(response, Mapping):
        return None, None
    code = (response.get("Error") or {}).get("Code")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    try:
        return code, int(status) if status is not None else None
    except (TypeError, ValueError):
        return code, None


def error_code(error: BaseException) -> str | None:
    """The AWS error code carried by ``error`` (a ``ClientError``), else ``None``."""
    return _client_error_parts(error)[0]


def is_not_found(error: BaseException) -> bool:
    """True when ``error`` is SageMaker's ResourceNotFound (raw ``ClientError`` or the hook's)."""
    return isinstance(error, AutopilotJobNotFound) or error_code(error) in NOT_FOUND_ERROR_CODES


def is_transient(error: BaseException) -> bool:
    """
    Whether a polling error is worth retrying: throttling, HTTP 5xx, dropped or timed-out connections.

    :param error: the exception raised by a describe or list call (boto3 or aiobotocore).
    """
    if isinstance(error, (asyncio.TimeoutError, TimeoutError, ConnectionError)):
        # builtin ConnectionError covers ConnectionResetError / BrokenPipeError / refused.
        return True
    code, status = _client_error_parts(error)
    if code is not None or status is not None:
        return code in THROTTLING_ERROR_CODES or (status is not None and 500 <= status <= 599)
    try:
        from botocore import exceptions as bce
    except ImportError:  # pragma: no cover - botocore is a dependency
        bce = None  # type: ignore[assignment]
    if bce is not None:
        if isinstance(error, bce.SSLError):
            return False  # a certificate problem does not fix itself
        if isinstance(error, (bce.ConnectionError, bce.HTTPClientError)):
            # EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError, ConnectionClosedError ...
            return True
    try:
        import aiohttp
    except ImportError:  # pragma: no cover - aiobotocore brings aiohttp
        return False
    if isinstance(error, aiohttp.ClientResponseError):
        return error.status >= 500 or error.status == 429
    return isinstance(error, aiohttp.ClientError)


#: SageMaker reports a missing model, endpoint config, endpoint or package group as a
#: ValidationException with one of these phrases (there is no ResourceNotFound for them).
_MISSING_PHRASES = ("does not exist", "could not find", "not found")
#: Phrases of a create that lost a race against an equal create.
_EXISTS_PHRASES = ("already exist",)


def is_missing(error: BaseException) -> bool:
    """True for SageMaker's "no such model / endpoint / group" answers."""
    if error_code(error) in NOT_FOUND_ERROR_CODES:
        return True
    if error_code(error) != "ValidationException":
        return False
    message = str(getattr(error, "response", {}).get("Error", {}).get("Message", "")).lower()
    return any(phrase in message for phrase in _MISSING_PHRASES)


def already_exists(error: BaseException) -> bool:
    """True for a create answered with "already exists" (ResourceInUse or ValidationException)."""
    if error_code(error) == "ResourceInUse":
        return True
    message = str(getattr(error, "response", {}).get("Error", {}).get("Message", "")).lower()
    return error_code(error) == "ValidationException" and any(p in message for p in _EXISTS_PHRASES)


def was_refused(error: BaseException) -> bool:
    """True when AWS answered ``error`` to refuse the request outright (a 4xx ``ClientError`` that
    is not throttling: AccessDenied, a validation error), so the request changed nothing. A timeout
    or a 5xx may hide a request that did take effect: not a refusal.

    :param error: what a call raised.
    """
    code, status = _client_error_parts(error)
    if code is None or code in THROTTLING_ERROR_CODES:
        return False
    if status is None:
        return code in ACCESS_DENIED_CODES
    return 400 <= status <= 499


def falls_back_to_v2(error: BaseException, api_version: str) -> bool:
    """
    Whether a failed DescribeAutoMLJob should be retried as DescribeAutoMLJobV2: SageMaker answers
    ValidationException for jobs created with CreateAutoMLJobV2.

    :param error: what the V1 describe raised.
    :param api_version: ``"auto"`` (fall back), ``"v1"`` (never) or ``"v2"``.
    """
    return api_version == "auto" and error_code(error) == "ValidationException"


#: Error codes of a request the caller's IAM policies do not allow ("403": S3's answer to a HEAD
#: request, which has no body to carry a code).
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "403"})
_DENIED_ACTION = re.compile(r"not authorized to perform:? ([A-Za-z0-9-]+:[A-Za-z0-9]+)")


def denied_action(message: str, operation: str, service: str = "sagemaker") -> str:
    """The IAM action an AccessDenied ``message`` names, else the action ``operation`` is
    authorized as (:func:`~airflow_autopilot.core.permissions.iam_action`: S3's AccessDenied
    names none, and ``ListObjectsV2`` is authorized as ``s3:ListBucket``).

    :param message: the error message.
    :param operation: the operation that was denied.
    :param service: the IAM service prefix.
    """
    from airflow_autopilot.core.permissions import iam_action

    match = _DENIED_ACTION.search(message)
    return match.group(1) if match else iam_action(service, operation)


def guarded_client(client: Any, caller: str | None = None) -> Any:
    """Return ``client`` (boto3 or aiobotocore) with the package's error handling, as every client
    the hooks and triggers hand out has it: AccessDenied errors that name the missing permission
    (:func:`explain_access_denied`) and no credential from a URL in its errors
    (:func:`~airflow_autopilot.core.redaction.scrub_client_errors`).

    :param client: the client.
    :param caller: the operator, sensor or trigger class on whose behalf the client calls.
    """
    from airflow_autopilot.core.redaction import scrub_client_errors

    return scrub_client_errors(explain_access_denied(client, caller))


def explain_access_denied(client: Any, caller: str | None = None) -> Any:
    """Have ``client`` (boto3 or aiobotocore; SageMaker, S3 or any other service) raise its
    AccessDenied errors with a message that names the denied action, the statement of the package's policy that grants it, the classes
    that need it (``caller`` first) and the docs page; return it. The error stays a ``ClientError``
    with its code, so every classification here still applies.

    :param client: the client.
    :param caller: the operator, sensor or trigger class on whose behalf the client calls.
    """
    from airflow_autopilot.core.permissions import denial_hint

    service = client.meta.service_model.signing_name

    def explain(parsed: Any = None, model: Any = None, **_: Any) -> None:
        error = (parsed or {}).get("Error") if isinstance(parsed, dict) else None
        if not isinstance(error, dict) or error.get("Code") not in ACCESS_DENIED_CODES:
            return
        message = str(error.get("Message") or "")
        action = denied_action(message, getattr(model, "name", "?"), service)
        who = f"{caller} cannot run: " if caller else ""
        error["Message"] = f"{message} -- {who}{denial_hint(action)}"

    event = f"after-call.{client.meta.service_model.service_id.hyphenize()}"
    client.meta.events.register(event, explain, unique_id="airflow-autopilot-access-denied")
    return client

"""How this package classifies AWS errors: throttling, not found, transient, already exists."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

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


def falls_back_to_v2(error: BaseException, api_version: str) -> bool:
    """
    Whether a failed DescribeAutoMLJob should be retried as DescribeAutoMLJobV2: SageMaker answers
    ValidationException for jobs created with CreateAutoMLJobV2.

    :param error: what the V1 describe raised.
    :param api_version: ``"auto"`` (fall back), ``"v1"`` (never) or ``"v2"``.
    """
    return api_version == "auto" and error_code(error) == "ValidationException"

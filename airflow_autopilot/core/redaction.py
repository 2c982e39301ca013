"""Credentials out of every text we log, raise or hand over: URL userinfo and credential query
parameters, masked in one place (:func:`describe_error`, :func:`scrub`)."""

from __future__ import annotations

import logging
import re
from typing import Any

# A connection's endpoint_url may carry user:password@host (proxies and gateways are set up so) and
# botocore words its connection errors with that URL; presigned URLs carry signatures and session
# tokens in their query string.

#: What a credential is replaced with.
MASK = "***"
#: Query-string (and SigV4 header) parameters that carry a credential or a signature.
SECRET_PARAMETERS = (
    "X-Amz-Security-Token",
    "X-Amz-Signature",
    "X-Amz-Credential",
    "AWSAccessKeyId",
    "Signature",
    "SecurityToken",
    "Security-Token",
    "Policy",
    "Key-Pair-Id",
    "sig",
    "token",
    "access_token",
    "id_token",
    "refresh_token",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "secret",
    "api_key",
    "apikey",
)
# scheme://userinfo@ : the userinfo ends at the last '@' before the host (a password may hold '@'
# unescaped); it cannot hold '/', whitespace or quotes, which end the URL in a message.
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<userinfo>[^/\s\"'<>`]*)@")
_PARAMETER = re.compile(
    r"(?P<name>(?:^|(?<=[?&;,\s]))(?:" + "|".join(re.escape(p) for p in SECRET_PARAMETERS) + r")=)"
    r"(?P<value>[^&;,\s\"'<>`#]*)",
    re.IGNORECASE,
)


def _mask_userinfo(match: re.Match[str]) -> str:
    user, colon, _password = match["userinfo"].partition(":")
    # user:password keeps the user (it helps to tell connections apart); a lone token is all secret.
    return f"{match['scheme']}{user}:{MASK}@" if colon else f"{match['scheme']}{MASK}@"


def redact(text: str) -> str:
    """``text`` with the userinfo of every URL and every credential query parameter masked.

    ``http://user:pw@proxy:8080/`` becomes ``http://user:***@proxy:8080/``;
    ``...?X-Amz-Signature=abc&X-Amz-Date=...`` becomes ``...?X-Amz-Signature=***&X-Amz-Date=...``.

    :param text: any text (a message, an exception's string, a URL).
    """
    if "@" in text:
        text = _USERINFO.sub(_mask_userinfo, text)
    if "=" in text:
        text = _PARAMETER.sub(lambda m: f"{m['name']}{MASK}" if m["value"] else m[0], text)
    return text


def redact_value(value: Any) -> Any:
    """``value`` with every string in it redacted (strings, and lists, tuples and dicts of them).

    :param value: an exception argument, an XCom value, trigger kwargs.
    """
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_value(item) for item in value)
    return value


def scrub(error: BaseException) -> BaseException:
    """Redact ``error`` in place, with the exceptions it chains (cause and context); return it.

    Its arguments, and botocore's ``kwargs`` (``endpoint_url``) and a ``message`` attribute, are
    what its string and a traceback show.

    :param error: the exception about to be raised again, logged with its traceback or stored.
    """
    seen: set[int] = set()
    pending = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        try:
            current.args = tuple(redact_value(arg) for arg in current.args)
            for attribute in ("kwargs", "message", "msg"):
                value = getattr(current, attribute, None)
                if isinstance(value, (str, dict)):
                    setattr(current, attribute, redact_value(value))
        except (AttributeError, TypeError):  # a read-only attribute: its text stays as it is
            pass
        pending.extend(e for e in (current.__cause__, current.__context__) if e is not None)
    return error


def describe_error(error: BaseException) -> str:
    """``"<ErrorType>: <message>"`` of an AWS or network error, with credentials redacted: the one
    way this package puts an error into a log line, a message, an event or an exception.

    :param error: the exception.
    """
    return f"{type(error).__name__}: {redact(str(error))}"


def _scrub_caught(caught_exception: BaseException | None = None, **_: Any) -> None:
    # Called by botocore after every attempt; returning None leaves the retry decision to the others.
    if caught_exception is not None:
        scrub(caught_exception)


def scrub_client_errors(client: Any) -> Any:
    """Have ``client`` raise its connection errors (which botocore words with the endpoint URL)
    already :func:`scrub`-bed, before any caller or traceback sees them; return it.

    :param client: a boto3 or aiobotocore client.
    """
    # First on the service's own event: the legacy retry handler registered there raises the
    # error itself once the attempts are spent, so a handler after it would never run.
    event = f"needs-retry.{client.meta.service_model.service_id.hyphenize()}"
    client.meta.events.register_first(event, _scrub_caught, unique_id="airflow-autopilot-scrub")
    return client


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message and its exception (a safety net on
    the package's standard-library loggers, behind :func:`describe_error` at each call site)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and record.exc_info[1] is not None:
            scrub(record.exc_info[1])
            record.exc_text = None  # formatted again, from the redacted exception
        return True


_FILTER = RedactingFilter()


def redacting_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` with :class:`RedactingFilter` installed (once).

    :param name: the logger's name (a module's ``__name__``).
    """
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger

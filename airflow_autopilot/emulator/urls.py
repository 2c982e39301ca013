"""The emulator's wiring into moto: its SageMaker route, behind a front door that answers malformed
requests as SageMaker's front end does, and the HTTP control routes."""

from __future__ import annotations

import functools
import html
import json
import re
import uuid
from email.utils import formatdate
from typing import Any

from moto.sagemaker import urls as sagemaker_urls
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime import urls as runtime_urls

from airflow_autopilot.core.validation import JOB_NAME_MAX_LENGTH, JOB_NAME_PATTERN
from airflow_autopilot.emulator import settings, wire_validation
from airflow_autopilot.emulator.http_controls import register_routes
from airflow_autopilot.emulator.responses import AutopilotResponse
from airflow_autopilot.emulator.runtime import INVOKE_URL_KEY, RuntimeResponse

#: The entry of ``moto.sagemaker.urls.url_paths`` that serves every SageMaker request.
SAGEMAKER_URL_KEY = "{0}/$"
#: The header of every AWS answer that names the request (botocore reads it into ResponseMetadata).
REQUEST_ID_HEADER = "x-amzn-RequestId"
#: Operations that read or act on an existing job by name: SageMaker checks the name's length and
#: pattern before it looks the job up (the creates check theirs with the rest of the request).
NAMED_JOB_OPERATIONS = frozenset(
    {"DescribeAutoMLJob", "DescribeAutoMLJobV2", "ListCandidatesForAutoMLJob", "StopAutoMLJob"}
)
_JSON_1_1 = "application/x-amz-json-1.1"

Answer = tuple[int, dict[str, Any], Any]


def _header(headers: Any, name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return ""


def _camel(name: str) -> str:
    # SageMaker names members in camelCase in its messages: 'autoMLJobName', 'maxResults'.
    return name[:1].lower() + name[1:]


def error_answer(code: str, message: str, status: int = 400) -> Answer:
    """An AWS JSON 1.1 error answer, with its request id and error type headers.

    :param code: the error code (``ValidationException``).
    :param message: the error message.
    :param status: the HTTP status.
    """
    headers = {
        "Content-Type": _JSON_1_1,
        REQUEST_ID_HEADER: str(uuid.uuid4()),
        "X-Amzn-Errortype": code,
        # On the emulator clock, as every SageMaker answer's (in-process clients read it too).
        "date": formatdate(settings.now(), usegmt=True),
    }
    return status, headers, json.dumps({"__type": code, "message": message})


def with_request_id(answer: Answer) -> Answer:
    """``answer`` with an ``x-amzn-RequestId`` header added when it has none.

    :param answer: (status, headers, body) as moto's handlers return it.
    """
    status, headers, body = answer
    if not _header(headers, REQUEST_ID_HEADER):
        headers = dict(headers or {})
        headers[REQUEST_ID_HEADER] = str(uuid.uuid4())
    return status, headers, body


@functools.lru_cache(maxsize=1)
def _service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


@functools.cache
def _parser(operation: str) -> Any:
    from moto.core.parse import JSONParser

    return JSONParser(_service_model().operation_model(operation))


def _reads(operation: str, params: Any) -> bool:
    """Whether moto's request parser (the one every SageMaker request goes through) reads ``params``."""
    try:
        _parser(operation).parse({"body": json.dumps(params), "headers": {}, "values": {}})
    except Exception:  # noqa: BLE001 - anything it raises means it cannot read the value
        return False
    return True


def _children(shape: Any, value: Any) -> list[tuple[str, Any, Any, Any]]:
    """(path suffix, shape, value, re-wrap) of each member, item or map value of ``value``."""
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        return [
            (_camel(name), member, value[name], lambda v, n=name: {n: v})
            for name, member in shape.members.items()
            if name in value
        ]
    if kind == "list" and isinstance(value, list):
        return [("member", shape.member, item, lambda v: [v]) for item in value]
    if kind == "map" and isinstance(value, dict):
        return [("value", shape.value, item, lambda v, k=key: {k: v}) for key, item in value.items()]
    return []


def _unreadable_member(operation: str, shape: Any, value: Any, path: str, wrap: Any) -> tuple[str, Any]:
    """The deepest member under ``path`` that moto's parser cannot read, with its value."""
    for suffix, child_shape, child_value, rewrap in _children(shape, value):

        def child_wrap(v: Any, outer: Any = wrap, inner: Any = rewrap) -> Any:
            return outer(inner(v))

        if not _reads(operation, child_wrap(child_value)):
            child_path = f"{path}.{suffix}" if path else suffix
            return _unreadable_member(operation, child_shape, child_value, child_path, child_wrap)
    return path, value


def serialization_problem(operation: str, params: dict[str, Any]) -> str | None:
    """The SerializationException message for a request whose members cannot be read as their type
    (a timestamp given as free text), naming the member, else ``None``.

    :param operation: the operation name.
    :param params: the decoded JSON request body.
    """
    if _reads(operation, params):
        return None
    shape = _service_model().operation_model(operation).input_shape
    path, value = _unreadable_member(operation, shape, params, "", lambda v: v)
    shown = json.dumps(value)[:80]
    return f"Value {shown} at '{path or 'request'}' cannot be read as the member's type"


def name_problem(operation: str, params: dict[str, Any]) -> str | None:
    """The ValidationException message for a job name that breaks SageMaker's length or pattern
    rule, for the operations that look a job up by name (a lookup would answer ResourceNotFound).

    :param operation: the operation name.
    :param params: the decoded JSON request body.
    """
    name = params.get("AutoMLJobName")
    if operation not in NAMED_JOB_OPERATIONS or not isinstance(name, str):
        return None
    if not 1 <= len(name) <= JOB_NAME_MAX_LENGTH:
        rule = f"Member must have length between 1 and {JOB_NAME_MAX_LENGTH}"
    elif not JOB_NAME_PATTERN.fullmatch(name):
        rule = f"Member must satisfy regular expression pattern: {JOB_NAME_PATTERN.pattern}"
    else:
        return None
    return (
        f"1 validation error detected: Value '{name}' at 'autoMLJobName' failed to satisfy constraint: {rule}"
    )


def front_door(request: Any, full_url: str, headers: Any) -> Answer:
    """Serve one SageMaker request as SageMaker's front end does, then through :class:`AutopilotResponse`.

    Before any operation runs, a request that breaks its input shape (botocore's model) gets an
    HTTP 400: ValidationException for a missing or wrongly typed member or a malformed job name,
    SerializationException for a value moto's parser cannot read; each names the member. moto's
    parser would otherwise raise and the server answer an HTTP 500 HTML page. Every answer carries
    ``x-amzn-RequestId``.

    :param request: the request, as moto hands it over (werkzeug's, in both modes).
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    operation = _header(headers, "X-Amz-Target").rpartition(".")[2]
    if operation in _service_model().operation_names:
        body = request.get_data() if hasattr(request, "get_data") else getattr(request, "body", b"")
        problem = wire_validation.request_problem(operation, body)
        if problem is not None:
            return error_answer("ValidationException", problem)
        params = json.loads(body or "{}")
        problem = name_problem(operation, params)
        if problem is not None:
            return error_answer("ValidationException", problem)
        problem = serialization_problem(operation, params)
        if problem is not None:
            return error_answer("SerializationException", problem)
        return with_request_id(
            json_auth_error(AutopilotResponse.dispatch(request, full_url, headers), params, headers)
        )
    return with_request_id(AutopilotResponse.dispatch(request, full_url, headers))


#: moto's access-control errors (XML, whatever the protocol) and SageMaker's JSON codes for them.
_AUTH_ERROR_CODES = {
    "AccessDenied": "AccessDeniedException",
    "InvalidClientTokenId": "UnrecognizedClientException",
    "SignatureDoesNotMatch": "InvalidSignatureException",
    "AuthFailure": "UnrecognizedClientException",
}
_XML_ERROR = re.compile(r"<Code>([^<]+)</Code>\s*<Message>([^<]*)</Message>")


def json_auth_error(answer: Answer, params: dict[str, Any], headers: Any) -> Answer:
    """``answer`` with moto's XML access-control error (IAM enforced, :mod:`~airflow_autopilot.emulator.iam`)
    rewritten as SageMaker's JSON error, whose AccessDenied message names the action and the
    resource as SageMaker's does; any other answer unchanged.

    :param answer: (status, headers, body) from the operation.
    :param params: the decoded request body.
    :param headers: the request headers (the region is in the signature's scope).
    """
    status, _, body = answer
    text = body.decode() if isinstance(body, bytes) else str(body)
    match = _XML_ERROR.search(text) if status in (401, 403) else None
    if match is None or match.group(1) not in _AUTH_ERROR_CODES:
        return answer
    code, message = _AUTH_ERROR_CODES[match.group(1)], html.unescape(match.group(2))
    action = re.search(r"perform: (sagemaker:(\w+))", message)
    user = re.search(r"arn:[^:]+:iam::(\d+):", message)
    if code == "AccessDeniedException" and action and user:
        from airflow_autopilot.core.permissions import operation_arn

        region = re.search(r"Credential=[^/]+/\d+/([^/]+)/", _header(headers, "Authorization"))
        resource = operation_arn(action.group(2), params, region.group(1) if region else "*", user.group(1))
        message = (
            f"{message} on resource: {resource} because no identity-based policy allows the "
            f"{action.group(1)} action"
        )
    return error_answer(code, message)


def install() -> None:
    """Route moto's SageMaker requests to :func:`front_door`, its InvokeEndpoint requests to
    :class:`RuntimeResponse` and register the HTTP controls.

    Idempotent. In-process (``mock_aws``) moto reads its route table on every request; a moto server
    reads it when it builds its SageMaker app, so install before its first SageMaker request.
    """
    sagemaker_urls.url_paths[SAGEMAKER_URL_KEY] = front_door
    runtime_urls.url_paths[INVOKE_URL_KEY] = RuntimeResponse.dispatch
    register_routes()


def uninstall() -> None:
    """Give the SageMaker routes back to moto's own response classes (in-process mode)."""
    sagemaker_urls.url_paths[SAGEMAKER_URL_KEY] = SageMakerResponse.dispatch
    runtime_urls.url_paths[INVOKE_URL_KEY] = runtime_urls.response.dispatch


def is_installed() -> bool:
    """Return whether moto's SageMaker route goes through :func:`front_door`."""
    return sagemaker_urls.url_paths.get(SAGEMAKER_URL_KEY) is front_door

"""Real-time inference on emulated endpoints: which variant answers an InvokeEndpoint request, the
deployed candidate's deterministic predictions (scored as batch transform scores them), SageMaker
runtime's errors, and data capture to S3."""

from __future__ import annotations

import base64
import csv
import io
import json
import math
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from moto.core.exceptions import ServiceException

from airflow_autopilot.emulator import controls, data, guardrails, settings
from airflow_autopilot.emulator.models import AutopilotBackend
from airflow_autopilot.emulator.transform import (
    ModelFacts,
    RowError,
    format_prediction,
    model_facts,
    score_record,
)

#: Endpoint statuses in which an endpoint answers invocations (an update or a rollback keeps
#: the serving fleet answering, as SageMaker's blue/green deployments do).
SERVING_STATUSES = frozenset(
    {"InService", "Updating", "SystemUpdating", "RollingBack", "UpdateRollbackFailed"}
)
#: Content types the candidates' containers read, and the JSON Lines ones among them.
CSV_TYPES = ("text/csv",)
JSON_LINES_TYPES = ("application/jsonlines", "application/x-jsonlines", "application/json-lines")
#: Output content types the containers write: one CSV record or JSON object per row, or one JSON
#: document ``{"predictions": [...]}``.
JSON_TYPES = ("application/json",)
DEFAULT_ACCEPT = "text/csv"
#: The container environment variable naming its default Accept.
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
#: Attribute of moto's SageMaker backend holding each endpoint's serving state (reset drops it).
_STATE_ATTRIBUTE = "autopilot_serving"
_LOCK = threading.Lock()


class ModelError(ServiceException):
    """HTTP 424 ``ModelError``: the model's container answered an error (botocore's sagemaker-runtime
    model: ``OriginalStatusCode``, ``OriginalMessage``, ``LogStreamArn``)."""

    code = "ModelError"

    def __init__(
        self, message: str, original_status: int, original_message: str, log_stream_arn: str
    ) -> None:
        super().__init__(message)
        # Serialized by moto against the error shape's members.
        self.OriginalStatusCode = original_status
        self.OriginalMessage = original_message
        self.LogStreamArn = log_stream_arn


class RuntimeValidationError(ServiceException):
    """HTTP 400 ``ValidationError`` (sagemaker-runtime's code; SageMaker's API says ValidationException)."""

    code = "ValidationError"


@dataclass
class Invocation:
    """One InvokeEndpoint answer."""

    body: bytes
    content_type: str
    variant: str
    #: The endpoint config whose variant answered (the new one during a canary, or the old).
    config_name: str


@dataclass
class _EndpointState:
    captured: int = 0
    split: tuple[tuple[str, str, float], ...] = ()
    served: list[int] = field(default_factory=list)
    facts: dict[str, tuple[Any, ModelFacts]] = field(default_factory=dict)


def _state(backend: Any, endpoint_name: str) -> _EndpointState:
    states: dict[str, _EndpointState] | None = getattr(backend, _STATE_ATTRIBUTE, None)
    if states is None:
        states = {}
        setattr(backend, _STATE_ATTRIBUTE, states)
    return states.setdefault(endpoint_name, _EndpointState())


def log_group_arn(backend: Any, endpoint_name: str) -> str:
    """The CloudWatch log group of an endpoint's containers (``LogStreamArn`` of a ModelError)."""
    return f"arn:aws:logs:{backend.region_name}:{backend.account_id}:log-group:/aws/sagemaker/Endpoints/{endpoint_name}"


def model_error(backend: Any, endpoint_name: str, status: int, message: str) -> ModelError:
    """The ModelError SageMaker answers when the container answers ``status`` with ``message``.

    :param backend: moto's SageMaker backend.
    :param endpoint_name: the endpoint.
    :param status: the container's HTTP status.
    :param message: the container's message.
    """
    kind = "client" if 400 <= status < 500 else "server"
    region, account = backend.region_name, backend.account_id
    text = (
        f'Received {kind} error ({status}) from primary with message "{message}". See '
        f"https://{region}.console.aws.amazon.com/cloudwatch/home?region={region}#logEventViewer:group="
        f"/aws/sagemaker/Endpoints/{endpoint_name} in account {account} for more information."
    )
    return ModelError(text, status, message, log_group_arn(backend, endpoint_name))


def _weights(config: Any) -> list[tuple[dict[str, Any], float]]:
    """A config's variants and their shares of its traffic (by ``InitialVariantWeight``)."""
    variants = list(getattr(config, "production_variants", None) or [])
    weights = [max(float(v.get("InitialVariantWeight", 1.0) or 0.0), 0.0) for v in variants]
    total = sum(weights)
    if total <= 0:
        return [(v, 1.0 / len(variants)) for v in variants]
    return [(v, w / total) for v, w in zip(variants, weights, strict=True)]


def choose_variant(
    backend: Any, endpoint: Any, state: _EndpointState, target: str | None
) -> tuple[str, dict[str, Any]]:
    """The endpoint config and variant that answer the next request.

    The configs serving now take their traffic shares, and each config's variants their weights,
    exactly and in the same order in every run: each request goes to the variant furthest behind
    its share (a 10 % canary answers one request in each 10).

    :param backend: moto's SageMaker backend.
    :param endpoint: moto's endpoint.
    :param state: the endpoint's serving state (what each variant answered since the split changed).
    :param target: the request's ``TargetVariant``, if any.
    :raises RuntimeValidationError: when no serving variant has the ``target`` name.
    """
    entries: list[tuple[str, dict[str, Any], float]] = []
    for name, share in guardrails.traffic(backend, endpoint):
        config = backend.endpoint_configs.get(name)
        if share > 0 and config is not None:
            entries += [(name, variant, share * weight) for variant, weight in _weights(config)]
    if target is not None:
        for name, variant, _ in reversed(entries):
            if variant.get("VariantName") == target:
                return name, variant
        raise RuntimeValidationError(
            f"Variant {target} not found in endpoint {endpoint.endpoint_name} of account {backend.account_id}."
        )
    if not entries:
        raise RuntimeValidationError(f"Endpoint {endpoint.endpoint_name} has no production variant to serve.")
    with _LOCK:
        split = tuple((name, str(variant.get("VariantName")), share) for name, variant, share in entries)
        if split != state.split:
            state.split, state.served = split, [0] * len(split)
        total = sum(state.served) + 1
        index = max(range(len(entries)), key=lambda i: (entries[i][2] * total - state.served[i], -i))
        state.served[index] += 1
    return entries[index][0], entries[index][1]


def _facts(backend: Any, state: _EndpointState, model_name: str) -> ModelFacts:
    # Models are immutable: a model's facts hold while the same model object stands under its name.
    model = backend._models.get(model_name)
    cached = state.facts.get(model_name)
    if cached is not None and cached[0] is model:
        return cached[1]
    facts = model_facts(backend, model_name)
    state.facts[model_name] = (model, facts)
    return facts


def _default_accept(backend: Any, model_name: str) -> str:
    """The Accept a model answers in when the request names none: its last container's
    ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` (the inverse label transform's), else ``text/csv``."""
    model: Any = backend._models.get(model_name)
    containers = list(getattr(model, "containers", None) or []) or [getattr(model, "primary_container", None)]
    environment = (containers[-1] or {}).get("Environment") or {} if containers else {}
    return _base_type(environment.get(DEFAULT_ACCEPT_ENV)) or DEFAULT_ACCEPT


def _base_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def records(body: bytes, content_type: str, facts: ModelFacts) -> list[str]:
    """The request's rows as CSV records (the text the candidate scores).

    CSV: one record per line. JSON Lines: one JSON array of values, ``{"features": [...]}`` or an
    object keyed by column name per line, each written as the CSV record of its values.

    :param body: the request body.
    :param content_type: its base content type.
    :param facts: the model's facts (column order for objects keyed by column name).
    :raises RowError: for a JSON line that is not one of those forms.
    """
    text = body.decode("utf-8", errors="replace")
    lines = [line.rstrip("\r") for line in text.split("\n") if line.strip()]
    if content_type in CSV_TYPES:
        return lines
    rows = []
    for number, line in enumerate(lines, start=1):
        try:
            value = json.loads(line)
        except ValueError as err:
            raise RowError(f"Line {number} is not JSON ({err}).") from err
        if isinstance(value, dict) and isinstance(value.get("features"), list):
            value = value["features"]
        elif isinstance(value, dict):
            missing = [c for c in facts.features if c not in value]
            if missing:
                raise RowError(
                    f"Line {number} lacks the column(s) {missing}; the model expects {facts.features}."
                )
            value = [value[c] for c in facts.features]
        if not isinstance(value, list):
            raise RowError(f"Line {number} is not a JSON array, a features object or an object of columns.")
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(["" if v is None else v for v in value])
        rows.append(buffer.getvalue())
    return rows


def invoke(
    backend: Any,
    endpoint_name: str,
    body: bytes,
    content_type: str | None,
    accept: str | None,
    target_variant: str | None = None,
    inference_id: str | None = None,
) -> Invocation:
    """Serve one InvokeEndpoint request.

    :param backend: moto's SageMaker backend of the request's account and region.
    :param endpoint_name: the endpoint.
    :param body: the request body.
    :param content_type: its ``ContentType`` (``text/csv`` when not given).
    :param accept: the ``Accept`` content type (``text/csv`` when not given).
    :param target_variant: the ``TargetVariant``, if any.
    :param inference_id: the ``InferenceId``, recorded in captured data.
    :raises RuntimeValidationError: when the endpoint does not exist or does not serve.
    :raises ModelError: when the model answers an error (rows that do not match its columns, a
        content type it does not read, an injected failure).
    """
    AutopilotBackend(backend).refresh_jobs()
    AutopilotBackend(backend).refresh_endpoints()
    endpoint: Any = backend.endpoints.get(endpoint_name)
    if endpoint is None or endpoint.endpoint_status not in SERVING_STATUSES:
        # SageMaker's words for an endpoint that does not exist; an endpoint still Creating (or
        # Failed) answers the same way (unverified for those states).
        raise RuntimeValidationError(f"Endpoint {endpoint_name} of account {backend.account_id} not found.")
    with _LOCK:
        state = _state(backend, endpoint_name)
    config_name, variant = choose_variant(backend, endpoint, state, target_variant)
    model_name = str(variant.get("ModelName"))
    in_type = _base_type(content_type) or DEFAULT_ACCEPT
    out_type = _base_type(accept) or _default_accept(backend, model_name)
    try:
        answer = _answer(backend, state, model_name, body, in_type, out_type)
    except _ContainerError as err:
        raise model_error(backend, endpoint_name, err.status, err.message) from None
    invocation = Invocation(answer, out_type, str(variant.get("VariantName")), config_name)
    _capture(backend, endpoint, config_name, variant, body, content_type or in_type, invocation, inference_id)
    return invocation


class _ContainerError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _answer(
    backend: Any, state: _EndpointState, model_name: str, body: bytes, in_type: str, out_type: str
) -> bytes:
    """The container's answer body, or :class:`_ContainerError` with its status and message."""
    if in_type not in CSV_TYPES + JSON_LINES_TYPES:
        raise _ContainerError(
            415,
            f"Content type {in_type} is not supported; the model reads text/csv or application/jsonlines.",
        )
    if out_type not in CSV_TYPES + JSON_LINES_TYPES + JSON_TYPES:
        raise _ContainerError(
            406,
            f"Accept type {out_type} is not supported; the model writes text/csv, application/jsonlines "
            "or application/json.",
        )
    try:
        facts = _facts(backend, state, model_name)
    except ServiceException as err:
        raise _ContainerError(500, str(getattr(err, "message", err))) from err
    try:
        rows = records(body, in_type, facts)
    except RowError as err:
        raise _ContainerError(400, str(err)) from err
    if not rows:
        raise _ContainerError(400, "The request has no rows to score.")
    lines = []
    for number, row in enumerate(rows, start=1):
        failure = controls.invocation_failure(model_name, row)
        if failure is not None:
            raise _ContainerError(failure.status, failure.message)
        try:
            _, prediction = score_record(facts, row)
        except RowError as err:
            raise _ContainerError(400, f"Row {number} {err}") from err
        lines.append(format_prediction(facts, prediction, out_type))
    if out_type in JSON_TYPES:
        return json.dumps({"predictions": [json.loads(line) for line in lines]}).encode()
    return ("\n".join(lines) + "\n").encode()


# ------------------------------------------------------------------------------- data capture


def capture_summary(backend: Any, endpoint: Any) -> dict[str, Any] | None:
    """DescribeEndpoint's ``DataCaptureConfig`` (a DataCaptureConfigSummary) from the config the
    endpoint serves, or ``None`` when it captures nothing.

    :param backend: moto's SageMaker backend.
    :param endpoint: moto's endpoint.
    """
    config = backend.endpoint_configs.get(endpoint.endpoint_config_name)
    capture: dict[str, Any] = dict(getattr(config, "data_capture_config", None) or {})
    if not capture:
        return None
    enabled = capture.get("EnableCapture") is not False
    summary = {
        "EnableCapture": enabled,
        "CaptureStatus": "Started" if enabled else "Stopped",
        "CurrentSamplingPercentage": int(capture.get("InitialSamplingPercentage", 0) or 0),
        "DestinationS3Uri": capture.get("DestinationS3Uri"),
    }
    if capture.get("KmsKeyId"):
        summary["KmsKeyId"] = capture["KmsKeyId"]
    return summary


def _encoding(content_type: str, header: dict[str, Any]) -> str:
    base = _base_type(content_type)
    if base in [t.lower() for t in header.get("CsvContentTypes") or ["text/csv"]]:
        return "CSV"
    if base in [t.lower() for t in header.get("JsonContentTypes") or ["application/json", *JSON_LINES_TYPES]]:
        return "JSON"
    return "BASE64"


def _captured(mode: str, content_type: str, payload: bytes, header: dict[str, Any]) -> dict[str, str]:
    encoding = _encoding(content_type, header)
    text = base64.b64encode(payload).decode() if encoding == "BASE64" else payload.decode("utf-8", "replace")
    return {"observedContentType": content_type, "mode": mode, "data": text, "encoding": encoding}


def _capture(
    backend: Any,
    endpoint: Any,
    config_name: str,
    variant: dict[str, Any],
    body: bytes,
    content_type: str,
    invocation: Invocation,
    inference_id: str | None,
) -> None:
    """Write the request (and answer) to S3 in SageMaker's capture layout when the serving config
    captures data and this request falls in its sampling percentage (deterministically: every
    request of 100 %, the n-th of each 1/p for p %)."""
    config = backend.endpoint_configs.get(config_name)
    capture: dict[str, Any] = dict(getattr(config, "data_capture_config", None) or {})
    if not capture or capture.get("EnableCapture") is False or not capture.get("DestinationS3Uri"):
        return
    percent = float(capture.get("InitialSamplingPercentage", 0) or 0)
    with _LOCK:
        state = _state(backend, endpoint.endpoint_name)
        m = state.captured
        state.captured += 1
    if math.floor((m + 1) * percent / 100) <= math.floor(m * percent / 100):
        return
    modes = {o.get("CaptureMode") for o in capture.get("CaptureOptions") or []} or {"InputAndOutput"}
    header = capture.get("CaptureContentTypeHeader") or {}
    captured: dict[str, Any] = {}
    if modes & {"Input", "InputAndOutput"}:
        captured["endpointInput"] = _captured("INPUT", content_type, body, header)
    if modes & {"Output", "InputAndOutput"}:
        captured["endpointOutput"] = _captured("OUTPUT", invocation.content_type, invocation.body, header)
    if not captured:
        return
    now = settings.to_datetime(settings.now())
    metadata = {
        "eventId": str(uuid.uuid4()),
        "inferenceTime": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    if inference_id:
        metadata["inferenceId"] = inference_id
    record = {"captureData": captured, "eventMetadata": metadata, "eventVersion": "0"}
    variant_name = variant.get("VariantName")
    key = (
        f"{str(capture['DestinationS3Uri']).rstrip('/')}/{endpoint.endpoint_name}/{variant_name}/"
        f"{now:%Y/%m/%d/%H}/{now:%M-%S}-{now.microsecond // 1000:03d}-{metadata['eventId']}.jsonl"
    )
    data.put_objects(
        {key: (json.dumps(record) + "\n").encode()},
        backend.account_id,
        backend.region_name,
        kms_key_id=capture.get("KmsKeyId") or None,
    )

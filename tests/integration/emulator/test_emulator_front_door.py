"""The emulator's front door over raw HTTP (no botocore validation in front): malformed requests get
SageMaker's 400 answers naming the member, never a 5xx, and every answer carries x-amzn-RequestId."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_autopilot.core.validation import JOB_NAME_PATTERN
from airflow_autopilot.emulator import settings

# The emulator checks the SigV4 header's shape, not its signature.
AUTH = (
    "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sagemaker/aws4_request, "
    "SignedHeaders=host, Signature=0"
)
#: A value of the wrong JSON type for each shape type of botocore's model.
WRONG_VALUE = {
    "string": 12,
    "blob": 12,
    "integer": "x",
    "long": "x",
    "float": "x",
    "double": "x",
    "boolean": "yes",
    "timestamp": "not a time",
    "structure": "s",
    "list": "s",
    "map": "s",
}
#: The generated test's operations: every one the emulator adds or changes, and moto's others that
#: the provider calls (bounded: about 300 requests).
GENERATED_OPERATIONS = (
    "CreateAutoMLJob",
    "CreateAutoMLJobV2",
    "DescribeAutoMLJob",
    "DescribeAutoMLJobV2",
    "ListAutoMLJobs",
    "ListCandidatesForAutoMLJob",
    "StopAutoMLJob",
    "CreateModel",
    "CreateEndpointConfig",
    "CreateEndpoint",
    "UpdateEndpoint",
    "DescribeEndpoint",
    "CreateModelPackage",
    "CreateModelPackageGroup",
    "ListModelPackages",
    "CreateTransformJob",
    "DescribeTransformJob",
)


def call(
    server: Any, operation: str, body: bytes | dict[str, Any]
) -> tuple[int, dict[str, str], dict[str, Any]]:
    """POST one SageMaker request as raw JSON; (status, lower-cased headers, decoded body)."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(
        server.endpoint_url,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"SageMaker.{operation}",
            "Authorization": AUTH,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, headers, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        status, headers, raw = err.code, err.headers, err.read()
    lowered = {key.lower(): value for key, value in headers.items()}
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = {"unparsed": raw.decode(errors="replace")}
    return status, lowered, decoded


def message(body: dict[str, Any]) -> str:
    return str(body.get("message", body.get("Message", "")))


@pytest.mark.parametrize(
    ("operation", "body", "member"),
    [
        ("ListAutoMLJobs", {"MaxResults": "x"}, "maxResults"),
        ("ListAutoMLJobs", {"CreationTimeAfter": "yesterday"}, "creationTimeAfter"),
        ("ListCandidatesForAutoMLJob", {"AutoMLJobName": "job", "MaxResults": "x"}, "maxResults"),
        (
            "CreateAutoMLJob",
            {"AutoMLJobName": "job", "AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": "five"}}},
            "autoMLJobConfig.completionCriteria.maxCandidates",
        ),
        (
            "CreateAutoMLJob",
            {"AutoMLJobName": "job", "OutputDataConfig": "s3://bucket/out"},
            "outputDataConfig",
        ),
        ("DescribeAutoMLJobV2", {"AutoMLJobName": ["job"]}, "autoMLJobName"),
    ],
)
def test_a_wrongly_typed_member_is_a_400_naming_it(autopilot_emulator_server, operation, body, member):
    status, headers, answer = call(autopilot_emulator_server, operation, body)
    assert status == 400, answer
    assert answer["__type"] in ("ValidationException", "SerializationException")
    assert f"'{member}'" in message(answer)
    assert headers.get("x-amzn-requestid")
    assert headers["content-type"].startswith("application/x-amz-json-1.1")


@pytest.mark.parametrize(
    "operation", ["DescribeAutoMLJob", "DescribeAutoMLJobV2", "ListCandidatesForAutoMLJob", "StopAutoMLJob"]
)
@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("bad_name!", f"Member must satisfy regular expression pattern: {JOB_NAME_PATTERN.pattern}"),
        ("-leading-hyphen", "regular expression pattern"),
        ("x" * 33, "Member must have length between 1 and 32"),
        ("", "Member must have length between 1 and 32"),
    ],
)
def test_a_name_that_breaks_the_pattern_is_a_validation_error_not_not_found(
    autopilot_emulator_server, operation, name, rule
):
    status, headers, answer = call(autopilot_emulator_server, operation, {"AutoMLJobName": name})
    assert status == 400
    assert answer["__type"] == "ValidationException"
    assert "at 'autoMLJobName' failed to satisfy constraint" in message(answer)
    assert rule in message(answer)
    assert headers.get("x-amzn-requestid")


def test_a_well_formed_unknown_name_is_still_not_found(autopilot_emulator_server):
    status, headers, answer = call(
        autopilot_emulator_server, "DescribeAutoMLJob", {"AutoMLJobName": "no-such-job"}
    )
    assert (status, answer["__type"]) == (400, "ResourceNotFound")
    assert headers.get("x-amzn-requestid")


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("DescribeAutoMLJob", {}),  # a required member missing: the emulator's own shape rejection
        ("CreateAutoMLJob", {"AutoMLJobName": "job"}),
        ("ListAutoMLJobs", b'{"MaxResults": '),  # not JSON
        ("ListAutoMLJobs", {}),  # a success
    ],
)
def test_every_answer_carries_a_request_id(autopilot_emulator_server, operation, body):
    status, headers, _ = call(autopilot_emulator_server, operation, body)
    assert status in (200, 400)
    assert headers.get("x-amzn-requestid")


def test_control_routes_carry_a_request_id_too(autopilot_emulator_server):
    url = f"{autopilot_emulator_server.endpoint_url}/moto-api/autopilot-emulator/request-counts"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.headers.get("x-amzn-RequestId")


def test_botocore_reads_the_request_id_of_a_shape_rejection_in_process(autopilot_emulator):
    """In-process (mock_aws) answers go through the same front door: botocore sees the request id."""
    autopilot_emulator.advance(86_400)  # a day ahead of the wall clock
    raw = autopilot_emulator.client(
        "sagemaker", config=Config(parameter_validation=False, retries={"max_attempts": 0})
    )
    with pytest.raises(ClientError) as raised:
        raw.describe_auto_ml_job()
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert raised.value.response["ResponseMetadata"]["RequestId"]
    # Dated on the emulator clock, as every answer is.
    date = raised.value.response["ResponseMetadata"]["HTTPHeaders"]["date"]
    assert abs(parsedate_to_datetime(date).timestamp() - settings.now()) < 5
    with pytest.raises(ClientError) as raised:  # moto's parser raised a ValueError into the client
        raw.list_auto_ml_jobs(MaxResults="x")
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    assert "'maxResults'" in raised.value.response["Error"]["Message"]
    assert raised.value.response["ResponseMetadata"]["RequestId"]


#: A value of the right JSON type for each shape type (structures get their required members).
RIGHT_VALUE = {"string": "a", "blob": "YQ==", "integer": 1, "long": 1, "float": 1.0, "double": 1.0}
RIGHT_VALUE.update({"boolean": True, "timestamp": 0, "list": [], "map": {}})


def _minimal(shape: Any) -> Any:
    """A right-typed value of ``shape`` with only its required members (so that the one wrong member
    is the only problem reported)."""
    if shape.type_name == "structure":
        return {name: _minimal(shape.members[name]) for name in shape.required_members}
    return RIGHT_VALUE[shape.type_name]


def _wrongly_typed_requests() -> list[tuple[str, str, dict[str, Any]]]:
    """(operation, member path, body) for each top-level member and each member one level down of
    :data:`GENERATED_OPERATIONS`, that member given a value of the wrong type."""
    model = botocore.session.get_session().get_service_model("sagemaker")
    cases = []
    for operation in GENERATED_OPERATIONS:
        shape = model.operation_model(operation).input_shape
        for name, member in shape.members.items():
            cases.append((operation, name, {**_minimal(shape), name: WRONG_VALUE[member.type_name]}))
            if member.type_name == "structure":
                for inner, inner_member in member.members.items():
                    value = {**_minimal(member), inner: WRONG_VALUE[inner_member.type_name]}
                    cases.append((operation, f"{name}.{inner}", {**_minimal(shape), name: value}))
    return cases


def test_no_wrongly_typed_member_of_the_model_gets_a_5xx(autopilot_emulator_server):
    cases = _wrongly_typed_requests()
    assert 150 < len(cases) < 600  # bounded, and not silently empty
    wrong = []
    for operation, path, body in cases:
        status, headers, answer = call(autopilot_emulator_server, operation, body)
        camel = ".".join(part[:1].lower() + part[1:] for part in path.split("."))
        if (
            status != 400
            or answer.get("__type") not in ("ValidationException", "SerializationException")
            or camel not in message(answer)
            or not headers.get("x-amzn-requestid")
        ):
            wrong.append((operation, path, status, answer))
    assert not wrong, wrong[:5]

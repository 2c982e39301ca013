"""core/redaction: URL userinfo and credential query parameters masked in text, exceptions and logs."""

from __future__ import annotations

import logging
import traceback

import pytest
from botocore.exceptions import EndpointConnectionError, SSLError

from airflow_autopilot.core.redaction import (
    MASK,
    RedactingFilter,
    describe_error,
    redact,
    redact_value,
    redacting_logger,
    scrub,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            'Could not connect to the endpoint URL: "http://user:s3cret@127.0.0.1:9/"',
            f'Could not connect to the endpoint URL: "http://user:{MASK}@127.0.0.1:9/"',
        ),
        ("https://tok3n@gateway.example/x", f"https://{MASK}@gateway.example/x"),
        ("socks5h://u:p%40ss@proxy:1080", f"socks5h://u:{MASK}@proxy:1080"),
        ("https://u:p@ss@host:1/path", f"https://u:{MASK}@host:1/path"),  # an unescaped '@' in it
        (
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F1"
            "&X-Amz-Date=20260101T000000Z&X-Amz-Security-Token=FQoGZX&X-Amz-Signature=abc123",
            "https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=***"
            "&X-Amz-Date=20260101T000000Z&X-Amz-Security-Token=***&X-Amz-Signature=***",
        ),
        (
            "https://h/?AWSAccessKeyId=AKIA&Signature=zz&Expires=1",
            "https://h/?AWSAccessKeyId=***&Signature=***&Expires=1",
        ),
        ("https://h/?x-amz-signature=abc", "https://h/?x-amz-signature=***"),  # any letter case
        ("SignedHeaders=host, Signature=0abc", "SignedHeaders=host, Signature=***"),
        ("https://h/?sig=abc&token=", "https://h/?sig=***&token="),
    ],
)
def test_redact_masks_credentials(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:5000/ refused",
        "mail admin@example.com",
        "s3://bucket/key?versionId=1",
        "Autopilot job 'churn-1' is InProgress/Starting",
        "X-Amz-Date=20260101T000000Z",
        "MySignature=1",  # a parameter name that only ends like one
    ],
)
def test_redact_leaves_text_without_credentials_alone(text):
    assert redact(text) == text


def test_redact_value_walks_containers():
    value = {"a": ["http://u:pw@h/", ("http://u:pw@h/", 1)], "b": 2}
    assert redact_value(value) == {"a": [f"http://u:{MASK}@h/", (f"http://u:{MASK}@h/", 1)], "b": 2}


def test_describe_error_names_the_type_and_redacts():
    error = EndpointConnectionError(endpoint_url="http://u:pw@127.0.0.1:9/")
    assert (
        describe_error(error)
        == f'EndpointConnectionError: Could not connect to the endpoint URL: "http://u:{MASK}@127.0.0.1:9/"'
    )


#: Built at run time: a traceback shows the source lines, which must not hold it either.
SECRET = "-".join(["pw", "41x"])


def test_scrub_redacts_an_exception_and_its_chain_in_place():
    try:
        try:
            raise ValueError(f"inner http://u:{SECRET}@h:1/")
        except ValueError as inner:
            raise SSLError(endpoint_url=f"https://u:{SECRET}@h:1/", error=inner) from inner
    except SSLError as outer:
        error = outer
    assert scrub(error) is error
    shown = "".join(traceback.format_exception(error)) + repr(error) + str(error.kwargs)
    assert SECRET not in shown
    assert f"https://u:{MASK}@h:1/" in str(error) and error.kwargs["endpoint_url"] == f"https://u:{MASK}@h:1/"


def test_scrub_survives_exceptions_it_cannot_change():
    class Stubborn(Exception):
        @property
        def message(self) -> str:
            return "http://u:pw@h/"

    error = Stubborn("http://u:pw@h/")
    assert str(scrub(error)) == f"http://u:{MASK}@h/"


def test_the_filter_redacts_messages_arguments_and_tracebacks(caplog):
    logger = redacting_logger("airflow_autopilot.tests.redaction")
    assert redacting_logger("airflow_autopilot.tests.redaction").filters.count(logger.filters[0]) == 1
    assert isinstance(logger.filters[0], RedactingFilter)
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.warning("listing failed (%s)", f"http://u:{SECRET}@h/")
        try:
            raise RuntimeError(f"http://u:{SECRET}@h/")
        except RuntimeError:
            logger.exception("cycle failed")
    assert SECRET not in caplog.text
    assert f"http://u:{MASK}@h/" in caplog.text

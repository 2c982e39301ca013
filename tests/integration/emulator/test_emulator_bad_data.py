"""
Bad input data ends an emulated job Failed with a FailureReason, as SageMaker does, never an HTTP 500
or a job stuck in AnalyzingData; the whole input is read, streamed in bounded memory; the settings
the emulator is given over HTTP or in tags must be finite.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import tracemalloc
import urllib.error
import urllib.request
import zlib
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from airflow_autopilot.emulator import data, settings

ROLE = "arn:aws:iam::123456789012:role/AutopilotRole"
BUCKET = "bad-data"
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})
BINARY_CSV = b"age,label\n" + b"".join(f"{i},{'yes' if i % 3 else 'no'}\n".encode() for i in range(30))


@pytest.fixture
def emu(autopilot_emulator: Any) -> Any:
    autopilot_emulator.configure(stage_seconds=1)
    autopilot_emulator.client("s3").create_bucket(Bucket=BUCKET)
    return autopilot_emulator


def run_job(emu: Any, name: str, objects: dict[str, bytes], compression: str | None = None) -> dict[str, Any]:
    """Upload ``objects`` under ``name/``, create a job over them, and describe it once it has ended."""
    s3 = emu.client("s3")
    for key, body in objects.items():
        s3.put_object(Bucket=BUCKET, Key=f"{name}/{key}", Body=body)
    channel: dict[str, Any] = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/{name}/"}},
        "TargetAttributeName": "label",
    }
    if compression:
        channel["CompressionType"] = compression
    sm = emu.client("sagemaker", config=NO_RETRY)
    sm.create_auto_ml_job(
        AutoMLJobName=name,
        InputDataConfig=[channel],
        OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
        RoleArn=ROLE,
        AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 1}},
    )
    for _ in range(30):
        described = sm.describe_auto_ml_job(AutoMLJobName=name)
        if described["AutoMLJobStatus"] in ("Completed", "Failed", "Stopped"):
            return described
        emu.advance(1.0)
    raise AssertionError(f"{name} is still {described['AutoMLJobSecondaryStatus']}")


def assert_failed(described: dict[str, Any], reason: str) -> None:
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == ("Failed", "Failed")
    assert described["FailureReason"].startswith("ClientError: "), described["FailureReason"]
    assert reason in described["FailureReason"]


@pytest.mark.parametrize(
    ("body", "compression", "reason"),
    [
        (b"text,label\n" + b"x" * 200_000 + b",yes\n1,no\n", None, "field larger than field limit"),
        (b'age,label\n1,"yes\n2,no\n3,yes\n', None, "unexpected end of data"),
        (b'age,label\n1,"yes"x\n2,no\n', None, "as CSV (line 2)"),
        (gzip.compress(BINARY_CSV), None, "Gzip-compressed, but the channel's CompressionType is None"),
        (BINARY_CSV, "Gzip", "not valid Gzip"),
        (gzip.compress(BINARY_CSV)[:-20], "Gzip", "ends early"),
        (gzip.compress(BINARY_CSV) + b"trailing", "Gzip", "Unexpected bytes"),
        (b"age,label\n" + b"1" * (4 * 1024 * 1024), None, "longer than"),  # over MAX_LINE_CHARS
    ],
    ids=[
        "field-over-128KiB",
        "unbalanced-quote",
        "text-after-quote",
        "gzip-without-compression-type",
        "plain-data-with-gzip",
        "truncated-gzip",
        "gzip-with-trailing-bytes",
        "endless-line",
    ],
)
def test_bad_data_fails_the_job_with_a_reason(emu, body, compression, reason):
    described = run_job(emu, "bad", {"data.csv": body}, compression)
    assert_failed(described, reason)
    # Described again: still Failed, no HTTP 500 on later requests either.
    sm = emu.client("sagemaker", config=NO_RETRY)
    assert sm.describe_auto_ml_job(AutoMLJobName="bad")["AutoMLJobStatus"] == "Failed"


def test_an_emulator_error_while_analysing_fails_the_job_instead_of_a_500(emu, monkeypatch):
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(data, "analyze_input", broken)
    described = run_job(emu, "broken", {"data.csv": BINARY_CSV})
    assert (described["AutoMLJobStatus"], described["AutoMLJobSecondaryStatus"]) == ("Failed", "Failed")
    assert "RuntimeError: boom" in described["FailureReason"]


def fixed_width_binary_csv(size: int, header: bytes) -> bytes:
    """Rows ``0000001,yes`` / ``0000002,not`` (12 bytes each) after ``header``, at least ``size`` bytes."""
    rows = (size - len(header)) // 12 + 2
    return header + b"".join(b"%07d,%s\n" % (i, b"yes" if i % 2 else b"not") for i in range(rows))


def test_the_whole_object_is_read_a_label_at_8_MiB_stays_whole(emu):
    # The old analysis cut the object at 8 MiB, inside a label here ("ye"): a third value, Multiclass.
    cut = 8 * 1024 * 1024
    header = b"idx,label\n"
    body = fixed_width_binary_csv(cut + 1000, header)
    assert body[cut - 2 : cut] in (b"ye", b"no")  # the boundary splits a label
    described = run_job(emu, "big", {"data.csv": body})
    assert described["AutoMLJobStatus"] == "Completed", described.get("FailureReason")
    assert described["ResolvedAttributes"]["ProblemType"] == "BinaryClassification"


def test_every_object_under_the_prefix_is_read(emu):
    part1 = b"age,label\n1,yes\n2,no\n"
    part2 = b"age,label\n3,maybe\n"
    described = run_job(emu, "parts", {"part-1.csv": part1, "part-2.csv": part2})
    assert described["ResolvedAttributes"]["ProblemType"] == "MulticlassClassification"
    missing = run_job(emu, "parts-bad", {"part-1.csv": part1, "part-2.csv": b"age,other\n1,2\n"})
    assert_failed(missing, "target column 'label' in the header of the input data (parts-bad/part-2.csv)")


@pytest.mark.slow
def test_gzip_over_8_MiB_compressed_is_read_in_full(emu):
    # base64 of random bytes barely compresses: > 8 MiB of gzip.
    rows = [
        b"%s,%s\n" % (base64.b64encode(os.urandom(48)), b"yes" if i % 2 else b"no") for i in range(180_000)
    ]
    body = gzip.compress(b"blob,label\n" + b"".join(rows), compresslevel=1)
    assert len(body) > 8 * 1024 * 1024
    described = run_job(emu, "big-gzip", {"data.csv.gz": body}, "Gzip")
    assert described["AutoMLJobStatus"] == "Completed", described.get("FailureReason")
    assert described["ResolvedAttributes"]["ProblemType"] == "BinaryClassification"


def gzip_bomb(piece: bytes, pieces: int, head: bytes = b"") -> bytes:
    """Gzip of ``head + piece * pieces``, compressed as a stream (the test never holds the plain text)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    out = [compressor.compress(head)] + [compressor.compress(piece) for _ in range(pieces)]
    out.append(compressor.flush())
    return b"".join(out)


def test_a_gzip_bomb_is_read_in_bounded_memory(emu):
    bomb = gzip_bomb(b"0" * (1024 * 1024), 128)  # 128 MiB of zeros, about 128 KiB compressed
    assert len(bomb) < 256 * 1024
    tracemalloc.start()
    try:
        described = run_job(emu, "bomb", {"data.csv.gz": bomb}, "Gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_failed(described, "longer than")
    assert peak < 64 * 1024 * 1024, f"analysing the bomb took {peak / 2**20:.0f} MiB"


@pytest.mark.slow
def test_a_gzip_bomb_of_rows_stops_at_the_input_limit(emu):
    pieces = data.MAX_INPUT_BYTES // (1024 * 1024) + 1
    bomb = gzip_bomb(b"0,1\n" * (256 * 1024), pieces, head=b"a,label\n")  # 1 MiB more rows than read
    described = run_job(emu, "bomb-rows", {"data.csv.gz": bomb}, "Gzip")
    assert_failed(described, "larger than the emulator reads")


# --- settings ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0, 0, True, "2"])
def test_configure_rejects_stage_seconds_that_are_not_positive_finite_numbers(value):
    before = settings.snapshot()
    with pytest.raises(ValueError, match="stage_seconds"):
        settings.configure(stage_seconds=value, max_candidates=3)
    assert settings.snapshot() == before  # nothing applied


@pytest.mark.parametrize("value", [0, 2.5, float("inf"), "3", True])
def test_configure_rejects_a_max_candidates_that_is_not_a_positive_integer(value):
    with pytest.raises(ValueError, match="max_candidates"):
        settings.configure(max_candidates=value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -1.0])
def test_the_clock_only_moves_forward_by_finite_amounts(value):
    before = settings.now()
    with pytest.raises(ValueError):
        settings.advance_time(value)
    assert abs(settings.now() - before) < 5


@pytest.mark.parametrize("stage", ["inf", "nan", "-1", "x"])
def test_a_stage_seconds_tag_must_be_positive_and_finite(emu, stage):
    sm = emu.client("sagemaker", config=NO_RETRY)
    with pytest.raises(ClientError, match="stage-seconds"):
        sm.create_auto_ml_job(
            AutoMLJobName="tagged",
            InputDataConfig=[
                {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/x/"}},
                    "TargetAttributeName": "label",
                }
            ],
            OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
            RoleArn=ROLE,
            Tags=[{"Key": "autopilot-emulator:stage-seconds", "Value": stage}],
        )


def _post(server: Any, route: str, body: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        f"{server.endpoint_url}/moto-api/autopilot-emulator/{route}",
        data=body,
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.parametrize(
    "body",
    [b'{"stage_seconds": NaN}', b'{"stage_seconds": Infinity}', b'{"max_candidates": 1e999}'],
)
def test_http_configure_rejects_nan_and_infinity(autopilot_emulator_server, body):
    before = settings.snapshot()
    status, answer = _post(autopilot_emulator_server, "configure", body)
    assert status == 400 and "error" in answer
    assert settings.snapshot() == before


@pytest.mark.parametrize("body", [b'{"throttle": 1e999}', b'{"throttle": -1}', b'{"throttle": 1.5}'])
def test_http_faults_reject_counts_that_are_not_non_negative_integers(autopilot_emulator_server, body):
    status, answer = _post(autopilot_emulator_server, "faults", body)
    assert status == 400 and "throttle" in answer["error"]
    assert autopilot_emulator_server.request_counts() == {}

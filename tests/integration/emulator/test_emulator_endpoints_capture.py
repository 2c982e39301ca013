"""Data capture on the emulator: InvokeEndpoint requests and answers written to S3 as JSON Lines in
SageMaker's capture layout, sampled deterministically; serverless endpoints served."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.conftest import DATA_BUCKET
from tests.integration.emulator.test_emulator_endpoints_invoke import ROWS, deploy, invoke

CAPTURE = f"s3://{DATA_BUCKET}/capture"


def captured(emu: Any) -> list[tuple[str, dict[str, Any]]]:
    s3 = emu.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=DATA_BUCKET, Prefix="capture/").get("Contents", [])]
    return [
        (key, json.loads(s3.get_object(Bucket=DATA_BUCKET, Key=key)["Body"].read().decode()))
        for key in sorted(keys)
    ]


def test_every_request_and_answer_is_captured_in_sagemakers_layout(
    autopilot_emulator: Any, make_job: Any
) -> None:
    emu = autopilot_emulator
    emu.configure(stage_seconds=0.01)
    make_job("invoke-job")
    emu.advance(60)
    deploy(
        emu,
        "cap-ep",
        ServerlessConfig={"MemorySizeInMB": 2048, "MaxConcurrency": 5},
    )
    sm = emu.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName="cap-ep-config")["ProductionVariants"][0]
    sm.create_endpoint_config(
        EndpointConfigName="cap-config",
        ProductionVariants=[config],
        DataCaptureConfig={
            "EnableCapture": True,
            "InitialSamplingPercentage": 100,
            "DestinationS3Uri": CAPTURE,
            "KmsKeyId": "alias/capture",
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"JsonContentTypes": ["application/jsonlines"]},
        },
    )
    sm.create_endpoint(EndpointName="cap-live", EndpointConfigName="cap-config")
    summary = sm.describe_endpoint(EndpointName="cap-live")["DataCaptureConfig"]
    assert summary == {
        "EnableCapture": True,
        "CaptureStatus": "Started",
        "CurrentSamplingPercentage": 100,
        "DestinationS3Uri": CAPTURE,
        "KmsKeyId": "alias/capture",
    }
    text, answer = invoke(emu, "cap-live", "\n".join(ROWS[:2]), ContentType="text/csv", InferenceId="req-1")
    invoke(
        emu,
        "cap-live",
        json.dumps([25, 2000]),
        ContentType="application/jsonlines",
        Accept="application/jsonlines",
    )
    invoke(emu, "cap-live", ROWS[0], ContentType="text/csv;charset=utf-8", Accept="application/json")
    (first_key, first), (_, second), (_, third) = captured(emu)
    assert re.fullmatch(
        r"capture/cap-live/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f-]{36}\.jsonl",
        first_key,
    )
    assert first["eventVersion"] == "0" and first["eventMetadata"]["inferenceId"] == "req-1"
    head = emu.client("s3").head_object(Bucket=DATA_BUCKET, Key=first_key)
    assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", "alias/capture")
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", first["eventMetadata"]["inferenceTime"]
    )
    assert first["captureData"] == {
        "endpointInput": {
            "observedContentType": "text/csv",
            "mode": "INPUT",
            "data": "\n".join(ROWS[:2]),
            "encoding": "CSV",
        },
        "endpointOutput": {
            "observedContentType": "text/csv",
            "mode": "OUTPUT",
            "data": text,
            "encoding": "CSV",
        },
    }
    assert second["captureData"]["endpointInput"]["encoding"] == "JSON"
    assert second["captureData"]["endpointOutput"]["encoding"] == "JSON"
    # application/json is not among this config's JSON types: its answer is captured as Base64.
    output = third["captureData"]["endpointOutput"]
    assert output["encoding"] == "BASE64" and json.loads(base64.b64decode(output["data"]))["predictions"]
    assert third["captureData"]["endpointInput"]["observedContentType"] == "text/csv;charset=utf-8"
    assert answer["InvokedProductionVariant"] == "AllTraffic"


def test_sampling_and_capture_options_and_a_config_without_capture(
    autopilot_emulator: Any, make_job: Any
) -> None:
    emu = autopilot_emulator
    emu.configure(stage_seconds=0.01)
    make_job("invoke-job")
    emu.advance(60)
    deploy(emu, "plain-ep")
    sm = emu.client("sagemaker")
    variant = sm.describe_endpoint_config(EndpointConfigName="plain-ep-config")["ProductionVariants"][0]
    sm.create_endpoint_config(
        EndpointConfigName="half-config",
        ProductionVariants=[variant],
        DataCaptureConfig={
            "InitialSamplingPercentage": 50,
            "DestinationS3Uri": CAPTURE + "/",
            "CaptureOptions": [{"CaptureMode": "Output"}],
        },
    )
    sm.create_endpoint(EndpointName="half-ep", EndpointConfigName="half-config")
    for _ in range(4):
        invoke(emu, "plain-ep", ROWS[0], ContentType="text/csv")
        invoke(emu, "half-ep", ROWS[0], ContentType="text/csv")
    records = captured(emu)
    assert len(records) == 2 and all(key.startswith("capture/half-ep/AllTraffic/") for key, _ in records)
    assert all(set(record["captureData"]) == {"endpointOutput"} for _, record in records)
    assert "DataCaptureConfig" not in sm.describe_endpoint(EndpointName="plain-ep")

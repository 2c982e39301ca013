"""InvokeEndpoint on the emulator through boto3's sagemaker-runtime client: the deployed candidate's
predictions (the same as batch transform's), content types, response keys, and runtime errors."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import DATA_BUCKET, ROLE_ARN

ROWS = ["25,2000", "31,4100", "47,1200"]


@pytest.fixture
def emu(autopilot_emulator: Any, make_job: Any) -> Any:
    """The in-process emulator with a finished job whose best candidate is a model."""
    autopilot_emulator.configure(stage_seconds=0.01)
    make_job("invoke-job")
    autopilot_emulator.advance(60)
    return autopilot_emulator


def deploy(
    emu: Any,
    name: str,
    keys: str | None = "predicted_label,probability",
    accept: str | None = None,
    **variant: Any,
) -> dict[str, Any]:
    """A model of the job's best candidate (answering ``keys``, by default in ``accept``) served by
    endpoint ``name``."""
    sm = emu.client("sagemaker")
    best = sm.describe_auto_ml_job(AutoMLJobName="invoke-job")["BestCandidate"]
    containers = [dict(c) for c in best["InferenceContainers"]]
    if keys:
        containers[-1]["Environment"] = {
            **containers[-1].get("Environment", {}),
            "SAGEMAKER_INFERENCE_OUTPUT": keys,
        }
    if accept:
        containers[-1]["Environment"] = {
            **containers[-1].get("Environment", {}),
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": accept,
        }
    sm.create_model(ModelName=f"{name}-model", ExecutionRoleArn=ROLE_ARN, Containers=containers)
    entry = {"VariantName": "AllTraffic", "ModelName": f"{name}-model", "InitialVariantWeight": 1.0}
    entry.update(variant or {"InstanceType": "ml.m5.large", "InitialInstanceCount": 1})
    sm.create_endpoint_config(EndpointConfigName=f"{name}-config", ProductionVariants=[entry])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")
    return best


def invoke(emu: Any, name: str, body: str, **kwargs: Any) -> tuple[str, dict[str, Any]]:
    answer = emu.client("sagemaker-runtime").invoke_endpoint(EndpointName=name, Body=body, **kwargs)
    return answer["Body"].read().decode(), answer


def test_csv_rows_get_the_same_predictions_as_batch_transform(emu: Any) -> None:
    deploy(emu, "same-ep")
    text, answer = invoke(emu, "same-ep", "\n".join(ROWS), ContentType="text/csv")
    assert answer["ContentType"] == "text/csv" and answer["InvokedProductionVariant"] == "AllTraffic"
    online = list(csv.reader(io.StringIO(text)))
    assert len(online) == 3 and all(label in ("yes", "no") and 0.5 <= float(p) <= 1 for label, p in online)
    # The same rows through a batch transform job of the same model.
    s3, sm = emu.client("s3"), emu.client("sagemaker")
    s3.put_object(Bucket=DATA_BUCKET, Key="in/rows.csv", Body="\n".join(ROWS) + "\n")
    sm.create_transform_job(
        TransformJobName="same-batch",
        ModelName="same-ep-model",
        TransformInput={
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA_BUCKET}/in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        TransformOutput={"S3OutputPath": f"s3://{DATA_BUCKET}/out", "Accept": "text/csv"},
        TransformResources={"InstanceType": "ml.m5.large", "InstanceCount": 1},
    )
    emu.advance(1)
    assert sm.describe_transform_job(TransformJobName="same-batch")["TransformJobStatus"] == "Completed"
    batch = s3.get_object(Bucket=DATA_BUCKET, Key="out/rows.csv.out")["Body"].read().decode()
    assert batch == text
    # One row alone gets the answer it got among others.
    assert invoke(emu, "same-ep", ROWS[1], ContentType="text/csv")[0] == text.splitlines()[1] + "\n"


def test_json_lines_in_and_out_and_the_model_response_keys(emu: Any) -> None:
    deploy(emu, "keys-ep", keys="predicted_label,probabilities,labels", accept="application/jsonlines")
    csv_text, _ = invoke(emu, "keys-ep", ROWS[0], ContentType="text/csv", Accept="application/jsonlines")
    expected = json.loads(csv_text)
    assert set(expected) == {"predicted_label", "probabilities", "labels"} and expected["labels"] == [
        "no",
        "yes",
    ]
    # A JSON line as an array, a features object or an object keyed by column: the same record.
    for line in ([25, 2000], {"features": [25, 2000]}, {"income": 2000, "age": 25}):
        text, answer = invoke(
            emu,
            "keys-ep",
            json.dumps(line),
            ContentType="application/jsonlines",
            Accept="application/jsonlines",
        )
        assert json.loads(text) == expected and answer["ContentType"] == "application/jsonlines"
    # Without an Accept, the model's default (SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT).
    text, answer = invoke(emu, "keys-ep", ROWS[0], ContentType="text/csv")
    assert json.loads(text) == expected and answer["ContentType"] == "application/jsonlines"
    text, _ = invoke(emu, "keys-ep", "\n".join(ROWS[:2]), ContentType="text/csv", Accept="application/json")
    assert json.loads(text)["predictions"][0] == expected and len(json.loads(text)["predictions"]) == 2


def test_rows_that_do_not_match_the_model_columns_are_a_model_error(emu: Any) -> None:
    deploy(emu, "bad-rows-ep")
    runtime = emu.client("sagemaker-runtime")
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(
            EndpointName="bad-rows-ep", Body="25,2000\n25,2000,yes", ContentType="text/csv"
        )
    error = raised.value.response
    assert error["Error"]["Code"] == "ModelError" and error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400
    assert "Row 2 has 3 columns; the model expects 2 (age, income" in error["OriginalMessage"]
    assert error["LogStreamArn"].endswith(":log-group:/aws/sagemaker/Endpoints/bad-rows-ep")
    assert "Received client error (400) from primary" in error["Error"]["Message"]
    assert isinstance(raised.value, runtime.exceptions.ModelError)
    for body, content_type, part in (
        ("age,income", "text/csv", "is a header row"),
        ('{"age": 25}', "application/jsonlines", "lacks the column(s) ['income']"),
        ("25,2000", "application/x-image", "Content type application/x-image is not supported"),
    ):
        with pytest.raises(runtime.exceptions.ModelError, match=None) as raised_again:
            runtime.invoke_endpoint(EndpointName="bad-rows-ep", Body=body, ContentType=content_type)
        assert part in raised_again.value.response["OriginalMessage"]


def test_an_unknown_endpoint_is_a_validation_error(emu: Any) -> None:
    runtime = emu.client("sagemaker-runtime")
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="no-such-ep", Body=ROWS[0], ContentType="text/csv")
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert (
        raised.value.response["Error"]["Message"] == "Endpoint no-such-ep of account 123456789012 not found."
    )


def test_injected_failures_hit_matching_rows_of_matching_models_only(emu: Any) -> None:
    deploy(emu, "old-ep")
    emu.fail_invocations(new_models_only=True, status=500, message="boom")
    deploy(emu, "new-ep")
    emu.fail_invocations("old-*", matching="31,", status=400)
    runtime = emu.client("sagemaker-runtime")
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName="new-ep", Body=ROWS[0], ContentType="text/csv")
    assert (raised.value.response["OriginalStatusCode"], raised.value.response["OriginalMessage"]) == (
        500,
        "boom",
    )
    assert invoke(emu, "old-ep", ROWS[0], ContentType="text/csv")[0]  # the old model still answers
    with pytest.raises(runtime.exceptions.ModelError, match=r"client error \(400\)"):
        runtime.invoke_endpoint(EndpointName="old-ep", Body=ROWS[1], ContentType="text/csv")
    emu.clear_faults()
    assert invoke(emu, "new-ep", ROWS[0], ContentType="text/csv")[0]
    with pytest.raises(ValueError, match="status: 200 must be an HTTP error status"):
        emu.fail_invocations(status=200)


def test_variant_weights_route_deterministically(emu: Any) -> None:
    deploy(emu, "split-ep")
    sm = emu.client("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName="split-config-2",
        ProductionVariants=[
            {
                "VariantName": "A",
                "ModelName": "split-ep-model",
                "InitialVariantWeight": 3.0,
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            },
            {
                "VariantName": "B",
                "ModelName": "split-ep-model",
                "InitialVariantWeight": 1.0,
                "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
            },
        ],
    )
    sm.create_endpoint(EndpointName="split-ep-2", EndpointConfigName="split-config-2")
    seen = [
        invoke(emu, "split-ep-2", ROWS[0], ContentType="text/csv")[1]["InvokedProductionVariant"]
        for _ in range(20)
    ]
    assert seen.count("B") == 5 and seen.count("A") == 15 and seen[:4] == ["A", "A", "B", "A"]
    target = invoke(emu, "split-ep-2", ROWS[0], ContentType="text/csv", TargetVariant="B")[1]
    assert target["InvokedProductionVariant"] == "B"


def control(
    server: Any, route: str, body: dict[str, Any] | None = None, method: str = "POST"
) -> tuple[int, Any]:
    """Call one of the emulator server's HTTP control routes; return the status and decoded answer."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"{server.endpoint_url}/moto-api/autopilot-emulator/{route}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_over_http_invocations_and_their_failure_controls(server: Any, make_job: Any) -> None:
    make_job("invoke-job")
    server.advance(60)
    deploy(server, "http-ep")
    text, answer = invoke(server, "http-ep", ROWS[0], ContentType="text/csv")
    assert answer["InvokedProductionVariant"] == "AllTraffic" and len(next(csv.reader([text]))) == 2
    assert server.request_counts()["InvokeEndpoint"] == 1
    status, body = control(
        server, "invocation-failures", {"model_name": "http-*", "matching": "25,", "status": 503}
    )
    assert status == 200 and body["invocation_failures"][0]["model_name"] == "http-*"
    runtime = server.client("sagemaker-runtime")
    with pytest.raises(runtime.exceptions.ModelError) as raised:
        runtime.invoke_endpoint(EndpointName="http-ep", Body=ROWS[0], ContentType="text/csv")
    assert raised.value.response["OriginalStatusCode"] == 503
    assert invoke(server, "http-ep", ROWS[1], ContentType="text/csv")[0]  # rows not matching still answer
    assert control(server, "deny", method="DELETE")[0] == 200
    assert control(server, "invocation-failures", method="GET")[1] == {"invocation_failures": []}
    assert invoke(server, "http-ep", ROWS[0], ContentType="text/csv")[0] == text
    assert control(server, "invocation-failures", {"status": 200})[0] == 400
    assert control(server, "invocation-failures", {"model": "x"}) == (400, {"error": "unknown keys: model"})
    status, body = control(server, "alarm-triggers", {"alarm_name": "errors", "phase": "canary"})
    assert status == 200 and body["alarm_triggers"] == [
        {"alarm_name": "errors", "phase": "canary", "endpoint_name": None}
    ]
    status, body = control(server, "alarm-triggers", {"alarm_name": "errors", "phase": "nap"})
    assert status == 400 and "phase: 'nap' is not a deployment phase" in body["error"]


def test_with_iam_enforced_invocations_need_sagemaker_invoke_endpoint_on_the_endpoint(
    server: Any, autopilot_emulator_iam: Any
) -> None:
    from tests.conftest import job_request, upload_training_data

    admin_sm = autopilot_emulator_iam.client("sagemaker")
    upload_training_data(s3=autopilot_emulator_iam.client("s3"))
    admin_sm.create_auto_ml_job(**job_request("invoke-job"))
    server.advance(60)
    best = admin_sm.describe_auto_ml_job(AutoMLJobName="invoke-job")["BestCandidate"]
    admin_sm.create_model(
        ModelName="iam-model", ExecutionRoleArn=ROLE_ARN, Containers=best["InferenceContainers"]
    )
    admin_sm.create_endpoint_config(
        EndpointConfigName="iam-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "iam-model",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    for name in ("iam-allowed", "iam-other"):
        admin_sm.create_endpoint(EndpointName=name, EndpointConfigName="iam-config")
    keys = autopilot_emulator_iam.create_user(
        "caller",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sagemaker:InvokeEndpoint",
                    "Resource": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/iam-allowed",
                }
            ],
        },
    )
    runtime = server.client("sagemaker-runtime", aws_access_key_id=keys[0], aws_secret_access_key=keys[1])
    assert runtime.invoke_endpoint(EndpointName="iam-allowed", Body=ROWS[0], ContentType="text/csv")[
        "Body"
    ].read()
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName="iam-other", Body=ROWS[0], ContentType="text/csv")
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_results_queued_through_motos_api_are_answered_first(emu: Any) -> None:
    import requests

    deploy(emu, "queued-ep")
    queued = requests.post(
        "http://motoapi.amazonaws.com/moto-api/static/sagemaker/endpoint-results",
        json={
            "results": [
                {"Body": "yes,0.87", "ContentType": "text/csv", "InvokedProductionVariant": "AllTraffic"}
            ]
        },
        timeout=10,
    )
    assert queued.status_code == 201
    assert invoke(emu, "queued-ep", ROWS[0], ContentType="text/csv")[0] == "yes,0.87"
    text = invoke(emu, "queued-ep", ROWS[1], ContentType="text/csv")[0]
    assert text != "yes,0.87" and text.split(",")[0] in ("yes", "no")


def test_injected_faults_hit_invocations_and_botocore_retries_the_transient_ones(
    emu: Any, instant_aws_retries: Any
) -> None:
    from botocore.config import Config

    deploy(emu, "faulty-ep")
    retrying = emu.client("sagemaker-runtime", config=Config(retries={"max_attempts": 3, "mode": "standard"}))
    emu.inject_faults(throttle=1, server_errors=1)
    answer = retrying.invoke_endpoint(EndpointName="faulty-ep", Body=ROWS[0], ContentType="text/csv")
    assert answer["Body"].read() and answer["ResponseMetadata"]["RetryAttempts"] == 2
    emu.deny("InvokeEndpoint")
    with pytest.raises(ClientError) as raised:
        retrying.invoke_endpoint(EndpointName="faulty-ep", Body=ROWS[0], ContentType="text/csv")
    assert raised.value.response["Error"]["Code"] == "AccessDeniedException"
    assert raised.value.response["ResponseMetadata"]["RetryAttempts"] == 0

"""The emulator refuses hosting and batch transform requests that break a rule of their table with
SageMaker's ValidationException, in SageMaker's wording, from the rules the operators check before
sending them (so a request the operators would refuse is refused by the emulator too)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from airflow_autopilot.core.fields.endpoint import ENDPOINT_CONFIG, UPDATE_ENDPOINT
from airflow_autopilot.core.fields.model import MODEL
from airflow_autopilot.core.fields.model_package import MODEL_PACKAGE
from airflow_autopilot.core.fields.transform import TRANSFORM_JOB
from tests.conftest import DATA_BUCKET, ROLE_ARN


@pytest.fixture
def sm(autopilot_emulator):
    autopilot_emulator.reset_request_counts()
    return autopilot_emulator.client("sagemaker")


def refused(call, **request) -> str:
    with pytest.raises(ClientError) as raised:
        call(**request)
    assert raised.value.response["Error"]["Code"] == "ValidationException"
    return raised.value.response["Error"]["Message"]


def test_a_transform_job_breaking_its_table_is_refused_with_every_problem(sm):
    request = {
        "TransformJobName": "bad_name",
        "ModelName": "m1",
        "MaxPayloadInMB": 200,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA_BUCKET}/in/"}},
            "SplitType": "Lines",
        },
        "TransformOutput": {"S3OutputPath": f"s3://{DATA_BUCKET}/out"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }
    message = refused(sm.create_transform_job, **request)
    assert message == TRANSFORM_JOB.server_message(request)
    assert message.startswith("3 validation errors detected: ")
    assert (
        "Value 'bad_name' at 'transformJobName' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    ) in message
    assert (
        "Value 'Lines' at 'transformInput.splitType' failed to satisfy constraint: Member must satisfy enum "
        "value set: [None, Line, RecordIO, TFRecord]"
    ) in message
    assert (
        "Value '200' at 'maxPayloadInMB' failed to satisfy constraint: Member must have value between 0 and 100"
    ) in message
    assert sm.list_transform_jobs(NameContains="bad")["TransformJobSummaries"] == []


def test_model_endpoint_config_update_and_model_package_requests_are_refused_by_their_tables(sm):
    model = {
        "ModelName": "m-1",
        "ExecutionRoleArn": ROLE_ARN,
        "Containers": [{"Image": "img", "Environment": {"1BAD": "x"}}],
    }
    assert refused(sm.create_model, **model) == MODEL.server_message(model)
    config = {
        "EndpointConfigName": "cfg_1",
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": "m-1", "InstanceType": "m5.large"}],
    }
    message = refused(sm.create_endpoint_config, **config)
    assert message == ENDPOINT_CONFIG.server_message(config)
    assert "at 'productionVariants.member.instanceType' failed to satisfy constraint" in message
    update = {"EndpointName": "ep_1", "EndpointConfigName": "cfg-1"}
    assert refused(sm.update_endpoint, **update) == UPDATE_ENDPOINT.server_message(update)
    package = {
        "ModelPackageGroupName": "g",
        "ModelApprovalStatus": "Maybe",
        "InferenceSpecification": {"Containers": [{"Image": "img"}], "SupportedContentTypes": ["text/csv"]},
    }
    assert refused(sm.create_model_package, **package) == (
        "1 validation error detected: Value 'Maybe' at 'modelApprovalStatus' failed to satisfy constraint: "
        "Member must satisfy enum value set: [PendingManualApproval, Approved, Rejected]"
    )
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert MODEL_PACKAGE.server_message(package) is not None

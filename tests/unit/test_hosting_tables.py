"""The hosting request tables: the requests the batch transform, register and deploy operators build
from them, their messages (field, rule, operator parameter), the operator parameters they derive,
and a field added to a table as one entry."""

from __future__ import annotations

import inspect

import pytest

from airflow_autopilot.core.fields.endpoint import (
    ENDPOINT,
    ENDPOINT_CONFIG,
    UPDATE_ENDPOINT,
    endpoint_config_request,
    endpoint_request,
)
from airflow_autopilot.core.fields.model import MODEL, model_request
from airflow_autopilot.core.fields.model_package import MODEL_PACKAGE
from airflow_autopilot.core.fields.spec import Field
from airflow_autopilot.core.fields.transform import TRANSFORM_DEFAULTS, TRANSFORM_JOB
from airflow_autopilot.core.promotion import PromotionInputError, request_errors
from airflow_autopilot.core.transform import transform_request
from airflow_autopilot.operators.promotion import (
    DEPLOY_TABLES,
    REGISTER_TABLES,
    AutopilotDeployCandidateOperator,
    AutopilotRegisterCandidateOperator,
)
from airflow_autopilot.operators.transform import TRANSFORM_TABLES, AutopilotBatchTransformOperator
from tests.helpers import candidate

ROLE = "arn:aws:iam::123456789012:role/Role"
OWNER = {"Key": "airflow-autopilot:owner", "Value": "t"}


def test_the_transform_request_from_the_defaults_is_the_one_sent_before_the_tables():
    params = {
        **TRANSFORM_DEFAULTS,
        "s3_input_uri": "s3://b/in/",
        "s3_output_path": "s3://b/out",
        "tags": {"a": "1"},
    }
    request, errors = transform_request(params, job_name="score-0123", model_name="m-1", own_tags=[OWNER])
    assert errors == []
    assert request == {
        "TransformJobName": "score-0123",
        "ModelName": "m-1",
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in/"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": {"S3OutputPath": "s3://b/out", "Accept": "text/csv", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
        "Tags": [{"Key": "a", "Value": "1"}, OWNER],
    }
    assert TRANSFORM_JOB.errors(request) == []


def test_rendered_strings_become_numbers_and_optional_ones_rendered_empty_are_left_out():
    params = {
        **TRANSFORM_DEFAULTS,
        "s3_input_uri": "s3://b/in/",
        "s3_output_path": "s3://b/out",
        "instance_count": "2",
        "max_payload_mb": "6.0",
        "max_concurrent_transforms": "None",
        "join_source": "Input",
    }
    request, _ = transform_request(params, job_name="j", model_name="m")
    assert request["TransformResources"]["InstanceCount"] == 2
    assert request["MaxPayloadInMB"] == 6
    assert "MaxConcurrentTransforms" not in request
    assert request["DataProcessing"] == {"JoinSource": "Input"}


def test_the_hosting_requests_are_the_ones_sent_before_the_tables():
    containers = candidate()["InferenceContainers"]
    model, _ = model_request({"role_arn": ROLE, "tags": []}, model_name="m-1", containers=containers)
    assert model == {"ModelName": "m-1", "ExecutionRoleArn": ROLE, "Containers": containers}
    params = {
        "instance_type": "ml.m5.large",
        "initial_instance_count": 1,
        "tags": [{"Key": "k", "Value": "v"}],
    }
    config, _ = endpoint_config_request(params, config_name="ep-1", model_name="m-1")
    assert config == {
        "EndpointConfigName": "ep-1",
        "ProductionVariants": [
            {
                "VariantName": "AllTraffic",
                "ModelName": "m-1",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
                "InitialVariantWeight": 1.0,
            }
        ],
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    params = {"endpoint_name": "ep", "tags": {"k": "v"}}
    assert endpoint_request(ENDPOINT, params, config_name="ep-1")[0] == {
        "EndpointName": "ep",
        "EndpointConfigName": "ep-1",
        "Tags": [{"Key": "k", "Value": "v"}],
    }
    assert endpoint_request(UPDATE_ENDPOINT, params, config_name="ep-2")[0] == {
        "EndpointName": "ep",
        "EndpointConfigName": "ep-2",
    }


def test_the_register_request_holds_the_candidate_its_metadata_and_the_defaults():
    op = AutopilotRegisterCandidateOperator(
        task_id="r",
        best_candidate=candidate(),
        job_name="job-1",
        model_package_group_name="g",
        customer_metadata={"team": 7},
        tags={"k": "v"},
    )
    request = op.build_request()
    assert request["ModelPackageGroupName"] == "g"
    assert request["ModelPackageDescription"] == "Autopilot job job-1, candidate cand-1"
    assert request["ModelApprovalStatus"] == "PendingManualApproval"
    assert request["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv"]
    assert request["InferenceSpecification"]["Containers"][1] == {
        "Image": "img/algo",
        "ModelDataUrl": "s3://b/m2.tar.gz",
    }
    assert request["CustomerMetadataProperties"]["team"] == "7"
    assert request["CustomerMetadataProperties"]["autopilot:candidate-name"] == "cand-1"
    assert request["Tags"] == [{"Key": "k", "Value": "v"}]
    assert MODEL_PACKAGE.errors(request) == []


def test_a_transform_reports_every_problem_at_once_naming_field_rule_and_parameter():
    op = AutopilotBatchTransformOperator(
        task_id="t",
        s3_input_uri="https://b/in/",
        s3_output_path="s3://b/out",
        role_arn="not-a-role",
        best_candidate=candidate(),
        instance_count=0,
        max_payload_mb=500,
        accept="application/json",
        tags=[{"Key": "airflow-autopilot:owner", "Value": "x"}],
    )
    with pytest.raises(PromotionInputError) as raised:
        op.validate()
    assert list(raised.value.errors) == [
        "tags: the key 'airflow-autopilot:owner' is reserved; the operator sets airflow-autopilot:* tags "
        "to mark its jobs",
        "ExecutionRoleArn: 'not-a-role' is 10 characters; at least 20 required (operator parameter: role_arn)",
        "TransformInput.DataSource.S3DataSource.S3Uri: 'https://b/in/' must be an s3://bucket/prefix URI: "
        "batch transform reads and writes S3 only (operator parameter: s3_input_uri)",
        "TransformOutput.Accept: 'application/json' must be one of ['application/jsonlines', 'text/csv'] "
        "(operator parameter: accept)",
        "TransformResources.InstanceCount: 0 must be a positive integer (operator parameter: instance_count)",
        "MaxPayloadInMB: 500 must be an integer from 0 to 100 (operator parameter: max_payload_mb)",
    ]


def test_a_deploy_reports_every_problem_of_its_four_requests_at_once():
    op = AutopilotDeployCandidateOperator(
        task_id="d",
        best_candidate=candidate(),
        endpoint_name="bad_name",
        role_arn=ROLE,
        model_name="-m",
        initial_instance_count="two",
    )
    with pytest.raises(PromotionInputError) as raised:
        op.plan()
    assert list(raised.value.errors) == [
        "EndpointName: 'bad_name' must match [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62} (letters, digits and hyphens; "
        "starts and ends with a letter or digit) (operator parameter: endpoint_name)",
        "ModelName: '-m' must match [a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])? (letters, digits and hyphens; "
        "starts and ends with a letter or digit) (operator parameter: model_name)",
        "ProductionVariants[0].ModelName: '-m' must match [a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])? (letters, "
        "digits and hyphens; starts and ends with a letter or digit) (operator parameter: model_name)",
        "ProductionVariants[0].InitialInstanceCount: 'two' must be a positive integer "
        "(operator parameter: initial_instance_count)",
    ]


def test_a_register_names_the_parameters_behind_its_request_fields():
    op = AutopilotRegisterCandidateOperator(
        task_id="r",
        best_candidate=candidate(),
        job_name="job-1",
        model_package_group_name="g",
        approval_status="Maybe",
        customer_metadata=["x"],
        supported_response_mime_types=["csv"],
    )
    with pytest.raises(PromotionInputError) as raised:
        op.build_request()
    assert list(raised.value.errors) == [
        "customer_metadata: ['x'] must be a dict of strings",
        "InferenceSpecification.SupportedResponseMIMETypes[0]: 'csv' must match [-\\w]+\\/.+ (a MIME type such "
        "as text/csv) (operator parameter: supported_response_mime_types)",
        "ModelApprovalStatus: 'Maybe' must be one of ['Approved', 'PendingManualApproval', 'Rejected'] "
        "(operator parameter: approval_status)",
    ]


@pytest.mark.parametrize(
    ("operator", "parameters", "specs"),
    [
        (AutopilotBatchTransformOperator, TRANSFORM_TABLES, (TRANSFORM_JOB, MODEL)),
        (AutopilotRegisterCandidateOperator, REGISTER_TABLES, (MODEL_PACKAGE,)),
        (
            AutopilotDeployCandidateOperator,
            DEPLOY_TABLES,
            (ENDPOINT, MODEL, ENDPOINT_CONFIG, UPDATE_ENDPOINT),
        ),
    ],
    ids=["transform", "register", "deploy"],
)
def test_every_table_parameter_is_a_documented_templated_operator_argument(operator, parameters, specs):
    signature = inspect.signature(operator.__init__)
    for spec in specs:
        for name in spec.parameters:
            assert name in operator.template_fields, name
            assert name in signature.parameters, name
            assert f":param {name}:" in operator.__doc__, name


def test_required_request_parameters_are_required_and_defaults_come_from_the_tables():
    signature = inspect.signature(AutopilotBatchTransformOperator.__init__)
    assert signature.parameters["s3_input_uri"].default is inspect.Parameter.empty
    assert signature.parameters["role_arn"].default is inspect.Parameter.empty
    assert signature.parameters["split_type"].default == "Line"
    assert signature.parameters["model_name"].default is None
    from airflow.exceptions import AirflowException

    # Airflow 3 raises TypeError for a missing keyword argument; Airflow 2 its AirflowException.
    with pytest.raises((TypeError, AirflowException), match="s3_output_path"):
        AutopilotBatchTransformOperator(task_id="t", s3_input_uri="s3://b/in/", role_arn=ROLE, job_name="j")
    op = AutopilotBatchTransformOperator(
        task_id="t", s3_input_uri="s3://b/in/", s3_output_path="s3://b/o", role_arn=ROLE, job_name="j"
    )
    assert (op.instance_type, op.instance_count, op.accept) == ("ml.m5.large", 1, "text/csv")


#: The one entry: network isolation of the deploy operator's endpoint config (CreateModel's own
#: EnableNetworkIsolation is in its table; CreateEndpointConfig's is not).
ISOLATION = Field(
    "EnableNetworkIsolation",
    "endpoint_network_isolation",
    "bool",
    "run the containers without network access.",
)


class IsolatedDeployOperator(AutopilotDeployCandidateOperator):
    """The deploy operator over CreateEndpointConfig's table extended by one entry (what editing the table gives)."""

    request_tables = DEPLOY_TABLES.extended(ISOLATION, operation="CreateEndpointConfig")


ISOLATED_MODEL = IsolatedDeployOperator.request_tables.get(ENDPOINT_CONFIG)


def test_a_field_added_to_a_table_is_an_operator_parameter_template_field_and_documented():
    assert "endpoint_network_isolation" in IsolatedDeployOperator.template_fields
    assert "endpoint_network_isolation" not in AutopilotDeployCandidateOperator.template_fields
    assert ":param endpoint_network_isolation: run the containers without network access." in (
        IsolatedDeployOperator.__doc__
    )
    signature = inspect.signature(IsolatedDeployOperator.__init__)
    assert signature.parameters["endpoint_network_isolation"].default is None
    assert signature.parameters["best_candidate"].default is inspect.Parameter.empty
    op = IsolatedDeployOperator(
        task_id="d",
        best_candidate=candidate(),
        endpoint_name="ep",
        role_arn=ROLE,
        endpoint_network_isolation="{{ x }}",
    )
    assert op.endpoint_network_isolation == "{{ x }}"  # verbatim until rendered
    assert op.request_parameters()["endpoint_network_isolation"] == "{{ x }}"


def test_a_field_added_to_a_table_is_built_validated_and_answered_by_the_emulator():
    params = {"role_arn": ROLE, "endpoint_network_isolation": "true"}
    request, errors = ISOLATED_MODEL.build({**params, "model_name": "m", "containers": [{"Image": "i"}]})
    assert request["EnableNetworkIsolation"] is True and errors == []
    bad = ISOLATED_MODEL.build({**params, "endpoint_network_isolation": "yes", "model_name": "m"})
    bad[0]["EndpointConfigName"] = "c"
    # The config's name is derived by the operator, not a parameter.
    assert request_errors(ISOLATED_MODEL, bad, derived=frozenset({"EndpointConfigName"})) == [
        "EnableNetworkIsolation: 'yes' must be true or false (operator parameter: endpoint_network_isolation)"
    ]
    assert ISOLATED_MODEL.server_message(bad[0]) == (
        "1 validation error detected: Value 'yes' at 'enableNetworkIsolation' failed to satisfy constraint: "
        "Member must be a boolean"
    )


def test_the_operator_builds_and_validates_with_its_own_extended_table():
    def deploy(value):
        return IsolatedDeployOperator(
            task_id="d", best_candidate=candidate(), endpoint_name="ep", role_arn=ROLE, **value
        )

    assert deploy({"endpoint_network_isolation": "true"}).plan().model_name  # valid: its table knows it
    with pytest.raises(PromotionInputError) as raised:
        deploy({"endpoint_network_isolation": "yes"}).plan()
    assert list(raised.value.errors) == [
        "EnableNetworkIsolation: 'yes' must be true or false (operator parameter: endpoint_network_isolation)"
    ]
    # The operator without the entry does not take the parameter.
    assert (
        "endpoint_network_isolation"
        not in inspect.signature(AutopilotDeployCandidateOperator.__init__).parameters
    )


def test_default_args_and_expand_reach_the_table_parameters():
    import datetime

    from airflow.providers.common.compat.sdk import DAG

    with DAG(
        "hosting-defaults",
        schedule=None,
        start_date=datetime.datetime(2024, 1, 1),
        default_args={"role_arn": ROLE, "instance_type": "ml.c5.xlarge"},
    ):
        transform = AutopilotBatchTransformOperator(
            task_id="t", s3_input_uri="s3://b/i/", s3_output_path="s3://b/o", job_name="j"
        )
        deploy = AutopilotDeployCandidateOperator(task_id="d", best_candidate={}, endpoint_name="ep")
        mapped = AutopilotBatchTransformOperator.partial(
            task_id="m", s3_output_path="s3://b/o", job_name="j"
        ).expand(s3_input_uri=["s3://b/1/", "s3://b/2/"])
    assert (transform.role_arn, transform.instance_type) == (ROLE, "ml.c5.xlarge")
    assert (deploy.role_arn, deploy.instance_type) == (ROLE, "ml.c5.xlarge")
    assert mapped.partial_kwargs["s3_output_path"] == "s3://b/o"


def test_a_model_s_vpc_config_follows_the_description_the_automl_jobs_share():
    request = {
        "ModelName": "m",
        "ExecutionRoleArn": ROLE,
        "VpcConfig": {"SecurityGroupIds": ["sg-1"], "Subnets": []},
    }
    assert MODEL.errors(request) == ["VpcConfig.Subnets: required, a list of 1 to 16 subnet ids"]
    assert MODEL.server_message({**request, "VpcConfig": {"Subnets": ["s-1"]}}) == (
        "1 validation error detected: Value null at 'vpcConfig.securityGroupIds' failed to satisfy "
        "constraint: Member must not be null"
    )

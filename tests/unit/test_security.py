"""Least privilege (docs/security.md): S3 denials explained like SageMaker's, PassRole enforced by
the emulator, security settings passed through and validated, nothing half-created on a denial."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from airflow_autopilot.core.errors import denied_action, explain_access_denied
from airflow_autopilot.core.permissions import DOCS_PAGE, iam_action


def s3_client():
    return boto3.client("s3", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")


@pytest.mark.parametrize(
    ("operation", "kwargs", "code", "message", "action", "statement"),
    [
        (
            "get_object",
            {"Bucket": "b", "Key": "k"},
            "AccessDenied",
            "Access Denied",
            "s3:GetObject",
            "ReadObjects",
        ),
        (
            "list_objects_v2",
            {"Bucket": "b", "Prefix": "p"},
            "AccessDenied",
            "Access Denied",
            "s3:ListBucket",
            "ReadTrainingData",
        ),
        # A HEAD request's 403 has no body: botocore reports code "403", message "Forbidden".
        ("head_object", {"Bucket": "b", "Key": "k"}, "403", "Forbidden", "s3:GetObject", "ReadObjects"),
    ],
)
def test_an_s3_denial_names_the_action_the_caller_the_statement_and_the_docs(
    operation, kwargs, code, message, action, statement
):
    client = explain_access_denied(s3_client(), "AutopilotCreateJobOperator")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            operation, service_error_code=code, service_message=message, http_status_code=403
        )
        with pytest.raises(ClientError) as denied:
            getattr(client, operation)(**kwargs)
    assert denied.value.response["Error"]["Code"] == code  # still classified as what it is
    text = str(denied.value)
    assert f"the policy lacks {action}" in text and f"statement '{statement}'" in text
    assert "AutopilotCreateJobOperator cannot run" in text and DOCS_PAGE in text


def test_an_s3_error_that_is_not_a_denial_is_left_alone():
    client = explain_access_denied(s3_client(), "AutopilotCreateJobOperator")
    with Stubber(client) as stubber:
        stubber.add_client_error("get_object", service_error_code="NoSuchKey", service_message="gone")
        with pytest.raises(ClientError) as missing:
            client.get_object(Bucket="b", Key="k")
    assert str(missing.value).endswith("gone")


def test_s3_operations_map_to_the_actions_iam_authorizes_them_as():
    assert iam_action("s3", "ListObjectsV2") == "s3:ListBucket"
    assert iam_action("s3", "HeadBucket") == "s3:ListBucket"
    assert iam_action("s3", "PutObject") == "s3:PutObject"
    assert iam_action("sagemaker", "CreateModel") == "sagemaker:CreateModel"
    assert denied_action("Access Denied", "ListObjectsV2", "s3") == "s3:ListBucket"


def client_error(code: str, status: int | None) -> ClientError:
    response: dict = {"Error": {"Code": code, "Message": "m"}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "CreateEndpoint")


@pytest.mark.parametrize(
    ("error", "refused"),
    [
        (client_error("AccessDeniedException", 400), True),
        (client_error("ValidationException", 400), True),
        (client_error("AccessDenied", None), True),
        # Throttled, a 5xx, a timeout: the request may yet take effect; nothing is undone.
        (client_error("ThrottlingException", 400), False),
        (client_error("InternalFailure", 500), False),
        (TimeoutError(), False),
    ],
)
def test_only_a_refusal_proves_the_request_changed_nothing(error, refused):
    from airflow_autopilot.core.errors import was_refused

    assert was_refused(error) is refused


def test_the_emulator_evaluates_pass_role_statements_as_iam_does():
    from airflow_autopilot.emulator.iam import is_allowed

    role = "arn:aws:iam::1:role/R"
    to_sagemaker = {"iam:PassedToService": "sagemaker.amazonaws.com"}
    grant = {
        "Effect": "Allow",
        "Action": "iam:PassRole",
        "Resource": role,
        "Condition": {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}},
    }
    doc = {"Statement": [grant]}
    assert is_allowed([doc], "iam:PassRole", role, to_sagemaker)
    assert is_allowed([{"Statement": grant}], "IAM:passrole", role, to_sagemaker)  # actions: any case
    assert not is_allowed([doc], "iam:PassRole", role, {"iam:PassedToService": "ec2.amazonaws.com"})
    assert not is_allowed([doc], "iam:PassRole", "arn:aws:iam::1:role/r", to_sagemaker)  # ARNs: exact case
    deny = {"Effect": "Deny", "Action": "iam:*", "Resource": "*"}
    assert not is_allowed([doc, {"Statement": [deny]}], "iam:PassRole", role, to_sagemaker)
    # An operator the emulator cannot judge grants nothing; NotAction excludes.
    unknown = {**grant, "Condition": {"ArnLike": {"aws:SourceArn": "x"}}}
    assert not is_allowed([{"Statement": [unknown]}], "iam:PassRole", role, to_sagemaker)
    assert not is_allowed(
        [{"Statement": [{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]}],
        "iam:PassRole",
        role,
        {},
    )


def test_connection_defaults_fill_unset_parameters_and_structure_members_only():
    from airflow_autopilot.core.fields.common import with_connection_defaults

    vpc = {"SecurityGroupIds": ["sg-1"], "Subnets": ["subnet-1"]}
    extras = {"autopilot": {"kms_key_id": "alias/k", "output_kms_key_id": "alias/out", "vpc_config": vpc}}
    # A job: the volume key and VPC go into its security_config, the operator's members kept.
    job = {"security_config": {"EnableInterContainerTrafficEncryption": True}, "output_kms_key_id": None}
    values, problems = with_connection_defaults(job, extras)
    assert problems == []
    assert values == {
        "security_config": {
            "EnableInterContainerTrafficEncryption": True,
            "VolumeKmsKeyId": "alias/k",
            "VpcConfig": vpc,
        },
        "output_kms_key_id": "alias/out",  # the specific setting over the general one
    }
    # A transform: its own volume key stays; parameters it does not have are not added.
    values, _ = with_connection_defaults(
        {"volume_kms_key_id": "alias/mine", "output_kms_key_id": None}, extras
    )
    assert values == {"volume_kms_key_id": "alias/mine", "output_kms_key_id": "alias/out"}
    # No extras, or no entry: unchanged; a malformed entry: a problem naming it.
    assert with_connection_defaults({"kms_key_id": None}, None) == ({"kms_key_id": None}, [])
    assert with_connection_defaults({"kms_key_id": None}, {"region_name": "x"}) == ({"kms_key_id": None}, [])
    assert with_connection_defaults({}, {"autopilot": "alias/k"})[1] == [
        "connection extras 'autopilot': must be an object of settings (output_kms_key_id, volume_kms_key_id, "
        "kms_key_id, vpc_config, enable_inter_container_traffic_encryption, enable_network_isolation)"
    ]


KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_the_kms_statement_is_in_a_policy_only_when_the_dag_names_keys():
    from airflow_autopilot.core.permissions import Scope, policy_document

    plain = policy_document(["AutopilotDeployCandidateOperator"], Scope(account="1"))
    assert "UseKmsKeys" not in {s["Sid"] for s in plain["Statement"]}
    scope = Scope(region="us-east-1", account="1", kms_keys={KEY_ARN, "alias/out", "mrk-" + "a" * 32})
    keyed = {s["Sid"]: s for s in policy_document(["AutopilotDeployCandidateOperator"], scope)["Statement"]}
    statement = keyed["UseKmsKeys"]
    assert statement["Action"] == ["kms:CreateGrant", "kms:DescribeKey"]
    assert statement["Resource"] == sorted(
        [KEY_ARN, "arn:aws:kms:us-east-1:1:key/*", "arn:aws:kms:us-east-1:1:key/mrk-" + "a" * 32]
    )
    assert statement["Condition"] == {"StringLike": {"kms:ViaService": "sagemaker.*.amazonaws.com"}}


def test_the_generator_collects_the_keys_a_dag_names():
    from types import SimpleNamespace

    from airflow_autopilot.iam import scope_for

    tasks = [
        SimpleNamespace(security_config={"VolumeKmsKeyId": KEY_ARN}, output_kms_key_id="alias/out"),
        SimpleNamespace(
            kms_key_id="{{ params.key }}", data_capture_config={"KmsKeyId": "{{ ti.xcom_pull() }}"}
        ),
        SimpleNamespace(volume_kms_key_id=None),
    ]
    assert scope_for(tasks, {"key": "k-from-params"}).kms_keys == {
        KEY_ARN,
        "alias/out",
        "k-from-params",
        "*",  # computed at run time
    }
    assert scope_for([SimpleNamespace()], {}).kms_keys is None


def test_the_command_adds_keys_a_connection_defaults(capsys):
    import json

    from airflow_autopilot.iam import main

    main(["--operators", "AutopilotBatchTransformOperator", "--kms-key", KEY_ARN])
    statements = {s["Sid"]: s for s in json.loads(capsys.readouterr().out)["Statement"]}
    assert statements["UseKmsKeys"]["Resource"] == KEY_ARN

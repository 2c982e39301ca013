"""The emulator enforcing IAM (docs/security.md): a user short of one permission gets an error
naming the action, the class and the docs page, for S3 as for SageMaker; iam:PassRole is checked
with its iam:PassedToService condition."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from airflow_autopilot.core.permissions import DOCS_PAGE
from airflow_autopilot.emulator.handle import DEFAULT_REGION
from airflow_autopilot.emulator.server import airflow_conn_value

BUCKET = "iam-enforced"


def allow(sid: str, actions: list[str], resource: str | list[str], **condition) -> dict:
    statement = {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.fixture
def as_user(autopilot_emulator_iam, autopilot_emulator_server, monkeypatch):
    """Make a user with the given policies and point Airflow's default AWS connection at its keys."""
    count = iter(range(100))

    def make(*policies: dict) -> tuple[str, str]:
        keys = autopilot_emulator_iam.create_user(f"user-{next(count)}", *policies)
        conn = airflow_conn_value(autopilot_emulator_server.endpoint_url, DEFAULT_REGION, keys)
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", conn)
        return keys

    return make


@pytest.fixture
def report(autopilot_emulator_iam):
    s3 = autopilot_emulator_iam.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="reports/report.json", Body=b'{"ok": true}')
    return f"s3://{BUCKET}/reports/report.json"


def model_hook(caller: str):
    from airflow_autopilot.hooks import AutopilotModelHook

    hook = AutopilotModelHook(aws_conn_id="aws_default", region_name=DEFAULT_REGION)
    hook.caller = caller
    return hook


def test_a_denied_s3_read_is_explained_like_a_denied_sagemaker_call(as_user, report):
    as_user(allow("ListOnly", ["s3:ListBucket"], f"arn:aws:s3:::{BUCKET}"))
    hook = model_hook("AutopilotPromotionBranchOperator")

    with pytest.raises(ClientError) as denied:
        hook.read_json_or_none(report)

    text = str(denied.value)
    assert "the policy lacks s3:GetObject (statement 'ReadObjects'" in text
    assert "AutopilotPromotionBranchOperator cannot run" in text and DOCS_PAGE in text
    # With the statement the same read succeeds: the denial was the statement's absence.
    as_user(allow("ReadObjects", ["s3:GetObject"], f"arn:aws:s3:::{BUCKET}/*"))
    assert model_hook("AutopilotPromotionBranchOperator").read_json_or_none(report) == {"ok": True}


def test_a_denied_s3_listing_is_explained(as_user, report):
    as_user(allow("ReadObjects", ["s3:GetObject"], f"arn:aws:s3:::{BUCKET}/*"))
    hook = model_hook("AutopilotBatchTransformOperator")

    with pytest.raises(ClientError) as denied:
        hook.s3.list_objects_v2(Bucket=BUCKET, Prefix="reports/")

    text = str(denied.value)
    assert "s3:ListBucket (statement 'ReadTrainingData'" in text
    assert "AutopilotBatchTransformOperator cannot run" in text and DOCS_PAGE in text


ROLE = "arn:aws:iam::123456789012:role/SageMakerAutopilot"
CONTAINERS = [
    {
        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/sagemaker-sklearn:1",
        "ModelDataUrl": f"s3://{BUCKET}/model.tar.gz",
    }
]


def deploy_policy(*omit: str) -> dict:
    from airflow_autopilot.core.permissions import Scope, policy_document

    scope = Scope(region=DEFAULT_REGION, account="123456789012", roles={ROLE})
    return policy_document(["AutopilotDeployCandidateOperator"], scope, omit=omit)


def deploy(hook):
    return hook.deploy(
        "iam-endpoint",
        model_name="iam-model",
        config_name="iam-endpoint-config",
        role_arn=ROLE,
        containers=CONTAINERS,
        instance_type="ml.m5.large",
        instance_count=1,
        tags=[],
    )


@pytest.mark.parametrize(
    ("omitted", "denied"),
    [
        ("EndpointConfigs", "sagemaker:DescribeEndpointConfig"),
        pytest.param("Endpoints", "sagemaker:DescribeEndpoint", marks=pytest.mark.slow),
    ],
)
def test_a_deploy_refused_after_create_model_leaves_nothing_behind(
    as_user, autopilot_emulator_iam, autopilot_emulator_server, omitted, denied
):
    as_user(deploy_policy(omitted))
    hook = model_hook("AutopilotDeployCandidateOperator")
    autopilot_emulator_server.reset_request_counts()

    with pytest.raises(ClientError) as refused:
        deploy(hook)

    # The model was created, then deleted when the later step was refused.
    counts = autopilot_emulator_server.request_counts()
    assert counts["CreateModel"] == counts["DeleteModel"] == 1, counts

    assert f"not authorized to perform: {denied}" in str(refused.value)
    assert f"statement '{omitted}'" in str(refused.value)
    sm = autopilot_emulator_iam.client()
    assert sm.list_models()["Models"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_endpoints()["Endpoints"] == []


def test_the_same_deploy_succeeds_under_the_whole_policy(as_user, autopilot_emulator_iam):
    as_user(deploy_policy())

    deploy(model_hook("AutopilotDeployCandidateOperator"))

    sm = autopilot_emulator_iam.client()
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["iam-model"]
    assert sm.describe_endpoint(EndpointName="iam-endpoint")["EndpointConfigName"] == "iam-endpoint-config"


PASS_ROLE = "PassRoleToSageMaker"


@pytest.mark.parametrize(
    "pass_role",
    [
        None,  # the statement removed
        # Passed to another service only, or another role only: not this pass (the evaluation
        # itself is covered by tests/unit/test_security.py).
        pytest.param(
            allow(
                PASS_ROLE, ["iam:PassRole"], ROLE, StringEquals={"iam:PassedToService": "ec2.amazonaws.com"}
            ),
            marks=pytest.mark.slow,
        ),
        pytest.param(
            allow(PASS_ROLE, ["iam:PassRole"], "arn:aws:iam::123456789012:role/Other"), marks=pytest.mark.slow
        ),
    ],
    ids=["missing", "other-service", "other-role"],
)
def test_create_model_needs_pass_role_on_the_role_to_sagemaker(as_user, autopilot_emulator_iam, pass_role):
    as_user(deploy_policy(PASS_ROLE), *([pass_role] if pass_role else []))

    with pytest.raises(ClientError) as refused:
        deploy(model_hook("AutopilotDeployCandidateOperator"))

    text = str(refused.value)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"is not authorized to perform: iam:PassRole on resource: {ROLE}" in text
    assert "statement 'PassRoleToSageMaker'" in text and DOCS_PAGE in text
    assert autopilot_emulator_iam.client().list_models()["Models"] == []


def test_a_pass_role_statement_scoped_by_wildcard_and_condition_allows(as_user, autopilot_emulator_iam):
    as_user(
        deploy_policy(PASS_ROLE),
        allow(
            PASS_ROLE,
            ["iam:Pass*"],
            "arn:aws:iam::123456789012:role/SageMaker*",
            StringLike={"iam:PassedToService": "sagemaker.*"},
        ),
    )

    deploy(model_hook("AutopilotDeployCandidateOperator"))

    assert autopilot_emulator_iam.client().describe_model(ModelName="iam-model")["ExecutionRoleArn"] == ROLE


@pytest.mark.slow
def test_a_policy_scoped_to_other_names_is_refused_on_these(as_user, autopilot_emulator_iam):
    from airflow_autopilot.core.permissions import Scope, policy_document

    scope = Scope(region=DEFAULT_REGION, account="123456789012", roles={ROLE}, endpoints={"other-endpoint"})
    as_user(policy_document(["AutopilotDeployCandidateOperator"], scope))

    with pytest.raises(ClientError) as refused:
        deploy(model_hook("AutopilotDeployCandidateOperator"))

    # Models are not scoped here; the config is named after its endpoint, which is out of scope.
    assert (
        "sagemaker:DescribeEndpointConfig on resource: arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/iam-endpoint-config"
        in str(refused.value)
    )
    assert autopilot_emulator_iam.client().list_models()["Models"] == []


def kms_key(autopilot_emulator_iam) -> str:
    """A customer-managed key of the emulator's (moto's) KMS."""
    created = autopilot_emulator_iam.client("kms").create_key(Description="endpoint volumes")
    return str(created["KeyMetadata"]["Arn"])


def kms_deploy_policy(*keys: str) -> dict:
    from airflow_autopilot.core.permissions import Scope, policy_document

    scope = Scope(region=DEFAULT_REGION, account="123456789012", roles={ROLE}, kms_keys=set(keys) or None)
    return policy_document(["AutopilotDeployCandidateOperator"], scope)


def test_a_kms_key_the_policy_does_not_let_sagemaker_use_is_refused_by_name(as_user, autopilot_emulator_iam):
    key = kms_key(autopilot_emulator_iam)
    policy = kms_deploy_policy()  # generated for a DAG that names no key: no UseKmsKeys statement
    assert "UseKmsKeys" not in {s["Sid"] for s in policy["Statement"]}
    as_user(policy)

    with pytest.raises(ClientError) as refused:
        model_hook("AutopilotDeployCandidateOperator").deploy(
            "iam-endpoint",
            model_name="iam-model",
            config_name="iam-endpoint-config",
            role_arn=ROLE,
            containers=CONTAINERS,
            instance_type="ml.m5.large",
            instance_count=1,
            tags=[],
            params={"kms_key_id": key},
        )

    text = str(refused.value)
    assert f"not authorized to perform: kms:DescribeKey on resource: {key}" in text
    assert "statement 'UseKmsKeys'" in text and "AutopilotDeployCandidateOperator cannot run" in text
    assert DOCS_PAGE in text
    # Refused at CreateEndpointConfig: the model created before it was deleted.
    sm = autopilot_emulator_iam.client()
    assert sm.list_models()["Models"] == [] and sm.list_endpoint_configs()["EndpointConfigs"] == []


@pytest.mark.slow
def test_a_kms_key_is_used_under_its_statement_and_a_missing_key_is_named(as_user, autopilot_emulator_iam):
    key = kms_key(autopilot_emulator_iam)
    missing = key.rsplit("/", 1)[0] + "/00000000-0000-0000-0000-000000000000"

    def deploy_with(kms_key_id: str, suffix: str):
        return model_hook("AutopilotDeployCandidateOperator").deploy(
            f"iam-endpoint{suffix}",
            model_name=f"iam-model{suffix}",
            config_name=f"iam-endpoint{suffix}-config",
            role_arn=ROLE,
            containers=CONTAINERS,
            instance_type="ml.m5.large",
            instance_count=1,
            tags=[],
            params={"kms_key_id": kms_key_id},
        )

    # A statement for another key only: still refused (kms:CreateGrant is scoped to the key).
    other = kms_key(autopilot_emulator_iam)
    as_user(kms_deploy_policy(other))
    with pytest.raises(ClientError, match=r"kms:DescribeKey on resource: .*statement 'UseKmsKeys'"):
        deploy_with(key, "-a")
    # Its own statement (generated for the key): SageMaker may use it, and records it verbatim.
    as_user(kms_deploy_policy(key))
    deploy_with(key, "-b")
    sm = autopilot_emulator_iam.client()
    assert sm.describe_endpoint_config(EndpointConfigName="iam-endpoint-b-config")["KmsKeyId"] == key
    # A key KMS does not hold: refused naming the member and the key, nothing left behind.
    as_user(kms_deploy_policy(key, missing))
    with pytest.raises(ClientError, match=r"KmsKeyId: KMS key '.*00000000-0000.*' does not exist"):
        deploy_with(missing, "-c")
    assert {m["ModelName"] for m in sm.list_models()["Models"]} == {"iam-model-b"}

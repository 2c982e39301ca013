"""KMS and VPC settings of the deploy operator reach SageMaker verbatim; malformed ones are refused
by name before any AWS call (issue #26)."""

from __future__ import annotations

import pytest

from airflow_autopilot.core.promotion import PromotionInputError
from tests.integration import test_promotion
from tests.integration.test_promotion import deployer

# Hooks share clients across this file's tests (tests/conftest.py: shared_hook_clients).
pytestmark = pytest.mark.usefixtures("shared_hook_clients")

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
# The promotion tests' fixtures: an in-process emulator and a completed job's best candidate.
emu = test_promotion.emu
best_candidate = test_promotion.best_candidate
VPC = {"SecurityGroupIds": ["sg-0123456789abcdef0"], "Subnets": ["subnet-0123456789abcdef0", "subnet-1"]}


def test_deploy_passes_vpc_and_kms_through(emu, best_candidate):
    result = deployer(best_candidate, vpc_config=VPC, kms_key_id=KEY_ARN).execute({})
    sm = emu.client("sagemaker")
    model = sm.describe_model(ModelName=result["ModelName"])
    assert model["VpcConfig"] == VPC
    config = sm.describe_endpoint_config(EndpointConfigName=result["EndpointConfigName"])
    assert config["KmsKeyId"] == KEY_ARN


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kms_key_id": "my key"}, "KmsKeyId: 'my key' must be a KMS key id, key ARN, alias"),
        ({"kms_key_id": "not-a-key"}, "KmsKeyId: 'not-a-key' must be a KMS key id, key ARN, alias"),
        (
            {"vpc_config": {**VPC, "Subnets": [f"subnet-{i}" for i in range(17)]}},
            "17 subnets given; at most 16",
        ),
        ({"vpc_config": {"SecurityGroupIds": ["sg-1"]}}, "VpcConfig.Subnets: required"),
        ({"vpc_config": {**VPC, "Subnets": ["subnet 1"]}}, "must be a subnet id"),
        ({"role_arn": "arn:aws:iam::123456789012:user/bob"}, "must be an IAM role ARN"),
    ],
)
def test_bad_security_settings_are_refused_before_any_call(emu, best_candidate, kwargs, message):
    emu.reset_request_counts()
    with pytest.raises(PromotionInputError, match=message):
        deployer(best_candidate, **kwargs).execute({})
    assert emu.request_counts() == {}


KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
ALIAS = "alias/autopilot-output"
SECURITY = {
    "VolumeKmsKeyId": KEY_ARN,
    "EnableInterContainerTrafficEncryption": True,
    "VpcConfig": VPC,
}


def test_deploy_passes_network_isolation_through(emu, best_candidate):
    result = deployer(best_candidate, enable_network_isolation=True).execute({})
    assert (
        emu.client("sagemaker").describe_model(ModelName=result["ModelName"])["EnableNetworkIsolation"]
        is True
    )


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_job_creation_passes_security_config_and_output_key_through(emu, make_job, version):
    from tests.integration import test_operators_v2

    if version == "v1":
        from airflow_autopilot.operators import AutopilotCreateJobOperator
        from tests.conftest import DATA_BUCKET, ROLE_ARN

        make_job("seed-job")  # uploads the training data
        op = AutopilotCreateJobOperator(
            task_id="create",
            job_name="secure-v1",
            s3_input_uri=f"s3://{DATA_BUCKET}/train/",
            s3_output_path=f"s3://{DATA_BUCKET}/output",
            target_attribute_name="churn",
            role_arn=ROLE_ARN,
            security_config=SECURITY,
            output_kms_key_id=ALIAS,
            wait_for_completion=False,
            aws_conn_id=None,
        )
    else:
        op = test_operators_v2.create_op(
            "tabular",
            job_name="secure-v2",
            security_config=SECURITY,
            output_kms_key_id=ALIAS,
            wait_for_completion=False,
        )
    from tests.helpers import make_context

    op.execute(make_context(op))

    described = emu.client("sagemaker").describe_auto_ml_job_v2(AutoMLJobName=f"secure-{version}")
    assert described["SecurityConfig"] == SECURITY
    assert described["OutputDataConfig"]["KmsKeyId"] == ALIAS


from tests.integration import test_batch_transform  # noqa: E402

# The batch transform tests' fixture: a completed job and data to score.
job = test_batch_transform.job


def test_batch_transform_passes_keys_vpc_and_isolation_through(emu, job):
    op = test_batch_transform.transform(
        output_kms_key_id=ALIAS,
        volume_kms_key_id=KEY_ID,
        vpc_config=VPC,
        enable_network_isolation=True,
        wait_for_completion=False,
    )
    result = op.execute(test_batch_transform.context())

    sm = emu.client("sagemaker")
    described = sm.describe_transform_job(TransformJobName=result["TransformJobName"])
    assert described["TransformOutput"]["KmsKeyId"] == ALIAS
    assert described["TransformResources"]["VolumeKmsKeyId"] == KEY_ID
    model = sm.describe_model(ModelName=described["ModelName"])
    assert model["VpcConfig"] == VPC and model["EnableNetworkIsolation"] is True


ACCESS_KEY = "AKIAIOSFODNN7SECURED"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY"
TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKENvalue"


def secured(monkeypatch, **settings):
    """An AWS connection ``secured`` with keys, a session token and security defaults in its extras."""
    import json

    extra = {"region_name": "us-east-1", "aws_session_token": TOKEN, "autopilot": settings}
    conn = {"conn_type": "aws", "login": ACCESS_KEY, "password": SECRET, "extra": extra}
    monkeypatch.setenv("AIRFLOW_CONN_SECURED", json.dumps(conn))


def test_connection_defaults_fill_what_the_operator_leaves_unset(emu, best_candidate, monkeypatch):
    secured(monkeypatch, kms_key_id=KEY_ARN, vpc_config=VPC, enable_network_isolation=True)

    result = deployer(best_candidate, aws_conn_id="secured", kms_key_id=ALIAS).execute({})

    sm = emu.client("sagemaker")
    model = sm.describe_model(ModelName=result["ModelName"])
    assert model["VpcConfig"] == VPC and model["EnableNetworkIsolation"] is True
    # The operator's own parameter wins over the connection's default.
    assert sm.describe_endpoint_config(EndpointConfigName=result["EndpointConfigName"])["KmsKeyId"] == ALIAS


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kms": KEY_ARN}, "connection extras 'autopilot': ['kms'] not settings a connection can default"),
        ({"kms_key_id": "not-a-key"}, "KmsKeyId: 'not-a-key' must be a KMS key id, key ARN, alias"),
        (
            {"vpc_config": {**VPC, "Subnets": [f"subnet-{i}" for i in range(17)]}},
            "17 subnets given; at most 16",
        ),
    ],
)
def test_bad_connection_defaults_are_refused_before_any_call(
    emu, best_candidate, monkeypatch, settings, message
):
    from airflow_autopilot.exceptions import AutopilotValidationError

    secured(monkeypatch, **settings)
    emu.reset_request_counts()
    with pytest.raises((AutopilotValidationError, PromotionInputError)) as refused:
        deployer(best_candidate, aws_conn_id="secured").execute({})
    assert message in str(refused.value)
    assert emu.request_counts() == {}


def test_no_key_secret_or_token_reaches_logs_xcom_or_trigger_kwargs(
    emu, best_candidate, monkeypatch, capfd, caplog
):
    from airflow.providers.common.compat.sdk import TaskDeferred

    from tests.integration.test_promotion import endpoint_backend

    secured(monkeypatch, kms_key_id=KEY_ARN, vpc_config=VPC, enable_network_isolation=True)
    with caplog.at_level("DEBUG", logger="airflow.task"):
        first = deployer(best_candidate, aws_conn_id="secured").execute({})
        endpoint_backend(first["EndpointName"]).endpoint_status = "Creating"
        with pytest.raises(TaskDeferred) as deferred:
            deployer(best_candidate, aws_conn_id="secured", deferrable=True, poll_interval=5).execute({})
    _, trigger_kwargs = deferred.value.trigger.serialize()
    output = capfd.readouterr()
    seen = f"{first} {trigger_kwargs} {deferred.value.kwargs} {output.out} {output.err} {caplog.text}"
    for secret in (ACCESS_KEY, SECRET, TOKEN):
        assert secret not in seen
    # Key ARNs and VPC ids are not secrets: the settings may be shown, and reached SageMaker.
    model = emu.client("sagemaker").describe_model(ModelName=first["ModelName"])
    assert model["VpcConfig"] == VPC and trigger_kwargs["aws_conn_id"] == "secured"


USER_ARN = "arn:aws:iam::123456789012:user/bob"
#: Each bad security input, the parameters that give it to each operator, and the rule named.
BAD_INPUTS = {
    "malformed-kms-key": (
        {"security_config": {"VolumeKmsKeyId": "my key"}},
        {"volume_kms_key_id": "my key"},
        "VolumeKmsKeyId: 'my key' must be a KMS key id, key ARN, alias",
    ),
    "17-subnets": (
        {"security_config": {"VpcConfig": {**VPC, "Subnets": [f"subnet-{i}" for i in range(17)]}}},
        {"vpc_config": {**VPC, "Subnets": [f"subnet-{i}" for i in range(17)]}},
        "17 subnets given; at most 16",
    ),
    "groups-without-subnets": (
        {"security_config": {"VpcConfig": {"SecurityGroupIds": ["sg-1"]}}},
        {"vpc_config": {"SecurityGroupIds": ["sg-1"]}},
        "VpcConfig.Subnets: required",
    ),
    "user-arn-as-role": ({"role_arn": USER_ARN}, {"role_arn": USER_ARN}, "must be an IAM role ARN"),
}


#: Each case through one operator in the fast suite; the slow suite runs every pair.
FAST_PAIRS = [
    ("create-v1", "malformed-kms-key"),
    ("create-v2", "17-subnets"),
    ("create-v1", "groups-without-subnets"),
    ("transform", "user-arn-as-role"),
]
ALL_PAIRS = [
    pytest.param(operator, case, marks=[] if (operator, case) in FAST_PAIRS else [pytest.mark.slow])
    for operator in ("create-v1", "create-v2", "transform")
    for case in sorted(BAD_INPUTS)
]


@pytest.mark.parametrize(("operator", "case"), ALL_PAIRS)
def test_bad_security_input_to_jobs_and_transforms_is_refused_before_any_call(emu, request, operator, case):
    from airflow_autopilot.exceptions import AutopilotValidationError
    from airflow_autopilot.operators import AutopilotCreateJobOperator
    from tests.conftest import DATA_BUCKET, ROLE_ARN
    from tests.helpers import make_context
    from tests.integration import test_operators_v2

    job_kwargs, transform_kwargs, message = BAD_INPUTS[case]
    if operator == "transform":
        request.getfixturevalue("job")  # a completed job to score with
    sm = emu.client("sagemaker")
    jobs, models = sm.list_auto_ml_jobs()["AutoMLJobSummaries"], sm.list_models()["Models"]
    emu.reset_request_counts()
    if operator == "transform":
        op = test_batch_transform.transform(**transform_kwargs)
        run = lambda: op.execute(test_batch_transform.context())  # noqa: E731
    else:
        if operator == "create-v1":
            op = AutopilotCreateJobOperator(
                task_id="create",
                **{
                    "job_name": "bad-v1",
                    "s3_input_uri": f"s3://{DATA_BUCKET}/train/",
                    "s3_output_path": f"s3://{DATA_BUCKET}/output",
                    "target_attribute_name": "churn",
                    "role_arn": ROLE_ARN,
                    "aws_conn_id": None,
                    **job_kwargs,
                },
            )
        else:
            op = test_operators_v2.create_op("tabular", job_name="bad-v2", **job_kwargs)
        run = lambda: op.execute(make_context(op))  # noqa: E731

    with pytest.raises((AutopilotValidationError, PromotionInputError)) as refused:
        run()

    assert message in str(refused.value)
    assert emu.request_counts() == {}  # no SageMaker call: nothing created
    assert sm.list_auto_ml_jobs()["AutoMLJobSummaries"] == jobs and sm.list_models()["Models"] == models

"""KMS and VPC settings of the deploy operator reach SageMaker verbatim; malformed ones are refused
by name before any AWS call (issue #26)."""

from __future__ import annotations

import pytest

from airflow_autopilot.core.promotion import PromotionInputError
from tests.integration import test_promotion
from tests.integration.test_promotion import deployer

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

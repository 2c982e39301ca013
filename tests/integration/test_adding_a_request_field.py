"""Adding an optional request field is one table entry: in a copy of the table extended by one entry,
the operator parameter, template field, docs, request, validation and emulator message follow, for
CreateAutoMLJobV2 and for a hosting request (CreateEndpointConfig, deployed against the emulator);
and Airflow's default_args, partial and expand work for table-derived parameters."""

from __future__ import annotations

import inspect
import json

import pytest
from airflow.providers.common.compat.sdk import DAG
from moto.sagemaker.exceptions import ValidationError

from airflow_autopilot.core.fields import Field
from airflow_autopilot.core.fields.automl import CREATE_AUTOML_JOB_V2
from airflow_autopilot.core.fields.endpoint import ENDPOINT_CONFIG
from airflow_autopilot.emulator import job_validation
from airflow_autopilot.exceptions import AutopilotValidationError
from airflow_autopilot.operators import (
    AutopilotCreateJobOperator,
    AutopilotCreateJobV2Operator,
    AutopilotDeployCandidateOperator,
)
from tests.conftest import ROLE_ARN

#: The one entry: a made-up optional field, as a new SageMaker release might add one.
NEW_FIELD = Field(
    "CandidateRetentionDays",
    "candidate_retention_days",
    "int",
    "``CandidateRetentionDays``: how long SageMaker keeps the candidates (1 to 90 days).",
    minimum=1,
    maximum=90,
)


class ExtendedV2Operator(AutopilotCreateJobV2Operator):
    """The V2 operator over the extended table (what editing the real table gives the real operator)."""

    request_tables = AutopilotCreateJobV2Operator.request_tables.extended(NEW_FIELD)


EXTENDED = ExtendedV2Operator.request_tables.get(CREATE_AUTOML_JOB_V2)


TABULAR = {"TabularJobConfig": {"TargetAttributeName": "y", "ProblemType": "Regression"}}


def extended(**kwargs):
    return ExtendedV2Operator(
        task_id="create",
        aws_conn_id=None,
        region_name="us-east-1",
        job_name="retained",
        problem_type_config=TABULAR,
        s3_input_uri="s3://bucket/train/",
        s3_output_path="s3://bucket/out/",
        role_arn=ROLE_ARN,
        **kwargs,
    )


def test_the_new_field_is_a_parameter_a_template_field_and_documented():
    assert "candidate_retention_days" in ExtendedV2Operator.template_fields
    assert "candidate_retention_days" not in AutopilotCreateJobV2Operator.template_fields
    assert (
        ":param candidate_retention_days: ``CandidateRetentionDays``: how long" in ExtendedV2Operator.__doc__
    )
    op = extended(candidate_retention_days="{{ params.days }}")
    assert op.candidate_retention_days == "{{ params.days }}"  # verbatim until rendered


def test_the_new_field_is_built_into_the_request_coerced_from_its_rendering():
    op = extended(candidate_retention_days="30")
    request, _ = op.build_request(_chain(op))
    assert request["CandidateRetentionDays"] == 30


def test_the_new_field_is_validated_naming_field_rule_and_parameter_before_aws():
    op = extended(candidate_retention_days=365)
    with pytest.raises(AutopilotValidationError) as raised:
        op.build_request(_chain(op))
    assert raised.value.errors == [
        "CandidateRetentionDays: 365 must be an integer from 1 to 90 (operator parameter: candidate_retention_days)"
    ]


def test_the_emulator_answers_the_new_field_in_sagemaker_s_words():
    op = extended(candidate_retention_days=365)
    request, _ = EXTENDED.build({name: getattr(op, name) for name in EXTENDED.parameters})
    with pytest.raises(ValidationError) as raised:
        job_validation.validate(EXTENDED, request)
    assert (
        "Value '365' at 'candidateRetentionDays' failed to satisfy constraint: "
        "Member must have value between 1 and 90"
    ) in str(raised.value)


def _chain(op):
    from airflow_autopilot.core.naming import TryChain

    return TryChain("dag", op.task_id, "manual__1")


# --- Airflow reads the generated signature ------------------------------------------------------
def test_default_args_fill_table_parameters_of_both_operators():

    defaults = {"role_arn": ROLE_ARN, "max_candidates": 3, "s3_output_path": "s3://b/out/"}
    with DAG("defaults", schedule=None, default_args=defaults):
        v1 = AutopilotCreateJobOperator(task_id="v1", s3_input_uri="s3://b/in/", target_attribute_name="y")
        v2 = AutopilotCreateJobV2Operator(task_id="v2", problem_type_config=TABULAR, max_candidates=5)
    assert (v1.role_arn, v1.max_candidates, v1.s3_output_path) == (ROLE_ARN, 3, "s3://b/out/")
    assert (v2.role_arn, v2.max_candidates) == (ROLE_ARN, 5)  # given beats default


def test_default_args_do_not_give_v2_a_v1_only_parameter():
    with DAG("v1-defaults", schedule=None, default_args={"target_attribute_name": "y", "mode": "AUTO"}):
        v2 = AutopilotCreateJobV2Operator(task_id="v2", problem_type_config=TABULAR)
    assert not hasattr(v2, "target_attribute_name") and not hasattr(v2, "mode")


def test_partial_and_expand_take_table_parameters_and_refuse_others():
    with DAG("mapped", schedule=None):
        mapped = AutopilotCreateJobV2Operator.partial(
            task_id="create", problem_type_config=TABULAR, role_arn=ROLE_ARN
        ).expand(s3_input_uri=["s3://b/a/", "s3://b/b/"])
    assert mapped.partial_kwargs["role_arn"] == ROLE_ARN
    assert mapped.expand_input.value == {"s3_input_uri": ["s3://b/a/", "s3://b/b/"]}
    with pytest.raises(TypeError, match="target_attribute_name"):
        AutopilotCreateJobV2Operator.partial(task_id="bad", target_attribute_name="y")


# --- a hosting request: CreateEndpointConfig, through the deploy operator and the hook -------------
#: The one entry: a member of the endpoint's one production variant, as a new release might add one.
VOLUME = Field(
    "ProductionVariants[].VolumeSizeInGB",
    "volume_size_in_gb",
    "int",
    "storage of each endpoint instance, in GB (1 to 512).",
    minimum=1,
    maximum=512,
)


class BigVolumeDeployOperator(AutopilotDeployCandidateOperator):
    """The deploy operator over CreateEndpointConfig's table extended by one entry."""

    request_tables = AutopilotDeployCandidateOperator.request_tables.extended(
        VOLUME, operation="CreateEndpointConfig"
    )


EXTENDED_CONFIG = BigVolumeDeployOperator.request_tables.get(ENDPOINT_CONFIG)


@pytest.fixture
def best_candidate(autopilot_emulator, make_job):
    autopilot_emulator.configure(stage_seconds=0.01)
    make_job("volume-job")
    autopilot_emulator.advance(60)
    described = autopilot_emulator.client("sagemaker").describe_auto_ml_job(AutoMLJobName="volume-job")
    return json.loads(json.dumps(described["BestCandidate"], default=str))


def deployer(best, **kwargs):
    return BigVolumeDeployOperator(
        task_id="deploy",
        best_candidate=best,
        endpoint_name="volume-endpoint",
        role_arn=ROLE_ARN,
        aws_conn_id=None,
        poll_interval=0.05,
        max_wait_seconds=10,
        deferrable=False,
        **kwargs,
    )


def test_a_hosting_field_is_a_parameter_a_template_field_and_documented():
    assert "volume_size_in_gb" in BigVolumeDeployOperator.template_fields
    assert "volume_size_in_gb" not in AutopilotDeployCandidateOperator.template_fields
    assert ":param volume_size_in_gb: storage of each endpoint instance" in BigVolumeDeployOperator.__doc__
    assert inspect.signature(BigVolumeDeployOperator.__init__).parameters["volume_size_in_gb"].default is None
    assert deployer({}, volume_size_in_gb="{{ params.gb }}").volume_size_in_gb == "{{ params.gb }}"


def test_a_hosting_field_reaches_the_endpoint_config_sagemaker_keeps(autopilot_emulator, best_candidate):
    result = deployer(best_candidate, volume_size_in_gb="64").execute({})
    sm = autopilot_emulator.client("sagemaker")
    config = sm.describe_endpoint_config(EndpointConfigName=result["EndpointConfigName"])
    assert config["ProductionVariants"][0]["VolumeSizeInGB"] == 64  # coerced from its rendering
    assert config["ProductionVariants"][0]["VariantName"] == "AllTraffic"


def test_a_hosting_field_is_validated_naming_field_rule_and_parameter_before_aws(autopilot_emulator):
    from airflow_autopilot.core.promotion import PromotionInputError
    from tests.helpers import candidate

    with pytest.raises(PromotionInputError) as raised:
        deployer(candidate(), volume_size_in_gb=1000).execute({})
    assert list(raised.value.errors) == [
        "ProductionVariants[0].VolumeSizeInGB: 1000 must be an integer from 1 to 512 "
        "(operator parameter: volume_size_in_gb)"
    ]
    assert autopilot_emulator.request_counts().get("CreateModel", 0) == 0


def test_the_emulator_answers_the_hosting_field_in_sagemaker_s_words():
    request, errors = EXTENDED_CONFIG.build({"volume_size_in_gb": 1000, "model_name": "m"})
    assert errors == [] and request["ProductionVariants"][0]["VolumeSizeInGB"] == 1000
    assert (
        "Value '1000' at 'productionVariants.member.volumeSizeInGB' failed to satisfy constraint: "
        "Member must have value between 1 and 512"
    ) in EXTENDED_CONFIG.server_message(request)

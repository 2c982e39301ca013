"""
Bad arguments fail before any AWS call, naming the argument and the rule: names that are the text of
an empty XCom ("None", "null", blank), durations that are negative or infinite, a candidate status
SageMaker does not know, an instance type that is not one, an objective whose direction contradicts
its metric. The emulator counts every SageMaker request, so "no AWS call" is checked, not assumed.
"""

from __future__ import annotations

import math

import pytest

from airflow_autopilot.core.promotion import PromotionInputError
from airflow_autopilot.exceptions import AutopilotValidationError
from airflow_autopilot.operators import (
    AutopilotBestCandidateOperator,
    AutopilotCandidatesOperator,
    AutopilotModelDeployResultOperator,
)
from airflow_autopilot.operators.promotion import (
    AutopilotDeployCandidateOperator,
    AutopilotPromotionBranchOperator,
    AutopilotRegisterCandidateOperator,
)
from tests.conftest import ROLE_ARN
from tests.helpers import RecordingTI, candidate, make_context, operator, sensor

EMPTY_RENDERINGS = ["None", "null", "  "]
XCOM_HINT = "xcom_pull"


@pytest.fixture
def emu(autopilot_emulator):
    autopilot_emulator.reset_request_counts()
    return autopilot_emulator


def assert_no_aws_call(emu):
    assert emu.request_counts() == {}


# --- item: a job_name rendered from an empty XCom -------------------------------------------------
@pytest.mark.parametrize("name", EMPTY_RENDERINGS)
@pytest.mark.parametrize("mode", ["poke", "reschedule", "deferrable"])
def test_sensor_rejects_an_empty_rendering_at_once(emu, name, mode):
    s = sensor(
        name,
        mode="reschedule" if mode == "reschedule" else "poke",
        deferrable=mode == "deferrable",
        not_found_grace_seconds=0,
    )
    with pytest.raises(AutopilotValidationError, match=XCOM_HINT) as raised:
        s.execute(make_context(s))
    assert "job_name" in str(raised.value)
    assert_no_aws_call(emu)


@pytest.mark.parametrize("name", EMPTY_RENDERINGS)
@pytest.mark.parametrize(
    "make",
    [
        lambda name: AutopilotBestCandidateOperator(task_id="t", job_name=name, aws_conn_id=None),
        lambda name: AutopilotCandidatesOperator(task_id="t", job_name=name, aws_conn_id=None),
        lambda name: AutopilotModelDeployResultOperator(task_id="t", job_name=name, aws_conn_id=None),
        lambda name: AutopilotRegisterCandidateOperator(
            task_id="t",
            best_candidate=candidate(),
            job_name=name,
            model_package_group_name="g",
            aws_conn_id=None,
        ),
    ],
    ids=["best-candidate", "candidates", "deploy-result", "register"],
)
def test_result_and_register_operators_reject_an_empty_job_name(emu, name, make):
    op = make(name)
    with pytest.raises(AutopilotValidationError, match=XCOM_HINT):
        op.execute(make_context(op))
    assert_no_aws_call(emu)


@pytest.mark.parametrize("name", EMPTY_RENDERINGS)
def test_create_operator_rejects_an_empty_job_name_or_prefix(emu, name):
    for op in (operator(job_name=name), operator(job_name_prefix=name)):
        with pytest.raises(AutopilotValidationError, match=XCOM_HINT):
            op.execute(make_context(op))
    assert_no_aws_call(emu)


@pytest.mark.parametrize("name", EMPTY_RENDERINGS)
def test_promotion_rejects_empty_group_endpoint_and_candidate_names(emu, name):
    register = AutopilotRegisterCandidateOperator(
        task_id="register",
        best_candidate=candidate(),
        job_name="job-1",
        model_package_group_name=name,
        aws_conn_id=None,
    )
    deploy = AutopilotDeployCandidateOperator(
        task_id="deploy", best_candidate=candidate(), endpoint_name=name, role_arn=ROLE_ARN, aws_conn_id=None
    )
    named = AutopilotDeployCandidateOperator(
        task_id="deploy2",
        best_candidate=candidate(name=name),
        endpoint_name="ep",
        role_arn=ROLE_ARN,
        aws_conn_id=None,
    )
    gate = AutopilotPromotionBranchOperator(
        task_id="gate",
        best_candidate=candidate(),
        threshold=0.5,
        model_package_group_name=name,
        promote_task_ids="a",
        reject_task_ids="b",
        aws_conn_id=None,
    )
    for op, field in (
        (register, "model_package_group_name"),
        (deploy, "endpoint_name"),
        (named, "best_candidate.CandidateName"),
    ):
        with pytest.raises(PromotionInputError, match=XCOM_HINT) as raised:
            op.execute({})
        assert field in str(raised.value)
    with pytest.raises(PromotionInputError, match="model_package_group_name.*xcom_pull"):
        gate.choose_branch({"ti": RecordingTI()})
    assert_no_aws_call(emu)


def test_a_dict_job_name_is_reported_as_the_wrong_type_not_as_missing(emu):
    op = AutopilotBestCandidateOperator(task_id="t", job_name={"AutoMLJobName": "x"}, aws_conn_id=None)
    with pytest.raises(
        AutopilotValidationError, match=r"job_name: expected a string, got dict \{'AutoMLJobName'"
    ):
        op.execute({})
    assert_no_aws_call(emu)


# --- item: checked only after AWS calls -----------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"poll_interval": -1}, "poll_interval"),
        ({"poll_interval": math.nan}, "poll_interval"),  # 0 is allowed: raised to the documented floor
        ({"max_wait_seconds": -5}, "max_wait_seconds"),
        ({"max_wait_seconds": math.inf}, "max_wait_seconds"),
        ({"max_wait_seconds": math.nan, "deferrable": True}, "max_wait_seconds"),
    ],
)
def test_create_operator_checks_its_wait_settings_before_creating_the_job(emu, overrides, field):
    op = operator(**overrides)
    with pytest.raises(AutopilotValidationError, match=f"{field}: .* must be a finite number of seconds"):
        op.execute(make_context(op))
    assert_no_aws_call(emu)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": 10**12, "deferrable": True}, "timeout"),  # a deadline past year 9999
        ({"not_found_grace_seconds": -1}, "not_found_grace_seconds"),
        ({"candidate_interval": math.inf}, "candidate_interval"),
    ],
)
def test_sensor_checks_its_durations_before_any_call(emu, kwargs, field):
    s = sensor("good-name", **kwargs)
    with pytest.raises(AutopilotValidationError, match=f"Invalid AutopilotJobSensor arguments.*\n.*{field}"):
        s.execute(make_context(s))
    assert_no_aws_call(emu)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"timeout": math.inf, "deferrable": True}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"poke_interval": math.inf}, "poke_interval"),
    ],
)
def test_sensor_names_an_infinite_duration_airflow_cannot_take(kwargs, field):
    # Airflow's sensor constructor would raise a bare OverflowError; the message names the argument.
    with pytest.raises(AutopilotValidationError, match=f"{field}: inf must be a finite number of seconds"):
        sensor("good-name", **kwargs)


def test_candidates_operator_rejects_an_unknown_status(emu):
    op = AutopilotCandidatesOperator(task_id="t", job_name="job-1", status="Complete", aws_conn_id=None)
    with pytest.raises(AutopilotValidationError, match=r"status: 'Complete' must be one of \['Completed'"):
        op.execute({})
    assert_no_aws_call(emu)


@pytest.mark.parametrize("instance_type", ["ml.", "ml.m5", "m5.large", "ml..large", "ML.M5.LARGE"])
def test_deploy_rejects_a_malformed_instance_type_before_creating_a_model(emu, instance_type):
    op = AutopilotDeployCandidateOperator(
        task_id="deploy",
        best_candidate=candidate(),
        endpoint_name="ep",
        role_arn=ROLE_ARN,
        instance_type=instance_type,
        aws_conn_id=None,
    )
    with pytest.raises(PromotionInputError, match="instance_type"):
        op.execute({})
    assert_no_aws_call(emu)


@pytest.mark.parametrize(("field", "value"), [("poll_interval", -1), ("max_wait_seconds", math.inf)])
def test_deploy_checks_its_wait_settings_before_creating_a_model(emu, field, value):
    op = AutopilotDeployCandidateOperator(
        task_id="deploy",
        best_candidate=candidate(),
        endpoint_name="ep",
        role_arn=ROLE_ARN,
        aws_conn_id=None,
        **{field: value},
    )
    with pytest.raises(PromotionInputError, match=field):
        op.execute({})
    assert_no_aws_call(emu)


def test_deploy_result_checks_its_wait_settings_before_any_call(emu):
    op = AutopilotModelDeployResultOperator(
        task_id="t",
        job_name="job-1",
        wait_for_endpoint=True,
        poll_interval=-3,
        max_attempts=0,
        aws_conn_id=None,
    )
    with pytest.raises(AutopilotValidationError, match=r"(?s)poll_interval.*max_attempts"):
        op.execute({})
    assert_no_aws_call(emu)


@pytest.mark.parametrize(("metric", "kind"), [("F1", "Minimize"), ("RMSE", "Maximize")])
def test_gate_rejects_an_objective_type_that_contradicts_its_metric(emu, metric, kind):
    gate = AutopilotPromotionBranchOperator(
        task_id="gate",
        best_candidate=candidate(metric=metric, kind=kind, value=0.1),
        threshold=0.8,
        promote_task_ids="a",
        reject_task_ids="b",
        model_package_group_name="churn-models",
        aws_conn_id=None,
    )
    with pytest.raises(PromotionInputError, match=f"Type: '{kind}' contradicts the metric"):
        gate.choose_branch({"ti": RecordingTI()})
    assert_no_aws_call(emu)


# --- item: messages that named the wrong thing ----------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "parameter"),
    [
        ({"compression_type": "Zip"}, "compression_type"),
        ({"content_type": "application/json"}, "content_type"),
        ({"s3_data_type": "Folder"}, "s3_data_type"),
        ({"s3_input_uri": "file:///tmp/x"}, "s3_input_uri"),
        ({"validation_s3_input_uri": "nope"}, "validation_s3_input_uri"),
    ],
)
def test_channel_errors_name_the_parameter_that_set_the_field(emu, overrides, parameter):
    op = operator(**overrides)
    with pytest.raises(AutopilotValidationError) as raised:
        op.execute(make_context(op))
    assert raised.value.errors[0].endswith(f"(operator parameter: {parameter})"), raised.value.errors
    assert_no_aws_call(emu)


def test_channel_errors_name_input_data_config_when_it_was_given(emu):
    channel = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/train/"}},
        "TargetAttributeName": "churn",
        "CompressionType": "Zip",
    }
    op = operator(s3_input_uri=None, target_attribute_name=None, input_data_config=[channel])
    with pytest.raises(AutopilotValidationError) as raised:
        op.execute(make_context(op))
    assert raised.value.errors == [
        "InputDataConfig[0].CompressionType: 'Zip' must be one of ['Gzip', 'None'] "
        "(operator parameter: input_data_config)"
    ]


def test_sensor_accepts_a_single_status_string(emu, make_job):
    make_job("one-status")
    emu.advance(3600)
    s = sensor("one-status", success_statuses="Completed", failure_statuses="Failed")
    assert s.execute(make_context(s))["AutoMLJobStatus"] == "Completed"

"""The IAM policy data (core/permissions.py), the ``autopilot-iam-policy`` command and the pieces
that explain a denial: every class listed, scoped ARNs, AccessDenied errors that say what to do."""

from __future__ import annotations

import inspect
import json
import re

import pytest

from airflow_autopilot.core import permissions
from airflow_autopilot.core.errors import denied_action, explain_access_denied
from airflow_autopilot.core.permissions import (
    DOCS_PAGE,
    GRANTS,
    HOOK_METHODS,
    USES,
    Scope,
    UnknownClassError,
    operation_arn,
    policy_document,
)
from airflow_autopilot.emulator import controls
from airflow_autopilot.emulator.urls import json_auth_error
from tests.conftest import DAGS, ROOT

#: Hook members that make no AWS call.
NO_AWS_CALL = {"get_client_type", "config", "client", "time_limit", "s3", "connection_extras"}


def test_every_public_operator_sensor_and_trigger_has_its_statements():
    import airflow_autopilot.operators as operators
    import airflow_autopilot.sensors as sensors
    import airflow_autopilot.triggers as triggers

    classes = [getattr(operators, name) for name in operators.__all__ if name.endswith("Operator")]
    classes += [c for _, c in inspect.getmembers(sensors, inspect.isclass) if c.__name__.endswith("Sensor")]
    classes += [c for _, c in inspect.getmembers(triggers, inspect.isclass) if c.__name__.endswith("Trigger")]
    ours = {c.__name__ for c in classes if c.__module__.startswith("airflow_autopilot")}
    missing = ours - set(USES) - {"AutopilotBaseOperator", "AutopilotBaseTrigger"}
    assert not missing, f"add to core/permissions.USES: {sorted(missing)}"
    for name, sids in USES.items():
        assert sids and set(sids) <= set(GRANTS), name


def test_every_hook_method_that_calls_aws_has_its_statements():
    from airflow_autopilot.hooks import AutopilotHook, AutopilotModelHook

    for hook in (AutopilotHook, AutopilotModelHook):
        public = {n for n in vars(hook) if not n.startswith("_")} - NO_AWS_CALL - {"caller"}
        listed = {m.split(".")[1] for m in HOOK_METHODS if m.startswith(f"{hook.__name__}.")}
        assert public == listed, hook.__name__


def test_the_policy_is_scoped_to_the_names_given_and_wild_elsewhere():
    scope = Scope(
        region="eu-west-1",
        account="123456789012",
        job_prefixes={"Churn*"},
        buckets={"data"},
        roles={"arn:aws:iam::123456789012:role/Autopilot"},
    )
    policy = policy_document(["AutopilotCreateJobOperator", "AutopilotDeployCandidateOperator"], scope)
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert policy["Version"] == "2012-10-17"
    # SageMaker lowercases names in its ARNs.
    assert (
        statements["CreateAutoMLJob"]["Resource"]
        == "arn:aws:sagemaker:eu-west-1:123456789012:automl-job/churn*"
    )
    assert statements["ListAutoMLJobs"]["Resource"] == "*"
    assert statements["ReadTrainingData"]["Resource"] == "arn:aws:s3:::data"
    assert statements["ReadObjects"]["Resource"] == "arn:aws:s3:::data/*"
    assert statements["Endpoints"]["Resource"] == "arn:aws:sagemaker:eu-west-1:123456789012:endpoint/*"
    passrole = statements["PassRoleToSageMaker"]
    assert passrole["Action"] == ["iam:PassRole"]
    assert passrole["Resource"] == "arn:aws:iam::123456789012:role/Autopilot"
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # ReadEndpoint is a narrower copy of Endpoints: left out while Endpoints is in.
    assert "ReadEndpoint" not in statements
    both = ["AutopilotRegisterCandidateOperator", "AutopilotModelApprovalSensor"]
    assert "ReadModelPackage" not in {s["Sid"] for s in policy_document(both)["Statement"]}
    without = {s["Sid"] for s in policy_document(both, omit=["ModelPackages"])["Statement"]}
    assert "ModelPackages" not in without and "ReadModelPackage" in without


def test_an_unknown_class_is_named_with_the_known_ones():
    with pytest.raises(
        UnknownClassError, match=r"operators: 'S3CopyObjectOperator' is not one of .*AutopilotJobSensor"
    ):
        policy_document(["AutopilotJobSensor", "S3CopyObjectOperator"])


def test_the_coalesced_poller_statement_is_explained():
    grant = GRANTS["ListAutoMLJobs"]
    assert grant.actions == ("sagemaker:ListAutoMLJobs",)
    assert "coalesced poller" in grant.why and grant.without
    assert "ListAutoMLJobs" in USES["AutopilotJobSensor"] and "ListAutoMLJobs" in USES["AutopilotJobTrigger"]


@pytest.mark.parametrize(
    ("operation", "params", "arn"),
    [
        (
            "DescribeAutoMLJob",
            {"AutoMLJobName": "Churn-1"},
            "arn:aws:sagemaker:us-east-1:111122223333:automl-job/churn-1",
        ),
        ("ListAutoMLJobs", {}, "*"),
        (
            "CreateModelPackage",
            {"ModelPackageGroupName": "G"},
            "arn:aws:sagemaker:us-east-1:111122223333:model-package/g/*",
        ),
        (
            "AddTags",
            {"ResourceArn": "arn:aws:sagemaker:us-east-1:1:endpoint/E"},
            "arn:aws:sagemaker:us-east-1:1:endpoint/E",
        ),
        ("DescribeEndpoint", {"EndpointName": 3}, "*"),
    ],
)
def test_the_resource_a_request_acts_on(operation, params, arn):
    assert operation_arn(operation, params, "us-east-1", "111122223333") == arn


def test_every_operation_with_a_resource_names_a_known_kind():
    kinds = set(permissions.RESOURCE_PATTERNS) | {"arn"}
    for operation, target in permissions.OPERATION_RESOURCES.items():
        assert target is None or target[0] in kinds, operation
    listed = {a.split(":")[1] for g in GRANTS.values() for a in g.actions if a.startswith("sagemaker:")}
    assert listed <= set(permissions.OPERATION_RESOURCES), listed - set(permissions.OPERATION_RESOURCES)


def test_a_denial_hint_names_the_statement_the_classes_and_the_docs():
    hint = permissions.denial_hint("sagemaker:CreateModel")
    assert "statement 'Models'" in hint and DOCS_PAGE in hint and "autopilot-iam-policy" in hint
    assert "AutopilotDeployCandidateOperator" in hint and "AutopilotBatchTransformOperator" in hint
    assert "AutopilotModelHook" not in hint
    assert "not an action this package calls" in permissions.denial_hint("ec2:RunInstances")


def test_a_client_raises_access_denied_explained_and_keeps_its_code():
    import boto3
    from botocore.exceptions import ClientError
    from botocore.stub import Stubber

    client = boto3.client(
        "sagemaker", region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    explain_access_denied(client, "AutopilotJobSensor")
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "describe_auto_ml_job",
            service_error_code="AccessDeniedException",
            service_message="User: arn:aws:iam::1:user/u is not authorized to perform: sagemaker:DescribeAutoMLJob",
        )
        stubber.add_client_error(
            "describe_auto_ml_job", service_error_code="ValidationException", service_message="no"
        )
        with pytest.raises(ClientError) as denied:
            client.describe_auto_ml_job(AutoMLJobName="j")
        with pytest.raises(ClientError) as other:
            client.describe_auto_ml_job(AutoMLJobName="j")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    text = str(denied.value)
    assert (
        "AutopilotJobSensor cannot run" in text and "statement 'ReadAutoMLJob'" in text and DOCS_PAGE in text
    )
    assert str(other.value).endswith("no")


def test_the_denied_action_comes_from_the_message_or_the_operation():
    assert (
        denied_action("User: x is not authorized to perform: s3:GetObject on resource", "Op")
        == "s3:GetObject"
    )
    assert denied_action("Access Denied", "CreateModel") == "sagemaker:CreateModel"


def test_the_emulator_answers_an_access_error_as_sagemaker_does():
    xml = (
        b'<?xml version="1.0"?><ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>User: '
        b"arn:aws:iam::123456789012:user/u is not authorized to perform: sagemaker:StopAutoMLJob"
        b"</Message></Error></Errors></ErrorResponse>"
    )
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/20260101/eu-west-1/sagemaker/aws4_request, x"
    }
    status, answer_headers, body = json_auth_error((403, {}, xml), {"AutoMLJobName": "J"}, headers)
    error = json.loads(body)
    assert (status, error["__type"], answer_headers["X-Amzn-Errortype"]) == (
        400,
        "AccessDeniedException",
        "AccessDeniedException",
    )
    assert error["message"].endswith(
        "sagemaker:StopAutoMLJob on resource: arn:aws:sagemaker:eu-west-1:123456789012:automl-job/j "
        "because no identity-based policy allows the sagemaker:StopAutoMLJob action"
    )
    ok = (200, {}, b"{}")
    assert json_auth_error(ok, {}, headers) is ok


def test_request_observers_see_each_operation_until_removed():
    seen: list[tuple[str, str]] = []
    remove = controls.observe_requests(lambda op, agent: seen.append((op, agent)))
    controls.count_request("DescribeAutoMLJob", "Boto3/1 Airflow/3 Caller/X")
    remove()
    controls.count_request("DescribeAutoMLJob")
    assert seen == [("DescribeAutoMLJob", "Boto3/1 Airflow/3 Caller/X")]


def test_the_command_prints_a_policy_for_named_operators(capsys):
    from airflow_autopilot.iam import main

    assert (
        main(["--operators", "AutopilotJobSensor", "--job-name-prefix", "nightly", "--region", "us-east-1"])
        == 0
    )
    policy = json.loads(capsys.readouterr().out)
    assert [s["Sid"] for s in policy["Statement"]] == ["ReadAutoMLJob", "ListAutoMLJobs"]
    assert policy["Statement"][0]["Resource"] == "arn:aws:sagemaker:us-east-1:*:automl-job/nightly*"
    with pytest.raises(SystemExit) as bad:
        main(["--operators", "NoSuchOperator"])
    assert bad.value.code == 2
    assert "operators: 'NoSuchOperator' is not one of" in capsys.readouterr().err


def _documented_policies() -> dict[str, dict]:
    text = (ROOT / "docs" / "security.md").read_text()
    return {
        dag_id: json.loads(block)
        for dag_id, block in re.findall(r"^### (example_\w+)\n\n```json\n(.*?)\n```", text, re.S | re.M)
    }


def test_docs_security_shows_the_generated_policy_of_every_example_dag():
    from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS
    from airflow_autopilot.iam import dag_policy, load_dags

    documented = _documented_policies()
    dags = [dag for path in sorted(DAGS.glob("example_*.py")) for dag in load_dags(path)]
    generated = {dag.dag_id: dag_policy(dag) for dag in dags}
    if not AIRFLOW_V_3_0_PLUS:
        # The page shows the event-driven DAGs' policies with their AssetWatchers (Airflow 3).
        documented.update({d.dag_id: generated[d.dag_id] for d in dags if "event-driven" in d.tags})
    # An Airflow without the HITL operator (before 3.1) defines no approval DAG; every other one is here.
    assert set(generated) <= set(documented), "document the new example DAGs' policies in docs/security.md"
    assert set(documented) - set(generated) <= {"example_autopilot_hitl_approval"}
    assert {dag_id: documented[dag_id] for dag_id in generated} == generated, (
        "regenerate the policies in docs/security.md with autopilot-iam-policy"
    )
    assert "security.md" in (ROOT / "mkdocs.yml").read_text()


ENDPOINT_CONSTANT = "scoring-endpoint"


def test_a_task_body_calling_the_hooks_needs_what_those_methods_need():
    from airflow_autopilot.hooks import AutopilotModelHook
    from airflow_autopilot.iam import HookCall, task_hook_calls

    def body(version: dict) -> None:
        hook = AutopilotModelHook()
        package = hook.describe_model_package(version["arn"])
        hook.deploy(ENDPOINT_CONSTANT, model_name=package["Name"], config_name="fixed-config")
        hook.client.update_model_package()  # the raw client: not a hook method
        print(len(version))  # not a hook call at all

    calls = task_hook_calls(body)
    assert [c.method for c in calls] == [
        "AutopilotModelHook.describe_model_package",
        "AutopilotModelHook.deploy",
    ]
    # Literals and module constants are read; what is computed at run time is unknown (None).
    assert calls[1] == HookCall(
        "AutopilotModelHook.deploy",
        {"endpoint_name": ENDPOINT_CONSTANT, "model_name": None, "config_name": "fixed-config"},
    )

    def inherited() -> None:
        AutopilotModelHook().describe_auto_ml_job("j")

    def no_hook() -> None:
        print("describe_model_package")

    # A method a subclass inherits is listed under the class that defines it.
    assert task_hook_calls(inherited) == [HookCall("AutopilotHook.describe_auto_ml_job", {"job_name": "j"})]
    assert task_hook_calls(no_hook) == []
    assert task_hook_calls(print) == []  # no source to read
    assert task_hook_calls(None) == []  # not a @task


def test_a_dag_policy_covers_its_watchers_and_its_task_bodies_hook_calls():
    from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS
    from airflow_autopilot.iam import dag_needs, dag_policy, load_dags

    approval = load_dags(DAGS / "example_autopilot_deploy_on_approval.py")[0]
    policy = {s["Sid"]: s for s in dag_policy(approval)["Statement"]}
    # The deploy @task's hook.describe_model_package and hook.deploy, the role it passes.
    assert {"ReadModelPackage", "Models", "EndpointConfigs", "Endpoints", "PassRoleToSageMaker"} <= set(
        policy
    )
    assert policy["Endpoints"]["Resource"] == "arn:aws:sagemaker:*:*:endpoint/autopilot-approved"
    assert policy["PassRoleToSageMaker"]["Resource"] == "arn:aws:iam::123456789012:role/SageMakerAutopilot"
    # Its model and endpoint config are named after the version at run time: any name.
    assert policy["EndpointConfigs"]["Resource"] == "arn:aws:sagemaker:*:*:endpoint-config/*"
    assert policy["Models"]["Resource"] == "arn:aws:sagemaker:*:*:model/*"
    events = load_dags(DAGS / "example_autopilot_event_driven.py")[0]
    needs = dag_needs(events)
    if not AIRFLOW_V_3_0_PLUS:  # no AssetWatcher: nothing runs in the triggerer for these DAGs
        assert "AutopilotJobCompletedTrigger" not in needs.classes
        return
    assert policy["ReceiveQueueMessages"]["Resource"] == "arn:aws:sqs:*:*:autopilot-approvals"
    # The watcher's ListAutoMLJobs, describes and acknowledgement tag, on the jobs it watches.
    assert "AutopilotJobCompletedTrigger" in needs.classes
    statements = {s["Sid"]: s for s in dag_policy(events)["Statement"]}
    assert {"ListAutoMLJobs", "ReadAutoMLJob", "AcknowledgeJobEvents"} <= set(statements)
    assert statements["AcknowledgeJobEvents"]["Resource"] == "arn:aws:sagemaker:*:*:automl-job/studio-*"


def test_a_name_a_task_body_computes_widens_the_names_other_tasks_show():
    from types import SimpleNamespace

    from airflow_autopilot.hooks import AutopilotModelHook
    from airflow_autopilot.iam import dag_needs

    def body(version: dict) -> None:
        AutopilotModelHook().ensure_model(version["name"], "arn:aws:iam::123456789012:role/R", [], [])

    operator = SimpleNamespace(model_name="fixed-model", endpoint_name="served")
    dag = SimpleNamespace(tasks=[operator, SimpleNamespace(python_callable=body)], params={}, timetable=None)
    needs = dag_needs(dag)
    assert needs.methods == ["AutopilotModelHook.ensure_model"]
    # The body's model is named at run time: any model, not only the operator's.
    assert needs.scope.models is None and needs.scope.endpoints == {"served"}
    assert needs.scope.roles == {"arn:aws:iam::123456789012:role/R"}
    dag.tasks = [operator]
    assert dag_needs(dag).scope.models == {"fixed-model"}

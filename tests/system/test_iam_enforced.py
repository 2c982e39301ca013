"""Example DAGs with IAM enforced by the emulator, run by a user holding exactly the policy that
``autopilot-iam-policy`` prints for them (docs/security.md)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from airflow_autopilot.core.permissions import DOCS_PAGE, GRANTS
from airflow_autopilot.demo.runner import load_dag_file, task_states
from airflow_autopilot.emulator.handle import DEFAULT_REGION
from airflow_autopilot.emulator.server import airflow_conn_value
from airflow_autopilot.iam import dag_policy
from tests.conftest import DAGS

ACCOUNT = "123456789012"
BUCKET = "autopilot-example"
#: The example DAG's own @task (upload_sample_data) writes its training data: a permission of the
#: DAG, not of this package's operators, so the generator does not print it.
UPLOAD_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ExampleUploadsItsData",
            "Effect": "Allow",
            "Action": ["s3:CreateBucket", "s3:ListBucket", "s3:PutObject"],
            "Resource": [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"],
        },
        {
            # Its @task create_rollback_alarm sets up the alarm the deploy watches.
            "Sid": "ExampleCreatesItsAlarm",
            "Effect": "Allow",
            "Action": ["cloudwatch:PutMetricAlarm"],
            "Resource": "*",
        },
    ],
}


@pytest.fixture
def promotion(autopilot_emulator_iam, autopilot_emulator_server, monkeypatch):
    """The promotion DAG with fast stages, and a function that makes a user with its generated
    policy (less the statements named) and points Airflow's connection at the user's keys."""
    autopilot_emulator_server.configure(stage_seconds=0.05)
    monkeypatch.setenv("AUTOPILOT_EXAMPLE_POLL_SECONDS", "0.2")
    dag = load_dag_file(DAGS / "example_autopilot_promotion.py", "example_autopilot_promotion")

    def as_user(*omit: str):
        policy = dag_policy(dag, region=DEFAULT_REGION, account=ACCOUNT, omit=omit)
        keys = autopilot_emulator_iam.create_user("dag-runner", policy, UPLOAD_POLICY)
        conn = airflow_conn_value(autopilot_emulator_server.endpoint_url, DEFAULT_REGION, keys)
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", conn)
        return policy

    return dag, as_user


def test_the_promotion_dag_succeeds_under_exactly_its_generated_policy(
    promotion, autopilot_emulator_iam, run_dag
):
    dag, as_user = promotion
    policy = as_user()
    resources = {s["Sid"]: s["Resource"] for s in policy["Statement"]}
    # Scoped to what the DAG names: job prefix, bucket, group, endpoint, role.
    assert resources["CreateAutoMLJob"].endswith(":automl-job/churn*")
    assert resources["ModelPackageGroup"].endswith(":model-package-group/autopilot-churn")
    assert resources["Endpoints"].endswith(":endpoint/autopilot-churn")
    assert resources["ReadObjects"] == f"arn:aws:s3:::{BUCKET}/*"
    assert (
        resources["PassRoleToSageMaker"].startswith("arn:aws:iam::")
        and "*" not in resources["PassRoleToSageMaker"]
    )

    dag_run, xcoms = run_dag(dag)

    states = task_states(dag_run)
    assert dag_run.state == "success", states
    assert states["deploy"] == "success" and states["register"] == "success"
    endpoint = autopilot_emulator_iam.client().describe_endpoint(EndpointName="autopilot-churn")
    assert endpoint["EndpointStatus"] == "InService"


def printed_text(capfd, caplog) -> str:
    """What the run printed and logged, whitespace and Airflow 3.0's box lines folded."""
    output = capfd.readouterr()
    return re.sub(r"[\s│]+", " ", output.out + output.err + caplog.text)


def test_a_denied_create_fails_naming_action_operator_and_docs_and_creates_nothing(
    promotion, autopilot_emulator_iam, run_dag, capfd, caplog
):
    dag, as_user = promotion
    as_user("CreateAutoMLJob")

    dag_run, _ = run_dag(dag)

    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["create_job"] == "failed" and states["wait_for_job"] == "upstream_failed", states
    printed = printed_text(capfd, caplog)
    assert "not authorized to perform: sagemaker:CreateAutoMLJob on resource: arn:aws:sagemaker:" in printed
    assert "AutopilotCreateJobOperator cannot run" in printed
    assert "statement 'CreateAutoMLJob'" in printed and DOCS_PAGE in printed
    assert autopilot_emulator_iam.client().list_auto_ml_jobs()["AutoMLJobSummaries"] == []


@pytest.mark.slow
def test_a_denied_deploy_fails_naming_action_operator_and_docs_and_creates_nothing(
    promotion, autopilot_emulator_iam, run_dag, capfd, caplog
):
    dag, as_user = promotion
    as_user("Models")

    dag_run, _ = run_dag(dag)

    states = task_states(dag_run)
    assert dag_run.state == "failed"
    assert states["deploy"] == "failed" and states["register"] == "success", states
    printed = printed_text(capfd, caplog)
    # The DAG's smoke test needs ReadModel (sagemaker:DescribeModel), so the policy still lets the
    # deploy look its model up: the first refused call is CreateModel.
    assert "not authorized to perform: sagemaker:CreateModel" in printed
    assert "AutopilotDeployCandidateOperator cannot run" in printed
    assert "statement 'Models'" in printed and DOCS_PAGE in printed
    # Nothing half-created: the denied deploy left no model, endpoint config or endpoint.
    sm = autopilot_emulator_iam.client()
    assert sm.list_models()["Models"] == []
    assert sm.list_endpoint_configs()["EndpointConfigs"] == []
    assert sm.list_endpoints()["Endpoints"] == []


PROMOTION_STATEMENTS = [
    "CreateAutoMLJob",
    "ReadAutoMLJob",
    "StopAutoMLJob",
    "ListAutoMLJobs",
    "PassRoleToSageMaker",
    "ReadTrainingData",
    "ReadObjects",
    "ModelPackageGroup",
    "ModelPackages",
    "ListModelPackages",
    "Models",
    "EndpointConfigs",
    "Endpoints",
]


@pytest.mark.slow
@pytest.mark.parametrize("sid", PROMOTION_STATEMENTS)
def test_each_statement_removed_in_turn_fails_a_task_by_name_or_only_costs(
    sid, promotion, autopilot_emulator_iam, run_dag, capfd, caplog
):
    dag, as_user = promotion
    policy = as_user(sid)
    assert sid not in {s["Sid"] for s in policy["Statement"]}

    dag_run, _ = run_dag(dag)

    printed = printed_text(capfd, caplog)
    grant = GRANTS[sid]
    if dag_run.state == "success":
        # Not a silent gap: the statement says what its absence costs instead of a failure, or it
        # is S3's, which a DAG need not reach (lineage reads only what it may).
        assert grant.without or grant.resource.startswith("s3"), sid
        return
    denied = re.findall(r"not authorized to perform: (\S+)", printed)
    if grant.resource.startswith("s3"):
        # S3's AccessDenied names no action: the explanation names it from the operation.
        assert re.search(r"the policy lacks (s3:\w+)", printed), sid
    else:
        assert denied and set(denied) <= set(grant.actions), (sid, denied)
    assert f"statement '{sid}'" in printed and DOCS_PAGE in printed


def test_every_statement_is_explained():
    for grant in GRANTS.values():
        assert grant.why and grant.actions, grant


#: What the example DAGs' own @tasks need besides the generated policy: the promotion DAG's upload
#: (above), and the one-click DAG's smoke check, which describes and invokes the endpoint itself.
#: (On AWS this would be ``endpoint/*``; moto checks sagemaker-runtime requests against ``*``.)
SMOKE_CHECK_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "ExampleSmokeCheck",
            "Effect": "Allow",
            "Action": ["sagemaker:DescribeEndpoint", "sagemaker:InvokeEndpoint"],
            "Resource": "*",
        }
    ],
}


@pytest.fixture
def example(autopilot_emulator_iam, autopilot_emulator_server, monkeypatch):
    """Load an example DAG and point Airflow's connection at a user holding exactly its generated
    policy (plus what its own @tasks need); ``as_admin`` points it at the admin instead."""
    autopilot_emulator_server.configure(stage_seconds=0.05)
    monkeypatch.setenv("AUTOPILOT_EXAMPLE_POLL_SECONDS", "0.2")
    users = iter(range(100))

    def connect(keys):
        conn = airflow_conn_value(autopilot_emulator_server.endpoint_url, DEFAULT_REGION, keys)
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", conn)

    def as_user(name: str, *extra: dict, omit: tuple[str, ...] = ()):
        dag = load_dag_file(DAGS / f"{name}.py", name)
        policy = dag_policy(dag, region=DEFAULT_REGION, account=ACCOUNT, omit=omit)
        connect(autopilot_emulator_iam.create_user(f"runner-{next(users)}", policy, UPLOAD_POLICY, *extra))
        return dag

    def as_admin(name: str):
        connect(autopilot_emulator_iam.admin_keys)
        return load_dag_file(DAGS / f"{name}.py", name)

    return SimpleNamespace(as_user=as_user, as_admin=as_admin)


def queue_endpoint_answer(server, body: str) -> None:
    """Queue what the next InvokeEndpoint answers (moto's documented results API)."""
    import requests

    queued = requests.post(
        f"{server.endpoint_url}/moto-api/static/sagemaker/endpoint-results",
        json={
            "account_id": ACCOUNT,
            "region": DEFAULT_REGION,
            "results": [{"Body": body, "ContentType": "text/csv", "InvokedProductionVariant": "AllTraffic"}],
        },
        timeout=10,
    )
    assert queued.status_code == 201, queued.text


@pytest.mark.slow
def test_the_forecast_dag_succeeds_under_exactly_its_generated_policy(example, run_dag):
    dag_run, _ = run_dag(example.as_user("example_autopilot_forecast"))
    assert dag_run.state == "success", task_states(dag_run)


@pytest.mark.slow
def test_the_one_click_deploy_dag_succeeds_under_exactly_its_generated_policy(
    example, autopilot_emulator_server, run_dag
):
    queue_endpoint_answer(autopilot_emulator_server, "yes,0.87")
    dag_run, xcoms = run_dag(example.as_user("example_autopilot_one_click_deploy", SMOKE_CHECK_POLICY))
    assert dag_run.state == "success", task_states(dag_run)
    assert xcoms["smoke_check"]["Prediction"] == ["yes", "0.87"]


@pytest.mark.slow
def test_the_watch_existing_job_dag_succeeds_under_exactly_its_generated_policy(
    example, autopilot_emulator_iam, make_job, run_dag
):
    autopilot_emulator_iam.stop()  # the job is made with the emulator's default keys
    make_job("watched-job")
    autopilot_emulator_iam.start()
    dag = example.as_user("example_autopilot_watch_existing_job")
    dag_run, xcoms = run_dag(dag, run_conf={"job_name": "watched-job"})
    assert dag_run.state == "success", task_states(dag_run)
    assert xcoms["wait_for_job"]["AutoMLJobStatus"] == "Completed"


@pytest.mark.slow
def test_the_nightly_scoring_dag_succeeds_under_exactly_its_generated_policy(
    example, autopilot_emulator_iam, run_dag
):
    trained, _ = run_dag(example.as_admin("example_autopilot_promotion"))  # an Approved version
    assert trained.state == "success", task_states(trained)
    models_before = {m["ModelName"] for m in autopilot_emulator_iam.client().list_models()["Models"]}

    dag_run, xcoms = run_dag(example.as_user("example_autopilot_nightly_scoring"))

    assert dag_run.state == "success", task_states(dag_run)
    assert xcoms["score"]["TransformJobStatus"] == "Completed"
    assert {m["ModelName"] for m in autopilot_emulator_iam.client().list_models()["Models"]} >= models_before


@pytest.mark.slow
@pytest.mark.parametrize("sid", ["TransformJobs", "PassRoleToSageMaker"])
def test_a_refused_batch_transform_names_the_statement_and_leaves_no_model(
    sid, example, autopilot_emulator_iam, run_dag, capfd, caplog
):
    trained, _ = run_dag(example.as_admin("example_autopilot_promotion"))  # an Approved version
    assert trained.state == "success", task_states(trained)
    sm = autopilot_emulator_iam.client()
    # The deploy's model is the one scoring would reuse: without it, scoring creates its own.
    for model in sm.list_models()["Models"]:
        sm.delete_model(ModelName=model["ModelName"])

    dag_run, _ = run_dag(example.as_user("example_autopilot_nightly_scoring", omit=(sid,)))

    assert task_states(dag_run)["score"] == "failed"
    printed = printed_text(capfd, caplog)
    assert "AutopilotBatchTransformOperator cannot run" in printed
    assert f"statement '{sid}'" in printed and DOCS_PAGE in printed
    # The model the refused try created was deleted (or, without PassRole, never created).
    assert sm.list_models()["Models"] == []
    assert not [
        j
        for j in sm.list_transform_jobs()["TransformJobSummaries"]
        if j["TransformJobName"].startswith("score-")
    ]

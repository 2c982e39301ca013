"""Lineage without AWS: asset URIs, OpenLineage identities, the metadata of asset events, the
outlets the operators declare and the events they add, and the downstream example's task."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from airflow_autopilot._compat import AIRFLOW_V_3_0_PLUS
from airflow_autopilot.assets import (
    ENDPOINT_ALIAS,
    JOB_OUTPUT_ALIAS,
    MODEL_PACKAGE_GROUP_ALIAS,
    asset_alias,
    endpoint_asset,
    model_package_group_asset,
    s3_asset,
)
from airflow_autopilot.core.lineage import (
    Channel,
    LineageDataset,
    LineageError,
    ResourceArn,
    TaskLineage,
    approval_lineage,
    candidate_inputs,
    csv_header,
    deployment_lineage,
    job_output_prefix,
    openlineage_identity,
    registration_lineage,
    request_channels,
    score_extra,
)
from airflow_autopilot.demo.runner import load_dag_file
from airflow_autopilot.operators import (
    AutopilotCreateJobOperator,
    AutopilotDeployCandidateOperator,
    AutopilotRegisterCandidateOperator,
)
from tests.airflow_versions import alias_events, outlet_event_accessors
from tests.conftest import DAGS
from tests.helpers import candidate

PACKAGE_ARN = "arn:aws:sagemaker:eu-west-1:111122223333:model-package/churn/7"
ENDPOINT_ARN = "arn:aws:sagemaker:eu-west-1:111122223333:endpoint/churn-live"
OUT = "s3://data/churn/output"
JOB = "churn-0123456789ab"
CONTAINERS = [
    {"Image": "p", "ModelDataUrl": f"{OUT}/{JOB}/data-processor-models/p1/output/model.tar.gz"},
    {"Image": "a", "ModelDataUrl": f"{OUT}/{JOB}/tuning/{JOB}-t001/c1/output/model.tar.gz"},
    {"Image": "i", "ModelDataUrl": f"{OUT}/{JOB}/data-processor-models/p1/output/model.tar.gz"},
]


def test_sagemaker_uris_put_account_and_region_in_the_authority():
    assert model_package_group_asset("churn", account_id="111122223333", region="eu-west-1").uri == (
        "sagemaker://111122223333.eu-west-1/model-package-group/churn"
    )
    assert endpoint_asset("churn-live", account_id="111122223333", region="eu-west-1").uri == (
        "sagemaker://111122223333.eu-west-1/endpoint/churn-live"
    )
    assert ResourceArn.parse(PACKAGE_ARN).uri == "sagemaker://111122223333.eu-west-1/model-package/churn/7"
    assert s3_asset("s3://data/churn/output/").uri == OUT


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"account_id": "1234", "region": "us-east-1"}, "account_id: '1234' must be a 12-digit"),
        ({"account_id": "111122223333", "region": "useast"}, "region: 'useast' must be an AWS region"),
    ],
)
def test_asset_helpers_name_the_bad_argument(kwargs, message):
    with pytest.raises(LineageError, match=message):
        model_package_group_asset("churn", **kwargs)


def test_arns_and_uris_that_are_not_sagemaker_or_s3_are_refused_by_field():
    with pytest.raises(LineageError, match="EndpointArn: 'arn:aws:s3:::bucket' is not a SageMaker ARN"):
        ResourceArn.parse("arn:aws:s3:::bucket", "EndpointArn")
    with pytest.raises(LineageError, match="neither an s3:// nor a sagemaker://"):
        openlineage_identity("gs://bucket/key")
    with pytest.raises(LineageError, match="names no bucket"):
        openlineage_identity("s3:///key")


def test_openlineage_identity_follows_the_provider_convention():
    assert openlineage_identity("s3://data/churn/train/") == ("s3://data", "churn/train")
    assert openlineage_identity("s3://data") == ("s3://data", "/")
    assert openlineage_identity("sagemaker://111122223333.eu-west-1/endpoint/e") == (
        "sagemaker://111122223333.eu-west-1",
        "endpoint/e",
    )


def test_job_output_prefix_is_read_back_from_an_artifact():
    assert job_output_prefix(CONTAINERS[0]["ModelDataUrl"], JOB) == OUT
    assert job_output_prefix("s3://data/elsewhere/model.tar.gz", JOB) is None
    assert job_output_prefix(f"s3://{JOB}/x", JOB) is None
    inputs = [d.uri for d in candidate_inputs(CONTAINERS, JOB)]
    assert inputs == [OUT, CONTAINERS[0]["ModelDataUrl"], CONTAINERS[1]["ModelDataUrl"]]
    assert [d.uri for d in candidate_inputs(CONTAINERS, None)] == inputs[1:]


@pytest.mark.parametrize(
    ("first_bytes", "columns"),
    [
        (b"age,plan,churn\n34,basic,0\n", ["age", "plan", "churn"]),
        (b'\xef\xbb\xbf"age","monthly fee",churn\r\n1,2,3', ["age", "monthly fee", "churn"]),
        (b"34,12.5,0\n35,11,1\n", None),  # no header: all numbers
        (b"age,,churn\n", None),
        (b"", None),
    ],
)
def test_csv_header(first_bytes, columns):
    assert csv_header(first_bytes) == columns


def test_request_channels_and_which_have_a_readable_header():
    request = {
        "InputDataConfig": [
            {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://lineage-data/train/"}
                },
                "TargetAttributeName": "churn",
            },
            {
                "ChannelType": "validation",
                "CompressionType": "Gzip",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://lineage-data/val"}},
            },
        ]
    }
    training, validation = request_channels(request)
    assert (training.uri, training.channel_type, training.is_csv_prefix) == (
        "s3://lineage-data/train",
        "training",
        True,
    )
    assert (validation.uri, validation.channel_type, validation.is_csv_prefix) == (
        "s3://lineage-data/val",
        "validation",
        False,
    )
    assert not Channel("s3://d/m", s3_data_type="ManifestFile").is_csv_prefix
    assert not Channel("s3://d/p", content_type="x-application/vnd.amazon+parquet").is_csv_prefix


def test_registration_and_deployment_lineage_carry_the_metadata():
    score = score_extra("c1", "F1", 0.91)
    registered = registration_lineage(
        job_name=JOB,
        group_name="churn",
        containers=CONTAINERS,
        score=score,
        package_arn=PACKAGE_ARN,
        version=7,
        approval_status="Approved",
    )
    assert registered.asset_uri == "sagemaker://111122223333.eu-west-1/model-package-group/churn"
    assert [d.uri for d in registered.outputs] == ["sagemaker://111122223333.eu-west-1/model-package/churn/7"]
    assert registered.inputs[0].uri == OUT
    assert registered.extra == {
        "job_name": JOB,
        "candidate_name": "c1",
        "objective_metric": "F1",
        "objective_value": 0.91,
        "model_package_group": "churn",
        "model_package_arn": PACKAGE_ARN,
        "model_package_version": 7,
        "approval_status": "Approved",
    }
    deployed = deployment_lineage(
        endpoint_name="churn-live",
        endpoint_arn=ENDPOINT_ARN,
        config_name="cfg",
        model_name="m",
        containers=CONTAINERS,
        score=score,
        model_package_arn=PACKAGE_ARN,
    )
    assert deployed.asset_uri == "sagemaker://111122223333.eu-west-1/endpoint/churn-live"
    assert deployed.inputs[0].uri == registered.outputs[0].uri  # package -> endpoint
    assert (
        deployed.extra["endpoint_config_name"] == "cfg" and deployed.extra["model_package_arn"] == PACKAGE_ARN
    )
    without_package = deployment_lineage(
        endpoint_name="churn-live",
        endpoint_arn=ENDPOINT_ARN,
        config_name="cfg",
        model_name="m",
        containers=CONTAINERS,
        score=score,
    )
    assert "model_package_arn" not in without_package.extra
    assert [d.uri for d in without_package.inputs] == [c["ModelDataUrl"] for c in CONTAINERS[:2]]


def test_the_group_event_means_an_approved_version():
    pending = registration_lineage(
        job_name=JOB,
        group_name="churn",
        containers=CONTAINERS,
        score=score_extra("c1", "F1", 0.91),
        package_arn=PACKAGE_ARN,
        version=7,
        approval_status="PendingManualApproval",
    )
    # Registered, waiting for a person: lineage (the version) but no "new approved model" event.
    assert pending.asset_uri is None and pending.outputs
    package = {
        "ModelPackageArn": PACKAGE_ARN,
        "ModelPackageGroupName": "churn",
        "ModelPackageVersion": 7,
        "ModelApprovalStatus": "Approved",
        "CustomerMetadataProperties": {
            "autopilot:job-name": JOB,
            "autopilot:candidate-name": "c1",
            "autopilot:objective-metric": "F1",
            "autopilot:objective-value": "0.91",
        },
    }
    approved = approval_lineage(package)
    assert approved.asset_uri == "sagemaker://111122223333.eu-west-1/model-package-group/churn"
    assert approved.extra == {**pending.extra, "approval_status": "Approved"}
    assert approval_lineage({**package, "ModelApprovalStatus": "Rejected"}).asset_uri is None
    with pytest.raises(LineageError, match="ModelPackageArn"):
        approval_lineage({**package, "ModelPackageArn": "not-an-arn"})


def test_approval_sensor_emits_the_group_event_once_approved():
    from airflow_autopilot.sensors import AutopilotModelApprovalSensor

    def sensor(**kwargs):
        return AutopilotModelApprovalSensor(task_id="approval", model_package_arn=PACKAGE_ARN, **kwargs)

    assert sensor().outlets == []
    assert sensor(emit_asset_events=True).outlets == [asset_alias(MODEL_PACKAGE_GROUP_ALIAS)]
    events = outlet_event_accessors()
    package = {"ModelPackageArn": PACKAGE_ARN, "ModelPackageVersion": 7, "ModelApprovalStatus": "Approved"}
    result = sensor(emit_asset_events=True)._approved({"outlet_events": events}, package)
    assert result == package
    assert alias_events(events, asset_alias(MODEL_PACKAGE_GROUP_ALIAS)) == [
        (
            "sagemaker://111122223333.eu-west-1/model-package-group/churn",
            {
                "model_package_group": "churn",
                "model_package_arn": PACKAGE_ARN,
                "model_package_version": 7,
                "approval_status": "Approved",
            },
        )
    ]


def register_operator(**kwargs):
    kwargs.setdefault("best_candidate", candidate())
    return AutopilotRegisterCandidateOperator(
        task_id="register",
        job_name=JOB,
        model_package_group_name="churn",
        **kwargs,
    )


def deploy_operator(**kwargs):
    return AutopilotDeployCandidateOperator(
        task_id="deploy",
        best_candidate=candidate(),
        endpoint_name="churn-live",
        role_arn="arn:aws:iam::111122223333:role/r",
        **kwargs,
    )


@pytest.mark.parametrize(
    ("build", "alias"),
    [
        (lambda **kw: AutopilotCreateJobOperator(task_id="create", **kw), JOB_OUTPUT_ALIAS),
        (register_operator, MODEL_PACKAGE_GROUP_ALIAS),
        (deploy_operator, ENDPOINT_ALIAS),
    ],
)
def test_operators_declare_their_alias_outlet_only_when_asked(build, alias):
    assert build().outlets == []
    assert build(emit_asset_events=True).outlets == [asset_alias(alias)]
    extra = s3_asset("s3://d/x")
    assert build(emit_asset_events=True, outlets=[extra]).outlets == [extra, asset_alias(alias)]


def test_record_lineage_adds_the_event_through_the_alias():
    events = outlet_event_accessors()
    lineage = TaskLineage(
        asset_uri="sagemaker://111122223333.eu-west-1/endpoint/e", extra={"endpoint_name": "e"}
    )
    deploy_operator(emit_asset_events=True).record_lineage({"outlet_events": events}, lineage)
    assert alias_events(events, asset_alias(ENDPOINT_ALIAS)) == [(lineage.asset_uri, {"endpoint_name": "e"})]

    quiet = outlet_event_accessors()
    operator = deploy_operator()
    operator.record_lineage({"outlet_events": quiet}, lineage)
    assert alias_events(quiet, asset_alias(ENDPOINT_ALIAS)) == []
    assert operator.recorded_lineage is lineage  # OpenLineage's complete event still gets it


def test_planned_lineage_of_register_and_deploy():
    assert register_operator(best_candidate="not a candidate").planned_lineage() is None
    planned = register_operator().planned_lineage()
    assert [d.uri for d in planned.inputs] == ["s3://b/m1.tar.gz", "s3://b/m2.tar.gz"]
    assert planned.outputs == [] and planned.asset_uri is None


def test_downstream_example_reads_the_triggering_extra_and_skips_unapproved():
    from airflow.providers.common.compat.sdk import AirflowSkipException

    dag = load_dag_file(DAGS / "example_autopilot_on_new_model.py", "example_autopilot_on_new_model")
    asset = model_package_group_asset("autopilot-churn", account_id="123456789012", region="us-east-1")
    condition = dag.timetable.asset_condition if AIRFLOW_V_3_0_PLUS else dag.timetable.dataset_condition
    assert [a.uri for a in condition.objects] == [asset.uri]

    class Event:  # what the context holds: objects with the event's extra
        extra = {"model_package_arn": PACKAGE_ARN, "approval_status": "Approved"}

    class Events(Mapping):  # keyed as Airflow's accessor: by the asset (by its URI on Airflow 2)
        def __init__(self, by_uri):
            self.by_uri = by_uri

        def __getitem__(self, key):
            return self.by_uri[getattr(key, "uri", key)]

        def __iter__(self):
            return iter(self.by_uri)

        def __len__(self):
            return len(self.by_uri)

    key = "triggering_asset_events" if AIRFLOW_V_3_0_PLUS else "triggering_dataset_events"
    events = Events({asset.uri: [Event()]})
    read = dag.get_task("read_new_model").python_callable
    assert read(**{key: events}) == Event.extra
    Event.extra = dict(Event.extra, approval_status="PendingManualApproval")
    with pytest.raises(AirflowSkipException, match="is not Approved"):
        read(**{key: events})
    with pytest.raises(AirflowSkipException, match="manual run"):
        read(**{key: Events({})})


def test_openlineage_facets_name_datasets_and_their_schema():
    pytest.importorskip("airflow.providers.openlineage")
    from airflow_autopilot.operators.lineage import openlineage_facets

    facets = openlineage_facets(
        TaskLineage(
            inputs=[LineageDataset("s3://lineage-data/train", ("age", "churn"))],
            outputs=[LineageDataset("sagemaker://111122223333.eu-west-1/endpoint/e")],
        )
    )
    (train,) = facets.inputs
    assert (train.namespace, train.name) == ("s3://lineage-data", "train")
    assert [f.name for f in train.facets["schema"].fields] == ["age", "churn"]
    (endpoint,) = facets.outputs
    assert (endpoint.namespace, endpoint.name, endpoint.facets) == (
        "sagemaker://111122223333.eu-west-1",
        "endpoint/e",
        {},
    )
    empty = openlineage_facets(None)
    assert (empty.inputs, empty.outputs) == ([], [])


def test_create_reads_each_csv_channels_header_for_the_schema(autopilot_emulator):
    import boto3

    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="lineage-data")
    s3.put_object(Bucket="lineage-data", Key="train/part-1.csv", Body=b"age,plan,churn\n34,basic,0\n")
    s3.put_object(Bucket="lineage-data", Key="val/part-1.csv", Body=b"34,12.5,0\n")
    create = AutopilotCreateJobOperator(
        task_id="create",
        s3_input_uri="s3://lineage-data/train/",
        validation_s3_input_uri="s3://lineage-data/val",
        target_attribute_name="churn",
        s3_output_path="s3://lineage-data/out/",
        aws_conn_id=None,
        region_name="us-east-1",
    )
    assert create.get_openlineage_facets_on_start is not None
    planned = create.planned_lineage()
    assert [(d.uri, d.fields) for d in planned.inputs] == [
        ("s3://lineage-data/train", None),
        ("s3://lineage-data/val", None),
    ]
    done = create.completed_lineage()
    assert [(d.uri, d.fields) for d in done.inputs] == [
        ("s3://lineage-data/train", ("age", "plan", "churn")),
        ("s3://lineage-data/val", None),  # no header row
    ]
    assert [d.uri for d in done.outputs] == ["s3://lineage-data/out"]

    create.compression_type = "Gzip"  # compressed: not read
    assert [d.fields for d in create.completed_lineage().inputs] == [None, None]
    create.compression_type = None
    create.s3_input_uri = "s3://missing-bucket/train"  # unreadable: no schema, no error
    assert [d.fields for d in create.completed_lineage().inputs] == [None, None]


def test_record_lineage_without_outlet_events_in_the_context_goes_on():
    lineage = TaskLineage(asset_uri="s3://d/out", extra={})
    operator = AutopilotCreateJobOperator(task_id="create", emit_asset_events=True)
    operator.record_lineage({}, lineage)  # a direct execute() call's context: no error
    assert operator.recorded_lineage is lineage

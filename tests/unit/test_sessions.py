"""The session factory the suite runs with: boto3 sessions sharing one botocore data loader."""

from __future__ import annotations

import boto3
from airflow.models.connection import Connection
from airflow.providers.amazon.aws.hooks import base_aws

from airflow_autopilot.hooks.sessions import SharedLoaderSessionFactory
from airflow_autopilot.service_models import botocore_session, shared_loader


def test_the_suite_runs_with_the_shared_loader_session_factory():
    """tests/conftest.py sets ``[aws] session_factory`` before the Amazon provider is imported."""
    assert base_aws.SessionFactory is SharedLoaderSessionFactory


def test_every_botocore_session_reads_through_one_loader_whose_search_paths_stay_put():
    first = boto3.session.Session(botocore_session=botocore_session())
    paths = list(shared_loader().search_paths)
    sessions = [boto3.session.Session(botocore_session=botocore_session()) for _ in range(3)]
    assert botocore_session().get_component("data_loader") is shared_loader()
    assert all(s._session.get_component("data_loader") is shared_loader() for s in [first, *sessions])
    # Each boto3 session appends its data folder to its loader's paths: once is enough.
    assert shared_loader().search_paths == paths
    assert len(set(paths)) == len(paths)


def test_a_connection_without_a_role_gets_its_credentials_and_region_on_the_shared_loader():
    conn = Connection(
        conn_id="aws_keys",
        conn_type="aws",
        login="AKIDEXAMPLE",
        password="SECRET",
        extra={"region_name": "eu-west-1"},
    )
    session = SharedLoaderSessionFactory(conn=conn).create_session()
    assert isinstance(session, boto3.session.Session)
    assert session.region_name == "eu-west-1"
    credentials = session.get_credentials()
    assert (credentials.access_key, credentials.secret_key) == ("AKIDEXAMPLE", "SECRET")
    assert session._session.get_component("data_loader") is shared_loader()
    client = session.client("sagemaker")
    assert client.meta.region_name == "eu-west-1"


def test_no_connection_takes_the_given_region_and_the_environments_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET")
    session = SharedLoaderSessionFactory(conn=None, region_name="ap-south-1").create_session()
    assert session.region_name == "ap-south-1"
    assert session.get_credentials().access_key == "ENVKEY"
    assert session._session.get_component("data_loader") is shared_loader()


def test_assumed_roles_and_async_sessions_are_the_providers_own(autopilot_emulator):
    from aiobotocore.session import AioSession

    conn = Connection(conn_id="aws_plain", conn_type="aws", extra={"region_name": "us-east-1"})
    assert isinstance(SharedLoaderSessionFactory(conn=conn).create_session(deferrable=True), AioSession)
    role = Connection(
        conn_id="aws_role",
        conn_type="aws",
        extra={"region_name": "us-east-1", "role_arn": "arn:aws:iam::123456789012:role/R"},
    )
    session = SharedLoaderSessionFactory(conn=role).create_session()
    assert isinstance(session, boto3.session.Session)
    assert session._session.get_component("data_loader") is not shared_loader()

"""A session factory for the Amazon provider's ``[aws] session_factory`` setting whose boto3 sessions
share one botocore data loader (:mod:`airflow_autopilot.service_models`)."""

from __future__ import annotations

import boto3
from airflow.providers.amazon.aws.hooks.base_aws import BaseSessionFactory

from airflow_autopilot.service_models import botocore_session


class SharedLoaderSessionFactory(BaseSessionFactory):
    """
    The Amazon provider's session factory, except that a boto3 session without an assumed role reads
    the service models through the process's shared botocore data loader, as the provider already
    does for its aiobotocore sessions. Parsing SageMaker's model takes a large part of a client's
    creation; a process that creates many hooks (the test suite) would pay it for each hook.
    Credentials, region and profile come from the connection exactly as without it.

    Enable it before the Amazon provider is imported:
    ``AIRFLOW__AWS__SESSION_FACTORY=airflow_autopilot.hooks.sessions.SharedLoaderSessionFactory``.
    """

    def create_session(self, deferrable: bool = False) -> boto3.session.Session:
        if deferrable or (self.conn and self.role_arn):  # the provider's own (async sessions share a loader)
            return super().create_session(deferrable=deferrable)
        session_kwargs = self.conn.session_kwargs if self.conn else {"region_name": self.region_name}
        return boto3.session.Session(botocore_session=botocore_session(), **session_kwargs)

"""
What every Autopilot operator shares: AWS connection parameters, the hook, and the check that a job
has ended before its results are read.

Import-light (DAG-facing): the hook, and with it boto3, loads on first use inside a task.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_autopilot.exceptions import AutopilotError

if TYPE_CHECKING:
    from airflow_autopilot.hooks import AutopilotHook
    from airflow_autopilot.job import AutopilotJob

#: Template fields of the connection parameters, shared by every operator.
AWS_TEMPLATE_FIELDS: tuple[str, ...] = ("aws_conn_id", "region_name", "verify", "botocore_config")


class AutopilotBaseOperator(BaseOperator):
    """
    Base of the Autopilot operators: AWS connection parameters and a lazily built hook.

    :param aws_conn_id: the Airflow AWS connection (default ``aws_default``).
    :param region_name: AWS region; overrides the connection's.
    :param verify: SSL certificate verification, as in the Amazon provider.
    :param botocore_config: a dict of ``botocore.config.Config`` arguments.
    """

    template_fields: Sequence[str] = AWS_TEMPLATE_FIELDS

    def __init__(
        self,
        *,
        aws_conn_id: str | None = "aws_default",
        region_name: str | None = None,
        verify: bool | str | None = None,
        botocore_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.aws_conn_id = aws_conn_id
        self.region_name = region_name
        self.verify = verify
        self.botocore_config = botocore_config

    @cached_property
    def hook(self) -> AutopilotHook:
        """The Autopilot hook for this task's connection (built on first use, never in ``__init__``)."""
        from airflow_autopilot.hooks import AutopilotHook

        return AutopilotHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.botocore_config,
        )

    def connection_kwargs(self) -> dict[str, Any]:
        """The connection parameters as trigger kwargs (names only: no credentials)."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": self.botocore_config,
        }


def require_terminal(job: AutopilotJob, what: str) -> None:
    """
    Fail with a pointer to the sensor when ``job`` has not ended yet.

    Raises :class:`AutopilotError` (retries allowed: the job may have ended by the next try).

    :param job: the described job.
    :param what: the result being read, for the message (``"BestCandidate"``).
    """
    if job.is_terminal:
        return
    raise AutopilotError(
        f"Autopilot job {job.name!r} is {job.describe_state()}; its {what} is final only once the job "
        "has ended. Wait for it first: put an AutopilotJobSensor (airflow_autopilot.sensors) upstream, "
        "or create the job with AutopilotCreateJobOperator(wait_for_completion=True)."
    )

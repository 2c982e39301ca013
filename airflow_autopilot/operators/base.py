"""
What every Autopilot operator and sensor shares: AWS connection parameters, the hook, and the check
that a job has ended before its results are read.

Import-light (DAG-facing): the hook, and with it boto3, loads on first use inside a task.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_autopilot.exceptions import AutopilotError

if TYPE_CHECKING:
    from airflow_autopilot.core.job import AutopilotJob
    from airflow_autopilot.hooks import AutopilotHook

#: Template fields of the connection parameters, shared by every operator.
AWS_TEMPLATE_FIELDS: tuple[str, ...] = ("aws_conn_id", "region_name", "verify", "botocore_config")


def botocore_config_dict(botocore_config: Any) -> dict[str, Any] | None:
    """
    A botocore ``Config`` or dict as a plain dict (trigger kwargs must be JSON-safe).

    :param botocore_config: ``None``, a dict of ``Config`` arguments, or a ``botocore.config.Config``.
    :raises TypeError: naming the parameter, for anything else.
    """
    if botocore_config is None:
        return None
    if isinstance(botocore_config, dict):
        return dict(botocore_config)
    options = getattr(botocore_config, "_user_provided_options", None)
    if isinstance(options, dict):
        return dict(options)
    raise TypeError(
        f"botocore_config: expected a dict or botocore Config, got {type(botocore_config).__name__}"
    )


class AutopilotConnectionMixin:
    """
    The hook and trigger connection kwargs of a task with ``aws_conn_id``, ``region_name``,
    ``verify`` and ``botocore_config`` attributes (operators and the sensor).
    """

    aws_conn_id: str | None
    region_name: str | None
    verify: bool | str | None
    botocore_config: Any

    @cached_property
    def hook(self) -> AutopilotHook:
        """The Autopilot hook for this task's connection (built on first use, never in ``__init__``)."""
        from airflow_autopilot.hooks import AutopilotHook

        return AutopilotHook(**self.hook_kwargs())

    def hook_kwargs(self) -> dict[str, Any]:
        """Arguments for any ``AwsBaseHook`` subclass with this task's connection parameters."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "config": botocore_config_dict(self.botocore_config),
        }

    def connection_kwargs(self) -> dict[str, Any]:
        """The connection parameters as trigger kwargs (names only: no credentials)."""
        return {
            "aws_conn_id": self.aws_conn_id,
            "region_name": self.region_name,
            "verify": self.verify,
            "botocore_config": botocore_config_dict(self.botocore_config),
        }


class AutopilotBaseOperator(AutopilotConnectionMixin, BaseOperator):
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

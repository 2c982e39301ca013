"""The "Autopilot Job" extra link: the job in the SageMaker console (URL format: docs/sensor.md, Console link)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperatorLink

from airflow_autopilot.core.redaction import scrub

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import BaseOperator, Context, TaskInstanceKey

#: Console domain per AWS partition (as the Amazon provider's ``BaseAwsLink.get_aws_domain``).
AWS_DOMAINS: dict[str, str] = {
    "aws": "aws.amazon.com",
    "aws-cn": "amazonaws.cn",
    "aws-us-gov": "amazonaws-us-gov.com",
}

CONSOLE_URL = "https://console.{aws_domain}/sagemaker/home?region={region_name}#/automl-jobs/{job_name}"


def aws_domain(partition: str | None) -> str | None:
    """The console domain of an AWS partition, or ``None`` for an unknown one."""
    return AWS_DOMAINS.get(partition or "")


def console_url(job_name: str, region_name: str, partition: str = "aws") -> str:
    """
    The SageMaker console URL of an Autopilot job (format unverified; see the module docstring).

    :param job_name: the AutoMLJobName.
    :param region_name: the job's region.
    :param partition: the AWS partition (``aws``, ``aws-cn``, ``aws-us-gov``).
    :return: the URL, or ``""`` for an unknown partition.
    """
    domain = aws_domain(partition)
    if not domain or not region_name or not job_name:
        return ""
    return CONSOLE_URL.format(
        aws_domain=domain, region_name=quote(region_name, safe=""), job_name=quote(job_name, safe="")
    )


class AutopilotJobLink(BaseOperatorLink):
    """Link to an Autopilot (AutoML) job in the SageMaker console."""

    name: ClassVar[str] = "Autopilot Job"
    key: ClassVar[str] = "autopilot_job_details"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """
        The console URL stored for this task instance, or ``""`` when the job was never reached.

        :param operator: the task's operator.
        :param ti_key: the task instance key.
        """
        from airflow.providers.common.compat.sdk import XCom

        try:
            conf = XCom.get_value(key=self.key, ti_key=ti_key)
        except Exception:
            return ""
        if not isinstance(conf, dict):
            return ""
        return console_url(
            str(conf.get("job_name") or ""),
            str(conf.get("region_name") or ""),
            str(conf.get("partition") or "aws"),
        )

    @classmethod
    def persist(
        cls,
        context: Context,
        operator: BaseOperator | Any,
        *,
        job_name: str,
        region_name: str | None,
        partition: str | None = "aws",
    ) -> None:
        """
        Store what the link needs in XCom (once the job is known). Never fails the task.

        :param context: the task context.
        :param operator: the operator (nothing is stored when ``do_xcom_push`` is False).
        :param job_name: the AutoMLJobName.
        :param region_name: the job's region.
        :param partition: the AWS partition.
        """
        if not getattr(operator, "do_xcom_push", True) or not region_name or "ti" not in context:
            return
        try:
            context["ti"].xcom_push(
                key=cls.key,
                value={
                    "job_name": job_name,
                    "region_name": region_name,
                    "partition": partition or "aws",
                    "aws_domain": aws_domain(partition),
                },
            )
        except Exception as err:  # a link must never fail the task
            operator.log.warning("Could not store the Autopilot console link", exc_info=scrub(err))

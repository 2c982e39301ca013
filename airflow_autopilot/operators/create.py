"""AutopilotCreateJobOperator: create (or, on retry, re-attach to) an Autopilot V1 job, and optionally wait."""

from __future__ import annotations

from airflow_autopilot.core.fields.automl import CREATE_AUTOML_JOB
from airflow_autopilot.core.fields.spec import RequestTables
from airflow_autopilot.operators._job_create import (
    AutopilotCreateJobBase,
)

#: Parameters that go into the request (and are template fields), from the CreateAutoMLJob table.
REQUEST_PARAMETERS: tuple[str, ...] = CREATE_AUTOML_JOB.parameters


class AutopilotCreateJobOperator(AutopilotCreateJobBase):
    """
    Create a SageMaker Autopilot (CreateAutoMLJob, V1) job, re-attaching on retries; optionally wait.

    Returns (XCom) ``{"AutoMLJobName": str, "AutoMLJobArn": str}``.

    Give either ``s3_input_uri`` and ``target_attribute_name`` (the common case: one training
    channel, plus an optional ``validation_s3_input_uri``) or ``input_data_config`` (the full
    SageMaker channel list). ``None`` parameters are left out so SageMaker's defaults apply. The
    request is validated in ``execute`` before any AWS call; every problem is reported at once,
    naming the request field, the rule and the operator parameter. The parameters, their rules and
    descriptions come from the CreateAutoMLJob table (:mod:`airflow_autopilot.core.fields.automl`).
    """

    request_tables = RequestTables(CREATE_AUTOML_JOB, required_arguments=False)

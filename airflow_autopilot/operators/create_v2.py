"""AutopilotCreateJobV2Operator: CreateAutoMLJobV2 (tabular, time-series forecasting, text, image,
text generation), re-attaching on retries, and optionally waiting."""

from __future__ import annotations

from airflow_autopilot.core.fields.automl import CREATE_AUTOML_JOB_V2
from airflow_autopilot.core.fields.spec import RequestTables
from airflow_autopilot.operators._job_create import (
    AutopilotCreateJobBase,
)

#: Parameters that go into the V2 request (and are template fields), from the CreateAutoMLJobV2 table.
V2_REQUEST_PARAMETERS: tuple[str, ...] = CREATE_AUTOML_JOB_V2.parameters


class AutopilotCreateJobV2Operator(AutopilotCreateJobBase):
    """
    Create a SageMaker Autopilot job with CreateAutoMLJobV2, re-attaching on retries; optionally wait.

    Every problem type: give ``problem_type_config`` as SageMaker's ``AutoMLProblemTypeConfig``, one of
    ``{"TabularJobConfig": {...}}``, ``{"TimeSeriesForecastingJobConfig": {...}}``,
    ``{"TextClassificationJobConfig": {...}}``, ``{"ImageClassificationJobConfig": {...}}`` or
    ``{"TextGenerationJobConfig": {...}}``. The request is validated in ``execute`` before any AWS
    call (the problem type's config, its objective metrics, forecast frequency, horizon and
    quantiles, column names, data split, deploy config, name and tags); every problem is reported at
    once. Naming, retries, ``on_kill``, the return value (``{"AutoMLJobName", "AutoMLJobArn"}``) and
    waiting are the same as :class:`~airflow_autopilot.operators.AutopilotCreateJobOperator`'s; V1's
    tabular parameters (``target_attribute_name``, ``problem_type``, ``mode`` ...) belong inside
    ``problem_type_config`` here and are not parameters of this operator. The parameters come from
    the CreateAutoMLJobV2 table (:mod:`airflow_autopilot.core.fields.automl`).
    """

    request_tables = RequestTables(CREATE_AUTOML_JOB_V2, required_arguments=False)

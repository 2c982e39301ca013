"""The names lineage shares between the operators and the asset helpers, in a module that costs
nothing to import (DAG files import the operators; :mod:`airflow_autopilot.core.lineage` loads on use).
"""

from __future__ import annotations

#: Scheme of the asset URIs of SageMaker resources: ``sagemaker://<account-id>.<region>/<type>/<name>``.
SAGEMAKER_SCHEME = "sagemaker"

#: Asset aliases the operators emit through (``emit_asset_events=True``); each event names the
#: concrete asset, whose URI a downstream DAG schedules on.
JOB_OUTPUT_ALIAS = "autopilot-job-output"
MODEL_PACKAGE_GROUP_ALIAS = "autopilot-model-package-group"
ENDPOINT_ALIAS = "autopilot-endpoint"
BATCH_TRANSFORM_OUTPUT_ALIAS = "autopilot-batch-transform-output"

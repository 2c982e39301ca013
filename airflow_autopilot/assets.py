"""Assets (Datasets on Airflow 2.11) of what the Autopilot operators produce, for ``schedule=[...]``
and ``outlets``: Model Package Groups, endpoints and S3 prefixes. URIs: docs/lineage.md.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import Asset, AssetAlias

from airflow_autopilot.core.lineage_names import (
    BATCH_TRANSFORM_OUTPUT_ALIAS,
    ENDPOINT_ALIAS,
    JOB_OUTPUT_ALIAS,
    MODEL_PACKAGE_GROUP_ALIAS,
)

__all__ = [
    "BATCH_TRANSFORM_OUTPUT_ALIAS",
    "ENDPOINT_ALIAS",
    "JOB_OUTPUT_ALIAS",
    "MODEL_PACKAGE_GROUP_ALIAS",
    "asset_alias",
    "triggering_extras",
    "endpoint_asset",
    "model_package_group_asset",
    "s3_asset",
]


def model_package_group_asset(group_name: str, *, account_id: str, region: str) -> Any:
    """
    The Asset a register operator with ``emit_asset_events=True`` updates for each new version of
    ``group_name``: ``sagemaker://<account-id>.<region>/model-package-group/<group_name>``.

    :param group_name: the Model Package Group.
    :param account_id: the 12-digit AWS account that holds it.
    :param region: its AWS region.
    """
    from airflow_autopilot.core.lineage import model_package_group_uri

    return Asset(uri=model_package_group_uri(group_name, account_id=account_id, region=region))


def endpoint_asset(endpoint_name: str, *, account_id: str, region: str) -> Any:
    """
    The Asset a deploy operator with ``emit_asset_events=True`` updates when the endpoint serves a
    new candidate: ``sagemaker://<account-id>.<region>/endpoint/<endpoint_name>``.

    :param endpoint_name: the endpoint.
    :param account_id: the 12-digit AWS account that holds it.
    :param region: its AWS region.
    """
    from airflow_autopilot.core.lineage import endpoint_uri

    return Asset(uri=endpoint_uri(endpoint_name, account_id=account_id, region=region))


def s3_asset(uri: str) -> Any:
    """
    The Asset of an S3 prefix, as the operators name it (``s3://bucket/key``, no trailing slash):
    a create operator's ``s3_output_path``, a batch transform's output path.

    :param uri: the ``s3://`` URI.
    """
    from airflow_autopilot.core.lineage import s3_uri

    return Asset(uri=s3_uri(uri))


def asset_alias(name: str) -> Any:
    """
    An AssetAlias (DatasetAlias on Airflow 2.11); the operators emit through
    :data:`MODEL_PACKAGE_GROUP_ALIAS`, :data:`ENDPOINT_ALIAS`, :data:`JOB_OUTPUT_ALIAS` and
    :data:`BATCH_TRANSFORM_OUTPUT_ALIAS`. A DAG scheduled on one runs on every event through it.

    :param name: the alias name.
    """
    return AssetAlias(name=name)


def triggering_extras(context: Any, asset: Any) -> list[dict[str, Any]]:
    """
    The extras of the events of ``asset`` that triggered this DAG run, oldest first: what a DAG
    scheduled on :func:`model_package_group_asset` reads instead of another DAG's XCom.

    :param context: the task context.
    :param asset: the Asset the DAG is scheduled on.
    """
    from airflow_autopilot._compat import triggering_asset_events

    return [dict(event.extra or {}) for event in triggering_asset_events(context, asset)]

"""Deploying a job's best candidate as a real moto model, endpoint config and endpoint, and the
ValidationExceptions of the hosting requests (from the tables the operators build them with)."""

from __future__ import annotations

from typing import Any

from airflow_autopilot.core.fields.endpoint import ENDPOINT, ENDPOINT_CONFIG, UPDATE_ENDPOINT
from airflow_autopilot.core.fields.model import MODEL
from airflow_autopilot.core.fields.model_package import MODEL_PACKAGE
from airflow_autopilot.core.fields.spec import RequestSpec
from airflow_autopilot.emulator.candidates import short_hash

#: The hosting requests SageMaker validates against the rules of these tables.
REQUEST_TABLES: dict[str, RequestSpec] = {
    spec.operation: spec for spec in (MODEL, ENDPOINT_CONFIG, ENDPOINT, UPDATE_ENDPOINT, MODEL_PACKAGE)
}

#: Instance type of emulated deployments (moto's endpoint-config allow-list accepts it).
DEPLOY_INSTANCE_TYPE = "ml.m5.large"


def endpoint_name_for(job_name: str, deploy_config: dict[str, Any]) -> str:
    """Return the endpoint name: the configured one, or a generated one for AutoGenerateEndpointName.

    :param job_name: the AutoML job name.
    :param deploy_config: the job's ``ModelDeployConfig``.
    """
    if deploy_config.get("AutoGenerateEndpointName"):
        return f"{job_name}-ep-{short_hash(job_name, 'endpoint')}"
    return str(deploy_config["EndpointName"])


def deploy_best_candidate(
    backend: Any,
    job_name: str,
    role_arn: str,
    containers: list[dict[str, Any]],
    deploy_config: dict[str, Any],
) -> str:
    """Create the model, endpoint config and endpoint (InService at once in moto); return the endpoint name.

    :param backend: the moto SageMaker backend of the job's account and region.
    :param job_name: the AutoML job name.
    :param role_arn: execution role of the model.
    :param containers: the best candidate's ``InferenceContainers``.
    :param deploy_config: the job's ``ModelDeployConfig``.
    :raises Exception: whatever moto raises, or ``ValueError`` when the endpoint already exists.
    """
    endpoint_name = endpoint_name_for(job_name, deploy_config)
    if endpoint_name in backend.endpoints:
        raise ValueError(f"Cannot create already existing endpoint '{endpoint_name}'.")
    suffix = short_hash(job_name, "deploy")
    model_name = f"{job_name}-model-{suffix}"
    config_name = f"{job_name}-epc-{suffix}"
    backend.create_model(
        model_name=model_name,
        execution_role_arn=role_arn,
        primary_container=None,
        vpc_config=None,
        containers=containers,
        tags=None,
    )
    backend.create_endpoint_config(
        endpoint_config_name=config_name,
        production_variants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": model_name,
                "InitialInstanceCount": 1,
                "InstanceType": DEPLOY_INSTANCE_TYPE,
                "InitialVariantWeight": 1.0,
            }
        ],
        data_capture_config={},
        async_inference_config={},
        tags=[],
        kms_key_id="",
    )
    backend.create_endpoint(endpoint_name=endpoint_name, endpoint_config_name=config_name, tags=[])
    return endpoint_name

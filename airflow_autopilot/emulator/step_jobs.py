"""The processing, training and transform jobs a candidate's ``CandidateSteps`` name, created in
moto's backend when the candidate completes, so DescribeTrainingJob and friends find them."""

from __future__ import annotations

from typing import Any

from airflow_autopilot.emulator import candidates as cand

_INSTANCE = {"InstanceCount": 1, "InstanceType": "ml.m5.4xlarge", "VolumeSizeInGB": 30}


def create_step_jobs(
    backend: Any, ctx: cand.CandidateContext, plan: cand.CandidatePlan, role_arn: str, input_uri: str
) -> None:
    """Create the candidate's three step jobs (Completed, as moto creates them) unless they exist.

    :param backend: moto's SageMaker backend of the job's account and region.
    :param ctx: job context.
    :param plan: the completed candidate.
    :param role_arn: the AutoML job's role.
    :param input_uri: the training channel's S3 URI.
    """
    processing_url, algorithm_url = cand.model_data_urls(ctx, plan)
    base = f"{ctx.output_path}/{ctx.job_name}"
    image = (
        cand.inference_containers(ctx, plan)[0]["Image"]
        if ctx.problem_type in cand.METRICS_BY_PROBLEM_TYPE
        else None
    )
    image = image or f"683313688378.dkr.ecr.{ctx.region}.amazonaws.com/sagemaker-sklearn-automl:2.5-1-cpu-py3"
    if plan.processing_job not in backend.processing_jobs:
        backend.create_processing_job(
            app_specification={"ImageUri": image},
            experiment_config={},
            network_config={},
            processing_inputs=[
                {
                    "InputName": "input",
                    "S3Input": {
                        "S3Uri": input_uri,
                        "LocalPath": "/opt/ml/processing/input",
                        "S3DataType": "S3Prefix",
                        "S3InputMode": "File",
                    },
                }
            ],
            processing_job_name=plan.processing_job,
            processing_output_config={
                "Outputs": [
                    {
                        "OutputName": "model",
                        "S3Output": {
                            "S3Uri": processing_url.rsplit("/", 2)[0],
                            "LocalPath": "/opt/ml/processing/output",
                            "S3UploadMode": "EndOfJob",
                        },
                    }
                ]
            },
            role_arn=role_arn,
            tags=[],
            stopping_condition={"MaxRuntimeInSeconds": 86400},
        )
    if plan.name not in backend.training_jobs:
        backend.create_training_job(
            training_job_name=plan.name,
            hyper_parameters={"algorithm": plan.algorithm},
            algorithm_specification={"TrainingImage": image, "TrainingInputMode": "File"},
            role_arn=role_arn,
            input_data_config=[
                {
                    "ChannelName": "train",
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}},
                }
            ],
            output_data_config={"S3OutputPath": algorithm_url.rsplit("/", 3)[0]},
            resource_config=_INSTANCE,
            vpc_config={},
            stopping_condition={"MaxRuntimeInSeconds": 86400},
            tags=[],
            enable_network_isolation=False,
            enable_inter_container_traffic_encryption=False,
            enable_managed_spot_training=False,
            checkpoint_config={},
            debug_hook_config={},
            debug_rule_configurations=[],
            tensor_board_output_config={},
            experiment_config={},
        )
    if plan.transform_job not in backend.transform_jobs:
        backend.create_transform_job(
            transform_job_name=plan.transform_job,
            model_name=f"{plan.processing_job}-model",
            max_concurrent_transforms=1,
            model_client_config={},
            max_payload_in_mb=6,
            batch_strategy="MultiRecord",
            environment={},
            transform_input={"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_uri}}},
            transform_output={"S3OutputPath": f"{base}/preprocessed-data/{plan.transform_job}"},
            data_capture_config={},
            transform_resources={"InstanceType": "ml.m5.4xlarge", "InstanceCount": 1},
            data_processing={},
            tags={},
            experiment_config={},
        )

"""Shared set-up of the benches: an emulator server that Airflow's ``aws_default`` points at, and jobs."""

from __future__ import annotations

import os
import resource
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUCKET = "autopilot-bench"
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerAutopilot"
#: Lifecycle stages of an emulated job without deployment (Starting .. Completed).
STAGES = 9


def point_airflow_at(server: Any) -> None:
    """Point boto3 and Airflow's ``aws_default`` connection at the emulator server."""
    os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".airflow"))
    os.environ.update(server.environment())
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = server.airflow_conn_value


def create_jobs(server: Any, names: list[str], stage_seconds: float) -> None:
    """
    Upload the sample data once and create one V1 job per name, each with ``stage_seconds`` per stage.

    :param server: a running :class:`airflow_autopilot.emulator.EmulatorServer`.
    :param names: job names.
    :param stage_seconds: emulated seconds per lifecycle stage.
    """
    from airflow_autopilot.emulator.sample_data import churn_csv

    s3 = server.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="train/churn.csv", Body=churn_csv(200).encode())
    sagemaker = server.client("sagemaker")
    for name in names:
        sagemaker.create_auto_ml_job(
            AutoMLJobName=name,
            InputDataConfig=[
                {
                    "DataSource": {
                        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/train/"}
                    },
                    "TargetAttributeName": "churn",
                }
            ],
            OutputDataConfig={"S3OutputPath": f"s3://{BUCKET}/output"},
            RoleArn=ROLE_ARN,
            Tags=[{"Key": "autopilot-emulator:stage-seconds", "Value": str(stage_seconds)}],
        )


def rss_kib() -> int:
    """Resident set size of this process now, in KiB (from /proc; falls back to the peak)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def cpu_seconds() -> float:
    """User plus system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

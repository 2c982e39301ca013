"""Shared set-up of the benches: an emulator server that Airflow's ``aws_default`` points at, and jobs."""

from __future__ import annotations

import os
import resource
import signal
import statistics
import subprocess
import tempfile
import time
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


def spread(values: list[float]) -> tuple[float, float, float]:
    """``(min, median, max)`` of ``values``."""
    return min(values), statistics.median(values), max(values)


def fmt_spread(values: list[float], fmt: str = ".3f", scale: float = 1.0) -> str:
    """``median (min-max, n runs)`` of ``values`` times ``scale``, each formatted with ``fmt``."""
    low, mid, high = (v * scale for v in spread(values))
    return f"{mid:{fmt}} ({low:{fmt}}-{high:{fmt}}, n={len(values)})"


def verdict(ok: bool) -> str:
    """``met`` or ``NOT met``."""
    return "met" if ok else "NOT met"


def run_child(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> tuple[str, Any]:
    """
    Run ``cmd`` to completion and return its stdout and its resource usage (``wait4``'s rusage).

    The child's output goes to temporary files (no pipe to drain) and it is reaped with ``wait4``,
    so that its own CPU time and peak RSS are read from the kernel rather than reported by itself.
    It is killed by its process id if it outlives ``timeout`` seconds; a failure raises
    ``RuntimeError`` with its stderr.

    :param cmd: the command line.
    :param timeout: seconds before the child is killed.
    :param env: its environment (default: this one's).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env, cwd=ROOT / "bench")
        deadline = time.monotonic() + timeout
        try:
            while True:
                pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{cmd[:4]}... took over {timeout:g} s; killed pid {proc.pid}")
                time.sleep(0.005)
        except BaseException:  # the timeout, or this bench interrupted: stop the child by its pid
            os.kill(proc.pid, signal.SIGKILL)
            os.wait4(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            raise
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:4]}... exited {proc.returncode}:\n{stderr[-3000:]}")
    return stdout, usage


def machine() -> str:
    """CPUs and load averages now, to print with the figures (other load slows wall-clock times)."""
    one, five, fifteen = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {one:.2f} {five:.2f} {fifteen:.2f} (1, 5, 15 min)"


class BlockWatchdog:
    """
    Airflow's triggerer watchdog, as its ``block_watchdog`` runs beside the triggers: sleep 0.1 s on
    the event loop and count every time that took longer than ``threshold`` (the triggerer logs
    "Triggerer's async thread was blocked for X seconds" then). Run :meth:`run` as a task.

    :param threshold: ``[triggerer] blocked_main_thread_warning_threshold`` (default 0.2 s).
    """

    def __init__(self, threshold: float = 0.2) -> None:
        self.threshold = threshold
        self.warnings = 0
        self.worst = 0.0
        self.stopped = False

    async def run(self) -> None:
        import asyncio

        while not self.stopped:
            started = time.monotonic()
            await asyncio.sleep(0.1)
            elapsed = time.monotonic() - started
            self.worst = max(self.worst, elapsed - 0.1)
            if elapsed > self.threshold:
                self.warnings += 1

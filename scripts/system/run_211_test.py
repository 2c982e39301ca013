"""
``make system-test-2.11``: the package in a real Airflow 2.11 deployment, as managed services run it.

Starts, on 127.0.0.1 only and in a temporary folder: PostgreSQL (Debian's package, installed when
missing), the Autopilot emulator and Airflow 2.11's webserver, scheduler (LocalExecutor) and
triggerer, each a separate process, from the matrix's Airflow 2.11 venv (run this script with its
interpreter). Through Airflow 2's REST API (``/api/v1``) it runs ``example_autopilot_promotion`` and
``example_autopilot_watch_existing_job`` on a job created with boto3; with both sensors deferred the
triggerer is killed (SIGKILL) and started again. Both runs must end ``success`` with their sensor in
its first try, the sensor logs must name their jobs (and hold no credential), and the promotion run
must have created exactly one job. Every process is stopped by process id however the run ends.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import deployment as dep
import httpx
from deployment import log, wait_until
from run_system_test import Report

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ACCESS_KEY = "AKIAEXAMPLE211TEST"
SECRET_KEY = "af211-secret-do-not-log"
REGION = "us-east-1"
POLL_SECONDS = 3.0
STAGE_SECONDS = 6.0
PROMOTION = "example_autopilot_promotion"
WATCH = "example_autopilot_watch_existing_job"
SENSOR = "wait_for_job"


class Api:
    """Airflow 2's stable REST API (``/api/v1``) with basic authentication, as a user scripts it."""

    def __init__(self, base_url: str, user: str, password: str) -> None:
        self.http = httpx.Client(base_url=f"{base_url}/api/v1", timeout=60, auth=(user, password))

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text[:400]}")
        return response.json()

    def health(self) -> dict[str, Any]:
        return dict(self.request("GET", "/health"))

    def dag(self, dag_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/dags/{dag_id}"))

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> None:
        self.request("POST", f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id, "conf": conf})

    def run_state(self, dag_id: str, run_id: str) -> str:
        return str(self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"])

    def task(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        return dict(self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"))

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        response = self.http.get(path, params={"full_content": True}, headers={"Accept": "text/plain"})
        response.raise_for_status()
        return response.text


class Test211:
    def __init__(self, args: argparse.Namespace, root: Path, processes: dep.Processes) -> None:
        self.args = args
        self.root = root
        self.processes = processes
        self.report = Report()
        self.postgres: dep.Postgres | None = None
        self.emulator: dep.Emulator | None = None
        self.airflow: dep.Airflow | None = None
        self.api: Api | None = None
        self.port = dep.free_port()

    def alive(self) -> None:
        for part in (self.postgres, self.emulator, self.airflow):
            if part is not None:
                part.alive()

    def deploy(self) -> None:
        self.postgres = dep.Postgres(self.root, self.processes, dep.ensure_postgres())
        self.postgres.start()
        self.emulator = dep.Emulator(self.root, self.processes, VENV_BIN)
        self.emulator.start({"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"})
        self.emulator.control("POST", "configure", {"stage_seconds": STAGE_SECONDS})
        self.airflow = dep.Airflow(
            root=self.root,
            processes=self.processes,
            venv_bin=VENV_BIN,
            dags_folder=REPO / "dags",
            database_url=self.postgres.sqlalchemy_url,
            aws_connection=dep.aws_connection(self.emulator.endpoint_url, ACCESS_KEY, SECRET_KEY),
            poll_seconds=POLL_SECONDS,
            extra_env={
                "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": dep.LOOPBACK,
                "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(self.port),
                "AIRFLOW__WEBSERVER__BASE_URL": f"http://{dep.LOOPBACK}:{self.port}",
                "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_urlsafe(32),
                "AIRFLOW__WEBSERVER__WORKERS": "1",
                "AIRFLOW__API__AUTH_BACKENDS": "airflow.providers.fab.auth_manager.api.auth.backend.basic_auth",
                "AIRFLOW__SCHEDULER__STANDALONE_DAG_PROCESSOR": "False",
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "300",
                "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__PARSING_PROCESSES": "1",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            },
        )
        self.airflow.migrate()
        log("airflow db migrate: done")
        password = secrets.token_urlsafe(16)
        self.airflow.airflow(
            "users", "create", "--username", "admin", "--password", password, "--role", "Admin",
            "--email", "admin@example.com", "--firstname", "Ad", "--lastname", "Min",
        )  # fmt: skip
        self.airflow.start_named("webserver", ("webserver",))
        self.airflow.start_named("scheduler", ("scheduler", "--skip-serve-logs"))
        self.airflow.start_named("triggerer", ("triggerer", "--skip-serve-logs"))
        self.api = Api(f"http://{dep.LOOPBACK}:{self.port}", "admin", password)
        api = self.api

        def healthy() -> bool:
            try:
                health = api.health()
            except (httpx.HTTPError, RuntimeError):
                return False
            # The DAG processor runs inside the scheduler here: its part reports no status.
            parts = [part for part in health.values() if isinstance(part, dict) and part.get("status")]
            return len(parts) >= 3 and all(part["status"] == "healthy" for part in parts)

        wait_until(
            "the webserver, scheduler and triggerer to report healthy", healthy, 240, 2, alive=self.alive
        )

        def parsed() -> bool:
            try:
                return bool(api.dag(PROMOTION)) and bool(api.dag(WATCH))
            except (httpx.HTTPError, RuntimeError):
                return False

        wait_until("the scheduler to parse the example DAGs", parsed, 240, 2, alive=self.alive)

    def create_watch_job(self) -> str:
        import boto3

        assert self.emulator is not None
        kwargs = {
            "endpoint_url": self.emulator.endpoint_url,
            "region_name": REGION,
            "aws_access_key_id": ACCESS_KEY,
            "aws_secret_access_key": SECRET_KEY,
        }
        dep.put_training_data(boto3.client("s3", **kwargs), "af211-watch", 100)
        name = f"af211-watch-{secrets.token_hex(3)}"
        dep.create_watch_job(boto3.client("sagemaker", **kwargs), name, "af211-watch", "10")
        return name

    def run(self) -> int:
        self.deploy()
        assert self.api is not None and self.airflow is not None and self.emulator is not None
        api = self.api
        token = secrets.token_hex(3)
        watch_job = self.create_watch_job()
        runs: dict[str, tuple[str, dict[str, Any]]] = {
            PROMOTION: (
                f"af211-promotion-{token}",
                {
                    "job_name_prefix": "af211-promo",
                    "bucket": "af211-promotion",
                    "model_package_group": "af211-promotion",
                    "endpoint_name": "af211-promotion",
                    "threshold": 0.0,
                },
            ),
            WATCH: (f"af211-watch-{token}", {"job_name": watch_job}),
        }
        for dag_id, (run_id, conf) in runs.items():
            api.unpause(dag_id)
            api.trigger(dag_id, run_id, conf)
        log("triggered the promotion and watch runs")

        def both_deferred() -> bool:
            return all(api.task(d, r, SENSOR)["state"] == "deferred" for d, (r, _) in runs.items())

        wait_until("both sensors to be deferred", both_deferred, 300, 2, alive=self.alive)
        old = self.airflow.components.pop("triggerer")
        self.processes.stop(old, kill=True)
        log("triggerer killed (SIGKILL) with both waits deferred; starting it again")
        time.sleep(2)
        self.airflow.start_named("triggerer-2", ("triggerer", "--skip-serve-logs"))

        def finished() -> bool:
            return all(api.run_state(d, r) in ("success", "failed") for d, (r, _) in runs.items())

        wait_until("both runs to finish", finished, self.args.run_timeout, 3, alive=self.alive)
        jobs = [
            j["AutoMLJobName"] for j in self.emulator_jobs() if j["AutoMLJobName"].startswith("af211-promo")
        ]
        self.report.check(
            "airflow 2.11", "the promotion run created exactly one job", len(jobs) == 1, str(jobs)
        )
        for dag_id, (run_id, _) in runs.items():
            state = api.run_state(dag_id, run_id)
            self.report.check("airflow 2.11", f"{dag_id} ends success", state == "success", state)
            sensor = api.task(dag_id, run_id, SENSOR)
            self.report.check(
                "airflow 2.11",
                f"{dag_id}: the sensor ended in its first try",
                sensor["try_number"] == 1,
                str(sensor["try_number"]),
            )
            text = api.log(dag_id, run_id, SENSOR, 1)
            job = watch_job if dag_id == WATCH else (jobs[0] if len(jobs) == 1 else "?")
            self.report.check("airflow 2.11", f"{dag_id}: the sensor log names its job", job in text)
            self.report.check(
                "airflow 2.11", f"{dag_id}: no credential in the sensor log", SECRET_KEY not in text
            )
        failed = self.report.failed
        print(f"\n{len(self.report.checks) - len(failed)} of {len(self.report.checks)} checks passed")
        return 1 if failed else 0

    def emulator_jobs(self) -> list[dict[str, Any]]:
        import boto3

        assert self.emulator is not None
        client = boto3.client(
            "sagemaker",
            endpoint_url=self.emulator.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        return list(client.list_auto_ml_jobs(MaxResults=100)["AutoMLJobSummaries"])

    def dump_logs(self) -> None:
        for path in sorted((self.root / "logs").glob("*.log")):
            print(f"\n--- {path.name} (last 25 lines) ---\n{dep.tail(path, 25)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument("--run-timeout", type=float, default=420, help="seconds for the runs to finish")
    parser.add_argument("--time-limit", type=int, default=1200, help="seconds for the whole test")
    args = parser.parse_args(argv)

    return dep.run_scenario(
        args,
        lambda root, processes: Test211(args, root, processes),
        lambda root: f"Airflow 2.11 deployment test in {root} (venv {VENV_BIN.parent})",
    )


if __name__ == "__main__":
    sys.exit(main())

"""
``make system-test-ha``: the package in the topology production runs, with a fault in every component.

Starts, on 127.0.0.1 only and in a temporary folder: PostgreSQL, Redis (Debian's packages, installed
when missing), the Autopilot emulator (scripts/system/ha_emulator.py) and Airflow 3 with the
CeleryExecutor: api-server, scheduler, dag-processor, two Celery workers and two triggerers, each a
separate process. Then, through Airflow's REST API:

* ``--waits`` (default 200) watch runs, each a deferrable AutopilotJobSensor on an emulator job of
  its own (staggered durations), and two ``example_autopilot_promotion`` runs;
* promotion run B's Celery worker is killed (SIGKILL) between CreateAutoMLJob and the XCom push (the
  emulator holds the answer): the retry re-attaches to that job (one job per run), the worker is
  started again;
* with every wait deferred: one triggerer is killed (SIGKILL) and never restarted (its waits move to
  the survivor), then PostgreSQL is restarted;
* the emulator clock is moved so the jobs end, staggered; every run must end ``success`` with no
  sensor try burned, and each sensor log must hold its own job's lines only.

Printed: emulator API calls per poll cycle per triggerer, notice latency (job end to sensor success)
p50/p95/max, triggerer CPU seconds per cycle, resident memory per waiting job, and the blocked-loop
warnings of both triggerers (must be 0). Every process is stopped by process id however the run
ends. Exit 0 when every check passed, 1 when one failed, 2 when the deployment could not be set up.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import deployment as dep
import httpx
from airflow_api import AirflowAPI, log_text
from deployment import DeploymentError, log, wait_until
from run_system_test import Report

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
ACCESS_KEY = "AKIAEXAMPLEHATEST"
SECRET_KEY = "ha-test-secret-do-not-log"
REGION = "us-east-1"
POLL_SECONDS = 5.0
WATCH = "ha_watch"
PROMOTION = "example_autopilot_promotion"
SENSOR = "wait_for_job"
#: Emulated seconds per stage of every job before the clock moves: the jobs wait for the faults
#: and do not change at all meanwhile, so that a steady poll cycle is one listing page.
HOLD_STAGE_SECONDS = 10_000.0
#: How far apart the watch jobs end once the clock moves (seconds over all of them).
STAGGER_SECONDS = 40.0
BLOCKED = "async thread was blocked"
WORKER_CONCURRENCY = 8
#: Every component but the triggerers (whose watchdog this test counts) and the stand-ins for
#: AWS and the databases runs at this niceness: production runs them on machines of their own, here
#: they share two CPUs with the triggerers, and the watchdog measures wall time. Their bursts (200
#: task processes importing Airflow) would otherwise deschedule a triggerer past its 0.2 s warning.
NICENESS = {"worker": 10, "scheduler": 10, "dag-processor": 10, "api-server": 10}


WATCH_DAG = '''
"""One deferrable sensor on the job named in the run's conf (the production-topology test)."""

from datetime import datetime

from airflow.providers.common.compat.sdk import DAG, Param

from airflow_autopilot.sensors import AutopilotJobSensor

with DAG(
    dag_id="ha_watch",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={"job_name": Param(None, type=["null", "string"])},
):
    AutopilotJobSensor(
        task_id="wait_for_job",
        job_name="{{ params.job_name }}",
        deferrable=True,
        poke_interval=%(poll)s,
        timeout=3600,
        retries=2,
    )
'''


def group_usage(group: int) -> tuple[float, int]:
    """CPU seconds (user + system) and resident KiB of a process group's live members."""
    ticks, rss = 0, 0
    for pid in dep.group_members(group):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return ticks / os.sysconf("SC_CLK_TCK"), rss


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` (children, their children ...), from /proc."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
                parents[int(entry)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier and pid not in found}
        found |= frontier
    return found


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


class HaTest:
    def __init__(self, args: argparse.Namespace, root: Path, processes: dep.Processes) -> None:
        self.args = args
        self.root = root
        self.processes = processes
        self.report = Report()
        self.postgres: dep.Postgres | None = None
        self.redis: dep.Redis | None = None
        self.emulator: Any = None
        self.airflow: dep.Airflow | None = None
        self.api: AirflowAPI | None = None
        self.sagemaker: Any = None
        self.triggerer_jobs: dict[str, int] = {}
        self.token = secrets.token_hex(3)
        self.watch_jobs: dict[str, str] = {}  # run id -> job name
        self.promotion_runs: dict[str, str] = {}  # label -> run id
        self.baseline_rss: dict[str, int] = {}

    # --- set-up ----------------------------------------------------------------------------------
    def deploy(self) -> None:
        started = time.monotonic()
        bin_dir = dep.ensure_postgres()
        redis_bin = dep.ensure_redis()
        self.postgres = dep.Postgres(self.root, self.processes, bin_dir)
        self.postgres.start()
        self.redis = dep.Redis(self.root, self.processes, redis_bin)
        self.redis.start()
        log(f"PostgreSQL on port {self.postgres.port}, Redis on {self.redis.url}")
        port = dep.free_port()
        self.emulator = self.processes.start(
            "autopilot-emulator",
            [sys.executable, str(HERE / "ha_emulator.py"), "--port", str(port)],
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"},
            cwd=self.root,
            log_path=self.root / "logs" / "emulator.log",
        )
        self.endpoint = f"http://{dep.LOOPBACK}:{port}"
        wait_until("the emulator to answer", lambda: self.control("GET", "request-counts") is not None, 60)
        self.control("POST", "configure", {"stage_seconds": HOLD_STAGE_SECONDS})
        import boto3

        self.sagemaker = boto3.client(
            "sagemaker",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        dags = self.root / "dags"
        dags.mkdir()
        shutil.copy(REPO / "dags" / "example_autopilot_promotion.py", dags)
        (dags / "ha_watch.py").write_text(WATCH_DAG % {"poll": POLL_SECONDS})
        limit = str(self.args.waits + 32)
        database = self.postgres.sqlalchemy_url
        self.airflow = dep.Airflow(
            root=self.root,
            processes=self.processes,
            venv_bin=VENV_BIN,
            dags_folder=dags,
            database_url=database,
            aws_connection=dep.aws_connection(self.endpoint, ACCESS_KEY, SECRET_KEY),
            poll_seconds=POLL_SECONDS,
            niceness=NICENESS,
            extra_env={
                "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
                "AIRFLOW__CELERY__BROKER_URL": self.redis.url,
                "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database,
                "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
                "AIRFLOW__CORE__PARALLELISM": limit,
                "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": limit,
                "AIRFLOW__CORE__MAX_ACTIVE_RUNS_PER_DAG": limit,
                "AIRFLOW__SCHEDULER__MAX_TIS_PER_QUERY": "64",
                # A task whose worker died is failed (and retried) after this long without a heartbeat.
                "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
                # A task the killed worker had taken from Redis but not started has no heartbeat: it
                # stays queued until this timeout (600 s by default) requeues it. 180 s is above the
                # longest honest queue here (202 sensors on 16 slots, about a minute).
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "180",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "15",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "15",
                "AIRFLOW__TRIGGERER__CAPACITY": str(self.args.waits + 32),
            },
        )
        self.airflow.migrate()
        log("airflow db migrate: done")
        for name in ("api-server", "scheduler", "dag-processor"):
            self.airflow.start(name)
        for index in (1, 2):
            self.start_worker(index)
        # One triggerer after the other: each one's job id is the newest TriggererJob row then.
        for index in (1, 2):
            name = f"triggerer-{index}"
            process = self.airflow.start_named(name, ("triggerer", "--skip-serve-logs"))
            known = set(self.triggerer_jobs.values())
            job = wait_until(
                f"{name} to register its job",
                lambda known=known: next((j for j in self.triggerer_job_ids() if j not in known), None),  # type: ignore[misc]
                120,
                1,
                alive=self.alive,
            )
            self.triggerer_jobs[name] = job
            log(f"{name}: pid {process.pid}, triggerer job {job}")
        self.api = AirflowAPI(self.airflow.api_url)
        api = self.api
        wait_until(
            "the API server to answer",
            lambda: all(p.get("status") == "healthy" for p in api.health().values()),
            180,
            1,
            alive=self.alive,
        )
        api.login()
        wait_until(
            "the dag-processor to parse the DAGs",
            lambda: all(self.dag_exists(d) for d in (WATCH, PROMOTION)),
            180,
            1,
            alive=self.alive,
        )
        for name in ("triggerer-1", "triggerer-2"):
            self.baseline_rss[name] = group_usage(self.airflow.components[name].pid)[1]
        self.report.figure(f"deployment up in {time.monotonic() - started:.0f} s")

    def start_worker(self, index: int, generation: int = 1) -> None:
        assert self.airflow is not None
        name = f"worker-{index}" + (f"-{generation}" if generation > 1 else "")
        self.airflow.start_named(
            name,
            ("celery", "worker", "--skip-serve-logs", "--celery-hostname", f"w{index}g{generation}@%h"),
        )

    def dag_exists(self, dag_id: str) -> bool:
        assert self.api is not None
        try:
            return bool(self.api.dag(dag_id))
        except RuntimeError:
            return False

    def control(self, method: str, route: str, body: dict | None = None, ha: bool = False) -> Any:
        prefix = "autopilot-emulator-ha" if ha else "autopilot-emulator"
        response = httpx.request(method, f"{self.endpoint}/moto-api/{prefix}/{route}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def sql(self, query: str) -> list[list[str]]:
        assert self.postgres is not None
        return [line.split("|") for line in self.postgres.psql(query).splitlines() if line]

    def triggerer_job_ids(self) -> list[int]:
        rows = self.sql("SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running'")
        return [int(r[0]) for r in rows]

    def alive(self) -> None:
        for part in (self.postgres, self.redis, self.airflow):
            if part is not None:
                part.alive()
        if self.emulator is not None and not self.emulator.running():
            raise DeploymentError(f"the emulator exited:\n{dep.tail(self.root / 'logs' / 'emulator.log')}")

    # --- the scenario ----------------------------------------------------------------------------
    def create_watch_jobs(self) -> None:
        from concurrent.futures import ThreadPoolExecutor

        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        dep.put_training_data(s3, "ha-watch", 100)
        n = self.args.waits

        def create(index: int) -> None:
            name = f"ha-w{index:04d}-{self.token}"
            # Staggered: once the clock moves, job i ends STAGGER_SECONDS * i / n after the first.
            stage = HOLD_STAGE_SECONDS + STAGGER_SECONDS * index / n / 8
            dep.create_watch_job(
                self.sagemaker,
                name,
                "ha-watch",
                f"{stage:.4f}",
                AutoMLJobConfig={"CompletionCriteria": {"MaxCandidates": 1}},
                **dep.BINARY_F1,
            )
            self.watch_jobs[f"ha-watch-{index:04d}-{self.token}"] = name

        with ThreadPoolExecutor(max_workers=4) as pool:
            list(pool.map(create, range(n)))
        log(f"created {n} watch jobs")

    def start_runs(self) -> None:
        assert self.api is not None
        for dag_id in (WATCH, PROMOTION):
            self.api.unpause(dag_id)
        # Promotion run B's CreateAutoMLJob answer is held: its worker dies before the XCom push.
        self.control("POST", "hold", {"prefix": "ha-promo-b"}, ha=True)
        for letter in ("a", "b"):
            run_id = f"ha-promotion-{letter}-{self.token}"
            self.promotion_runs[letter] = run_id
            self.api.trigger(
                PROMOTION,
                run_id,
                {
                    "job_name_prefix": f"ha-promo-{letter}",
                    "bucket": f"ha-promotion-{letter}",
                    "model_package_group": f"ha-promotion-{letter}",
                    "endpoint_name": f"ha-promotion-{letter}",
                    "threshold": 0.0,
                },
            )
        for run_id, job in self.watch_jobs.items():
            self.api.trigger(WATCH, run_id, {"job_name": job})
        log(f"triggered {len(self.watch_jobs)} watch runs and 2 promotion runs")

    def kill_worker_mid_create(self) -> None:
        assert self.airflow is not None
        held = wait_until(
            "promotion run B's CreateAutoMLJob to be held",
            lambda: self.control("GET", "hold", ha=True)["held"],
            300,
            1,
            alive=self.alive,
        )
        run_id = self.promotion_runs["b"]
        rows = self.sql(
            f"SELECT pid FROM task_instance WHERE run_id = '{run_id}' AND task_id = 'create_job' AND pid IS NOT NULL"
        )
        pids = {int(r[0]) for r in rows if r[0]}
        victim = None
        for name, process in self.airflow.components.items():
            if name.startswith("worker") and process.running() and pids & descendants(process.pid):
                victim = name
        if victim is None:  # the pid column lags: the worker whose group has a task process
            busy = [
                n
                for n, p in self.airflow.components.items()
                if n.startswith("worker") and p.running() and len(dep.group_members(p.pid)) > 1
            ]
            victim = busy[0] if busy else "worker-1"
        process = self.airflow.components.pop(victim)
        # The tasks running on that worker die with it (their try is lost, as on any worker loss);
        # which of the running ones were on it is told apart afterwards (they never deferred).
        running = self.sql("SELECT run_id, task_id FROM task_instance WHERE state = 'running'")
        self.running_at_kill = {(r[0], r[1]) for r in running}
        children = descendants(process.pid)  # a task process may run in a session of its own
        self.processes.stop(process, kill=True)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        log(f"SIGKILLed {victim} (pid {process.pid}) while {held} was being created")
        self.control("DELETE", "hold", ha=True)
        index = int(victim.split("-")[1])
        self.start_worker(index, generation=2)
        self.held_job = held

    def counts(self) -> dict[str, int]:
        return dict(self.control("GET", "request-counts"))

    def wait_all_deferred(self) -> None:
        expected = len(self.watch_jobs) + 2

        def deferred() -> bool:
            rows = self.sql(
                f"SELECT count(*) FROM task_instance WHERE task_id = '{SENSOR}' AND state = 'deferred'"
            )
            return int(rows[0][0]) >= expected

        wait_until(
            f"all {expected} sensors to be deferred", deferred, self.args.defer_timeout, 2, alive=self.alive
        )
        log(f"all {expected} sensors deferred")

    def trigger_owners(self) -> dict[int, int]:
        rows = self.sql("SELECT coalesce(triggerer_id, 0), count(*) FROM trigger GROUP BY 1")
        return {int(r[0]): int(r[1]) for r in rows}

    def steady_state(self, label: str, triggerers: list[str], cycles: int = 4) -> None:
        """Calls per cycle per triggerer and CPU per cycle over ``cycles`` poll intervals, nothing changing."""
        assert self.airflow is not None
        # Past every registration: a trigger that starts (or moves) lists what changed since its
        # hand-off once, in the cycle after it registers.
        wait_until("every trigger to be assigned", lambda: 0 not in self.trigger_owners(), 120, 1)
        time.sleep(2 * POLL_SECONDS)
        before, cpu_before = (
            self.counts(),
            {n: group_usage(self.airflow.components[n].pid)[0] for n in triggerers},
        )
        time.sleep(cycles * POLL_SECONDS)
        after = self.counts()
        calls = {op: after.get(op, 0) - before.get(op, 0) for op in after}
        calls = {op: c for op, c in calls.items() if c}
        # The floor is for the coalesced polling; a training job's candidate counts (the promotion
        # runs' sensors, every candidate_interval) are that wait's progress lines, shown apart.
        per = (calls.get("ListAutoMLJobs", 0) + calls.get("DescribeAutoMLJob", 0)) / cycles / len(triggerers)
        cpu = {
            n: (group_usage(self.airflow.components[n].pid)[0] - cpu_before[n]) / cycles for n in triggerers
        }
        rss = {n: group_usage(self.airflow.components[n].pid)[1] for n in triggerers}
        self.report.figure(
            f"{label}: {per:.2f} emulator calls per poll cycle per triggerer ({calls} over {cycles} cycles,"
            f" {len(triggerers)} triggerer(s)); triggerer CPU s/cycle "
            + ", ".join(f"{n} {v:.3f}" for n, v in cpu.items())
        )
        self.rss_now = rss
        # The floor: one page per cycle per triggerer, no describe (no job changes), plus at most one
        # full listing per triggerer in the window (ceil(waits / 100) pages in place of one): the
        # poller's safety net every 540 s of server time, or its catch-up after triggers moved.
        # (A full listing pages through the account's newest jobs until it has seen every one watched.)
        full = math.ceil((len(self.watch_jobs) + 2) / 100) - 1
        allowed = 1 + full / cycles
        self.report.check(
            "poller",
            f"{label}: calls per cycle per triggerer at the floor (one ListAutoMLJobs page, no describe;"
            f" at most one full listing in {cycles} cycles: {allowed:.2f})",
            per <= allowed + 0.01 and calls.get("DescribeAutoMLJob", 0) == 0,
            f"{per:.2f}",
        )

    def scenario(self) -> None:
        assert self.airflow is not None and self.postgres is not None
        self.create_watch_jobs()
        self.start_runs()
        self.kill_worker_mid_create()
        self.wait_all_deferred()
        owners = self.trigger_owners()
        both = {self.triggerer_jobs["triggerer-1"], self.triggerer_jobs["triggerer-2"]}
        self.report.check(
            "triggerer HA",
            "the deferred waits are spread over both triggerers",
            both <= set(owners),
            str(owners),
        )
        time.sleep(2 * POLL_SECONDS)  # both pollers past their start
        self.steady_state("two triggerers", ["triggerer-1", "triggerer-2"])
        survivor_rss, survivor_waits = (
            self.rss_now["triggerer-2"],
            owners.get(self.triggerer_jobs["triggerer-2"], 0),
        )
        # --- one triggerer killed for good -----------------------------------------------------------
        victim = "triggerer-1"
        dead, survivor = self.triggerer_jobs[victim], self.triggerer_jobs["triggerer-2"]
        moved = owners.get(dead, 0)
        process = self.airflow.components.pop(victim)
        killed_at = time.monotonic()
        self.processes.stop(process, kill=True)
        log(f"SIGKILLed {victim} (job {dead}) holding {moved} waits; it is not restarted")
        wait_until(
            "every trigger to move to the surviving triggerer",
            lambda: set(self.trigger_owners()) == {survivor},
            180,
            2,
            alive=self.alive,
        )
        self.report.figure(f"{moved} waits moved to the survivor in {time.monotonic() - killed_at:.0f} s")
        # --- PostgreSQL restarted while everything waits ---------------------------------------------
        self.steady_state("one triggerer", ["triggerer-2"])
        waits = len(self.watch_jobs) + 2
        rss = self.rss_now["triggerer-2"]
        grown = rss - self.baseline_rss["triggerer-2"]
        marginal = (rss - survivor_rss) / max(1, waits - survivor_waits)
        self.report.figure(
            f"triggerer resident memory: {rss / 1024:.0f} MiB with {waits} waits ({grown / 1024:.0f} MiB more than"
            f" with none: {grown / waits:.0f} KiB per wait, one-time imports and service model included);"
            f" {marginal:.0f} KiB per wait taken over ({survivor_waits} -> {waits} waits)"
        )
        # --- PostgreSQL restarted while everything waits ---------------------------------------------
        down = self.postgres.restart()
        log(f"PostgreSQL restarted ({down:.1f} s down)")
        time.sleep(3 * POLL_SECONDS)
        died = [name for name, process in self.airflow.components.items() if not process.running()]
        self.report.check(
            "faults",
            "every Airflow component lives through the PostgreSQL restart",
            not died,
            ", ".join(died),
        )
        for name in died:  # started again, as a process supervisor (systemd, Kubernetes) would
            process = self.airflow.components.pop(name)
            self.processes.stop(process)
            log(f"{name} exited on the database restart: starting it again")
            if name.startswith("triggerer"):
                known = set(self.triggerer_jobs.values())
                self.airflow.start_named(f"{name}-r", ("triggerer", "--skip-serve-logs"))

                def registered(known: set[int] = known) -> int | None:
                    return next((j for j in self.triggerer_job_ids() if j not in known), None)

                job = wait_until(f"{name}-r to register its job", registered, 120, 1)
                self.triggerer_jobs[f"{name}-r"] = job

                def taken_over(job: int = job) -> bool:
                    return set(self.trigger_owners()) == {job}

                wait_until(f"every trigger to move to {name}-r", taken_over, 180, 2)
            elif name.startswith("worker"):
                self.start_worker(int(name.split("-")[1]), generation=3)
            else:
                self.airflow.start(name)
        self.alive()
        # --- the jobs end, staggered ------------------------------------------------------------------
        rows = self.sagemaker.list_auto_ml_jobs(MaxResults=1, SortBy="CreationTime", SortOrder="Ascending")
        first = rows["AutoMLJobSummaries"][0]["CreationTime"].timestamp()
        now = float(self.control("POST", "advance", {"seconds": 0}, ha=True)["now"])
        jump = max(0.0, first + 8 * HOLD_STAGE_SECONDS + 2 - now)
        self.advance = jump
        self.control("POST", "advance", {"seconds": jump}, ha=True)
        log(f"emulator clock moved {jump:.0f} s: the jobs end over the next {STAGGER_SECONDS:.0f} s or so")
        self.wait_runs()

    def wait_runs(self) -> None:
        def finished(dag_id: str, count: int) -> Callable[[], bool]:
            def check() -> bool:
                rows = self.sql(
                    f"SELECT count(*) FROM dag_run WHERE dag_id = '{dag_id}' AND state IN ('success', 'failed')"
                )
                return int(rows[0][0]) >= count

            return check

        watch = finished(WATCH, len(self.watch_jobs))
        wait_until("every watch run to finish", watch, self.args.run_timeout, 3, alive=self.alive)
        # The promotion jobs were created last: the clock moves on once more for them.
        self.control("POST", "advance", {"seconds": 8 * HOLD_STAGE_SECONDS}, ha=True)
        self.advance_promotion = 8 * HOLD_STAGE_SECONDS
        promotion = finished(PROMOTION, 2)
        wait_until("both promotion runs to finish", promotion, self.args.run_timeout, 3, alive=self.alive)

    # --- checks ----------------------------------------------------------------------------------
    def verify(self) -> None:
        assert self.api is not None
        rows = self.sql("SELECT run_id, state FROM dag_run")
        states = {r[0]: r[1] for r in rows}
        bad = {r: s for r, s in states.items() if s != "success"}
        self.report.check(
            "runs", f"all {len(states)} runs end success", not bad, str(dict(list(bad.items())[:5]))
        )
        tries = self.sql(f"SELECT run_id, try_number FROM task_instance WHERE task_id = '{SENSOR}'")
        self.final_try = {r[0]: int(r[1]) for r in tries}
        assert self.airflow is not None
        home = self.airflow.home
        running: set[tuple[str, str]] = getattr(self, "running_at_kill", set())

        def deferred_in_try_1(run_id: str) -> bool:
            folder = home / "logs" / f"dag_id={WATCH}" / f"run_id={run_id}" / f"task_id={SENSOR}"
            return any(folder.glob("attempt=1.log.trigger.*.log"))

        # A try may be lost only by a sensor running its first check on the killed worker: it was
        # running then and never deferred in try 1. A wait that had deferred must end in try 1.
        lost = {run for run, t in self.final_try.items() if t != 1 and (run, SENSOR) in running}
        burned = {
            run: t
            for run, t in self.final_try.items()
            if t != 1 and (run not in lost or deferred_in_try_1(run))
        }
        self.report.figure(f"sensors whose first check died with the killed worker (retried): {len(lost)}")
        self.report.check(
            "runs",
            "no sensor try burned: every wait that deferred ended in its first try",
            not burned,
            str(burned),
        )
        # One job per promotion run, the killed worker's run included.
        for letter, run_id in self.promotion_runs.items():
            jobs = [
                j["AutoMLJobName"]
                for j in self.sagemaker.list_auto_ml_jobs(NameContains=f"ha-promo-{letter}", MaxResults=100)[
                    "AutoMLJobSummaries"
                ]
            ]
            created = self.api.xcom(PROMOTION, run_id, "create_job")["AutoMLJobName"]
            self.report.check(
                "worker killed mid-create" if letter == "b" else "runs",
                f"promotion {letter.upper()}: one job in the emulator, the one create_job handed on",
                jobs == [created],
                f"{jobs} / {created}",
            )
        create_tries = self.sql(
            f"SELECT try_number, state FROM task_instance WHERE run_id = '{self.promotion_runs['b']}'"
            " AND task_id = 'create_job'"
        )
        self.report.check(
            "worker killed mid-create",
            "create_job of run B needed a retry (its worker was killed) and re-attached to the held job",
            bool(create_tries) and create_tries[0][0] != "1" and getattr(self, "held_job", None) is not None,
            f"{create_tries}, held {getattr(self, 'held_job', None)}",
        )
        # Each sensor's log holds its own job's lines only; two trigger logs show a moved wait.
        names = set(self.watch_jobs.values())
        strays, missing = [], []
        for run_id, job in self.watch_jobs.items():
            text = log_text(self.api.log(WATCH, run_id, SENSOR, self.final_try.get(run_id, 1)))
            if job not in text:
                missing.append(run_id)
            others = [n for n in names if n != job and n in text]
            if others:
                strays.append((run_id, others[:2]))
        self.report.check("logs", "every sensor log names its own job", not missing, str(missing[:5]))
        self.report.check("logs", "no sensor log holds another job's lines", not strays, str(strays[:5]))
        self.report.check("logs", "no credential in any component log", not self.secret_in_logs())
        # Notice latency: job end (emulator time, minus the clock's jump) to sensor end.
        ends = self.control("GET", "change-log")["jobs"]
        finished = {
            r[0]: float(r[1])
            for r in self.sql(
                f"SELECT run_id, extract(epoch FROM end_date) FROM task_instance"
                f" WHERE task_id = '{SENSOR}' AND dag_id = '{WATCH}' AND end_date IS NOT NULL"
            )
        }
        latencies = []
        for run_id, job in self.watch_jobs.items():
            end = next((t for t, status, _ in ends.get(job, []) if status == "Completed"), None)
            if end is not None and run_id in finished:
                latencies.append(finished[run_id] - (end - self.advance))
        fired = []
        assert self.airflow is not None
        for run_id, job in self.watch_jobs.items():
            end = next((t for t, status, _ in ends.get(job, []) if status == "Completed"), None)
            folder = self.airflow.home / "logs" / f"dag_id={WATCH}" / f"run_id={run_id}" / f"task_id={SENSOR}"
            for path in folder.glob("attempt=*.log.trigger.*.log"):
                for line in path.read_text(errors="replace").splitlines():
                    if '"Trigger fired event"' in line and end is not None:
                        stamp = json.loads(line)["timestamp"].replace("Z", "+00:00")
                        fired.append(datetime.fromisoformat(stamp).timestamp() - (end - self.advance))
        self.report.figure(
            f"notice latency job end -> trigger event over {len(fired)} waits: p50 {percentile(fired, 0.5):.1f} s,"
            f" p95 {percentile(fired, 0.95):.1f} s, max {max(fired, default=math.nan):.1f} s (poll {POLL_SECONDS:g} s)"
        )
        self.report.figure(
            f"notice latency job end -> sensor success over {len(latencies)} waits: p50 {percentile(latencies, 0.5):.1f} s,"
            f" p95 {percentile(latencies, 0.95):.1f} s, max {max(latencies, default=math.nan):.1f} s"
            f" (poll {POLL_SECONDS:g} s; includes the resumed sensor's run on a Celery worker)"
        )
        blocked: dict[str, list[tuple[datetime, float]]] = {}
        for path in sorted((self.root / "logs").glob("triggerer-*.log")):
            name = path.stem
            text = path.read_text(errors="replace")
            blocked[name] = [
                (
                    datetime.fromisoformat(line.split(" ", 1)[0].replace("Z", "+00:00")),
                    float(line.split("blocked for ", 1)[1].split(" seconds", 1)[0]),
                )
                for line in text.splitlines()
                if BLOCKED in line and "blocked for " in line and line[:4].isdigit()
            ]
        count = sum(len(v) for v in blocked.values())
        # Blocks both triggerers report within a second of each other: both starting their first
        # triggers at once, or the machine stalling both processes. Shown apart, still counted.
        one, two = blocked.get("triggerer-1", []), blocked.get("triggerer-2", [])
        shared = sum(1 for t, _ in one if any(abs((t - u).total_seconds()) <= 1.0 for u, _ in two))
        self.report.figure(
            f"blocked-loop warnings: {count}; "
            + "; ".join(
                f"{n}: " + ", ".join(f"{t:%H:%M:%S} {d:.2f} s" for t, d in v) for n, v in blocked.items()
            )
            + f" ({shared} seen by both triggerers within 1 s)"
        )
        self.report.check(
            "triggerer",
            f"at most {self.args.max_blocked} 'async thread was blocked' warnings from both triggerers",
            count <= self.args.max_blocked,
            f"{count}",
        )

    def secret_in_logs(self) -> bool:
        for path in (self.root / "logs").rglob("*.log"):
            if SECRET_KEY in path.read_text(errors="replace"):
                return True
        return False

    def run(self) -> int:
        self.deploy()
        self.scenario()
        self.verify()
        print("\nFigures:")
        for figure in self.report.figures:
            print(f"  {figure}")
        failed = self.report.failed
        print(f"\n{len(self.report.checks) - len(failed)} of {len(self.report.checks)} checks passed")
        return 1 if failed else 0

    def dump_logs(self) -> None:
        for path in sorted((self.root / "logs").glob("*.log")):
            print(f"\n--- {path.name} (last 25 lines) ---\n{dep.tail(path, 25)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--waits", type=int, default=200, help="watch runs (default %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--max-blocked",
        type=int,
        default=0,
        help="blocked-loop warnings tolerated (default %(default)s; a loaded machine stalls the triggerers)",
    )
    parser.add_argument("--defer-timeout", type=float, default=900, help="seconds for every sensor to defer")
    parser.add_argument("--run-timeout", type=float, default=600, help="seconds for the runs to finish")
    parser.add_argument("--time-limit", type=int, default=2400, help="seconds for the whole test")
    args = parser.parse_args(argv)

    return dep.run_scenario(
        args,
        lambda root, processes: HaTest(args, root, processes),
        lambda root: (
            f"production-topology test in {root}: {args.waits} waits (Python {sys.version.split()[0]})"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())

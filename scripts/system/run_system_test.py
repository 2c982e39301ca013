"""
``make system-test``: the example DAGs in a real Airflow deployment, driven as a user drives it.

Starts, on 127.0.0.1 only and in a temporary folder: PostgreSQL (a cluster of its own, from Debian's
packages, installed when missing), the Autopilot emulator (``autopilot-emulator``) and Airflow's
components as separate processes (``api-server``, ``scheduler`` with the LocalExecutor,
``dag-processor``, ``triggerer``). Then, through Airflow's REST API, it runs all of these at once:

* two ``example_autopilot_promotion`` runs and three ``example_autopilot_watch_existing_job`` runs
  (jobs created here with boto3), with their sensors deferred together in one triggerer;
* one promotion run whose job fails (``emu-failed-`` name prefix);
* ``example_autopilot_on_new_model``, run by the scheduler on promotion run A's asset event;
* the triggerer killed (SIGKILL) while the waits are deferred, then started again;
* the event-driven DAGs (``scenario_events.py``): jobs created through boto3 and a version approved
  through boto3 start one run each, across that restart and a triggerer downtime;

and checks per-task log routing, the failure path, the restart, the XCom values and extra links,
that the connection's credentials appear in no log, trigger row or XCom, the latency from a job's
end to its sensor's end, and, in headless Chromium, the "Autopilot Job" link on the sensor's page
(plus screenshots of the grid and of the sensor's log).

Every process it starts is recorded by process id and stopped on success, failure, Ctrl-C or
SIGTERM; the temporary folder is removed (``--keep`` keeps it). Exit status 0 only when every
check passed; 1 when a check failed; 2 when the deployment could not be set up (PostgreSQL or
Chromium could not be installed, a component did not start).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import deployment as dep
import scenario_events
from airflow_api import AirflowAPI, log_text
from browser import Browser, anchors
from deployment import DeploymentError, log, wait_until
from scenario_guardrails import GuardrailScenario

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent

#: Fake but recognisable credentials of the AWS connection: none may show up in a log, trigger or XCom.
ACCESS_KEY = "AKIAEXAMPLESYSTEMTEST"
SECRET_KEY = "sys-test-secret-do-not-log"
REGION = "us-east-1"

#: The example DAGs' parse-time poll interval (``AUTOPILOT_EXAMPLE_POLL_SECONDS``).
POLL_SECONDS = 5.0
#: Allowed time from a job's EndTime to its sensor task's end, beyond one poll interval.
LATENCY_SLACK_SECONDS = 10.0
#: Seconds per emulated stage for the jobs the promotion DAG creates (the emulator's setting):
#: a success takes 8 stages, a failure about 4, so their sensors are deferred together for a while.
PROMOTION_STAGE_SECONDS = 8.0
#: Seconds per stage of the three jobs the watch runs wait for (a per-job tag).
WATCH_STAGE_SECONDS = (8.0, 9.0, 10.0)
#: The time the restarted triggerer needs before it takes over (its health-check threshold is 10 s).
TRIGGERER_DOWN_SECONDS = 3.0

PROMOTION = "example_autopilot_promotion"
WATCH = "example_autopilot_watch_existing_job"
ONE_CLICK = "example_autopilot_one_click_deploy"  # parsed and checked for import errors only
#: Scheduled on the Model Package Group asset that promotion run A's approval step updates.
ON_NEW_MODEL = "example_autopilot_on_new_model"
NEW_MODEL_GROUP = "systest-promotion-a"
#: The emulator's account (moto's default): the group asset's URI holds it.
ACCOUNT_ID = "123456789012"
SENSOR = "wait_for_job"
CONSOLE_URL = "https://console.aws.amazon.com/sagemaker/home?region={region}#/automl-jobs/{job}"

#: docs/operators.md, "The XCom contract": the sensor's job summary.
SUMMARY_KEYS = {
    "AutoMLJobName",
    "AutoMLJobArn",
    "AutoMLJobStatus",
    "AutoMLJobSecondaryStatus",
    "EndTime",
    "FailureReason",
    "PartialFailureReasons",
    "BestCandidateName",
    "BestCandidateObjectiveMetric",
    "AutoMLProblemTypeConfigName",
}
PROMOTION_DOWNSTREAM = (
    "best_candidate",
    "leaderboard",
    "gate",
    "register",
    "approval",
    "deploy",
    "smoke_test",
    "reject",
)

STATE_LINE = re.compile(r"^Autopilot job (?P<job>\S+) is (?P<state>[A-Za-z]+/[A-Za-z]+)\b")
COUNT_LINE = re.compile(r"^Autopilot job (?P<job>\S+): (at least )?\d+ of \S+ candidates completed")
TRIGGER_STARTING = re.compile(r"^trigger .* starting$")
TRIGGER_FIRED = "Trigger fired event"
TERMINAL = {"Completed", "Failed", "Stopped"}
TRAINING = {"InProgress/ModelTuning", "InProgress/TrainingModels"}
FINISHED = {"success", "failed", "upstream_failed", "skipped", "removed"}


# --- results -------------------------------------------------------------------------------------
@dataclass
class Check:
    scenario: str
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    """Every assertion with its outcome; the run fails when one failed."""

    checks: list[Check] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def check(self, scenario: str, name: str, ok: bool, detail: str = "") -> bool:
        self.checks.append(Check(scenario, name, bool(ok), detail))
        mark = "PASS" if ok else "FAIL"
        print(f"  {mark}  [{scenario}] {name}" + (f": {detail}" if detail else ""), flush=True)
        return bool(ok)

    def figure(self, text: str) -> None:
        self.figures.append(text)
        print(f"  ....  {text}", flush=True)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.ok]


@dataclass
class Run:
    """One DAG run the test triggers and what it expects of it."""

    label: str
    dag_id: str
    run_id: str
    conf: dict[str, Any]
    expect_success: bool
    job_name: str | None = None  # known up front for watch runs, read from create_job for promotion runs
    job_prefix: str | None = None
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    state: str | None = None


def iso(value: str | None) -> datetime | None:
    """An ISO 8601 string from Airflow or the XComs as an aware UTC datetime (the package's one
    parser, :func:`airflow_autopilot.core.clock.parse_timestamp`); ``None`` for an empty value."""
    from airflow_autopilot.core.clock import parse_timestamp

    return parse_timestamp(value) if value else None


def has_timezone(value: Any) -> bool:
    """Whether ``value`` is an ISO 8601 timestamp string that names its offset (``Z`` or ``+HH:MM``)."""
    if not isinstance(value, str) or not re.search(r"T.*(Z|[+-]\d{2}:?\d{2})$", value):
        return False
    try:
        return iso(value) is not None
    except ValueError:
        return False


# --- the test ------------------------------------------------------------------------------------
class SystemTest:
    def __init__(self, args: argparse.Namespace, root: Path, processes: dep.Processes) -> None:
        self.args = args
        self.root = root
        self.processes = processes
        self.report = Report()
        self.runs: list[Run] = []
        self.trigger_rows: dict[int, dict[str, Any]] = {}
        self.timings: dict[str, float] = {}
        self.chromium: str | None = None
        self.postgres: dep.Postgres | None = None
        self.emulator: dep.Emulator | None = None
        self.airflow: dep.Airflow | None = None
        self.api: AirflowAPI | None = None
        self.sagemaker: Any = None
        self.triggerer_outage: tuple[float, float] | None = None  # wall-clock kill time, takeover time
        self.deferred_at_kill: list[str] = []

    # --- set-up ----------------------------------------------------------------------------------
    def deploy(self) -> None:
        started = time.monotonic()
        bin_dir = dep.ensure_postgres()
        log(f"PostgreSQL server binaries: {bin_dir}")
        if not self.args.no_browser:
            self.chromium = dep.ensure_chromium()
            log(f"Chromium: {self.chromium}")
        self.timings["installs"] = time.monotonic() - started

        started = time.monotonic()
        self.postgres = dep.Postgres(self.root, self.processes, bin_dir)
        self.postgres.start()
        log(f"PostgreSQL on {dep.LOOPBACK}:{self.postgres.port} (own cluster in {self.root / 'postgres'})")

        self.emulator = dep.Emulator(self.root, self.processes, VENV_BIN)
        self.emulator.start({"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8"})
        settings = self.emulator.control("POST", "configure", {"stage_seconds": PROMOTION_STAGE_SECONDS})
        log(f"emulator at {self.emulator.endpoint_url}, {settings}")

        import boto3

        self.sagemaker = boto3.client(
            "sagemaker",
            endpoint_url=self.emulator.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        self.airflow = dep.Airflow(
            root=self.root,
            processes=self.processes,
            venv_bin=VENV_BIN,
            dags_folder=REPO / "dags",
            database_url=self.postgres.sqlalchemy_url,
            aws_connection=dep.aws_connection(self.emulator.endpoint_url, ACCESS_KEY, SECRET_KEY),
            poll_seconds=POLL_SECONDS,
            example_env={
                "AUTOPILOT_EXAMPLE_MODEL_PACKAGE_GROUP": NEW_MODEL_GROUP,
                "AUTOPILOT_EXAMPLE_ACCOUNT_ID": ACCOUNT_ID,
                "AUTOPILOT_EXAMPLE_REGION": REGION,
                **scenario_events.prepare(self, ACCESS_KEY, SECRET_KEY, REGION),
            },
        )
        self.airflow.migrate()
        log("airflow db migrate: done")
        for name in ("api-server", "scheduler", "dag-processor", "triggerer"):
            self.airflow.start(name)
        self.api = AirflowAPI(self.airflow.api_url)
        api = self.api

        def healthy() -> bool:
            health = api.health()
            return all(part.get("status") == "healthy" for part in health.values())

        wait_until("every Airflow component to report healthy", healthy, 180, 1, alive=self.alive)
        api.login()
        wait_until(
            "the dag-processor to parse the four example DAGs",
            lambda: all(api.dag(dag_id) for dag_id in (PROMOTION, WATCH, ONE_CLICK, ON_NEW_MODEL)),
            180,
            1,
            alive=self.alive,
        )
        self.timings["deployment"] = time.monotonic() - started
        log(f"deployment up in {self.timings['deployment']:.0f}s: {self.airflow.api_url}")
        errors = api.import_errors()
        self.report.check(
            "deployment",
            "the example DAGs parse in the dag-processor with no import error",
            not errors,
            "; ".join(f"{e.get('filename')}: {str(e.get('stack_trace'))[-300:]}" for e in errors),
        )

    def alive(self) -> None:
        for part in (self.postgres, self.emulator, self.airflow):
            if part is not None:
                part.alive()

    # --- the runs --------------------------------------------------------------------------------
    def create_watch_jobs(self) -> list[str]:
        """Three jobs started outside Airflow (as the watch DAG expects), each with its own pace."""
        import boto3

        s3 = boto3.client(
            "s3",
            endpoint_url=self.emulator.endpoint_url if self.emulator else None,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )
        dep.put_training_data(s3, "systest-watch", 200)
        names = []
        for index, stage in enumerate(WATCH_STAGE_SECONDS, start=1):
            name = f"systest-watch{index}-{secrets.token_hex(4)}"
            dep.create_watch_job(self.sagemaker, name, "systest-watch", f"{stage:g}", **dep.BINARY_F1)
            names.append(name)
        return names

    def start_runs(self) -> None:
        assert self.api is not None
        api = self.api
        for dag_id in (PROMOTION, WATCH, ON_NEW_MODEL):
            api.unpause(dag_id)
        watch_jobs = self.create_watch_jobs()
        log(f"created the watch runs' jobs: {', '.join(watch_jobs)}")
        token = secrets.token_hex(3)
        for letter in ("a", "b"):
            prefix = f"sys-promo-{letter}"
            self.runs.append(
                Run(
                    label=f"promotion {letter.upper()}",
                    dag_id=PROMOTION,
                    run_id=f"systest-promotion-{letter}-{token}",
                    conf={
                        "job_name_prefix": prefix,
                        "bucket": f"systest-promotion-{letter}",
                        "model_package_group": f"systest-promotion-{letter}",
                        "endpoint_name": f"systest-promotion-{letter}",
                        "threshold": 0.0,  # always promote: register and deploy run too
                    },
                    expect_success=True,
                    job_prefix=prefix,
                )
            )
        self.runs.append(
            Run(
                label="failing job",
                dag_id=PROMOTION,
                run_id=f"systest-failing-{token}",
                conf={
                    "job_name_prefix": "emu-failed-sys",
                    "bucket": "systest-failing",
                    "model_package_group": "systest-failing",
                    "endpoint_name": "systest-failing",
                },
                expect_success=False,
                job_prefix="emu-failed-sys",
            )
        )
        for index, name in enumerate(watch_jobs, start=1):
            self.runs.append(
                Run(
                    label=f"watch {index}",
                    dag_id=WATCH,
                    run_id=f"systest-watch{index}-{token}",
                    conf={"job_name": name},
                    expect_success=True,
                    job_name=name,
                )
            )
        for run in self.runs:
            api.trigger(run.dag_id, run.run_id, run.conf)
        self.timings["triggered"] = time.monotonic()
        log(f"triggered {len(self.runs)} DAG runs: {', '.join(run.run_id for run in self.runs)}")

    def refresh(self) -> None:
        """Task instances of every run, promotion job names, and the trigger table (accumulated)."""
        assert self.api is not None
        for run in self.runs:
            run.tasks = self.api.task_instances(run.dag_id, run.run_id)
            if run.job_name is None and run.tasks.get("create_job", {}).get("state") == "success":
                run.job_name = self.api.xcom(run.dag_id, run.run_id, "create_job")["AutoMLJobName"]
        self.snapshot_triggers()

    def snapshot_triggers(self) -> list[dict[str, Any]]:
        assert self.postgres is not None
        rows = json.loads(
            self.postgres.psql(
                "SELECT coalesce(json_agg(t), '[]'::json) FROM "
                "(SELECT id, classpath, kwargs, triggerer_id FROM trigger ORDER BY id) t"
            )
            or "[]"
        )
        for row in rows:
            self.trigger_rows.setdefault(row["id"], row).update(row)
        return list(rows)

    def sensor_state(self, run: Run) -> str | None:
        return run.tasks.get(SENSOR, {}).get("state")

    def restart_triggerer(self) -> None:
        """Kill the triggerer while the waits are deferred together, start it again, see it take over."""
        assert self.airflow is not None
        scenario = "triggerer restart"

        def deferred_together() -> bool:
            self.refresh()
            states = [self.sensor_state(run) for run in self.runs]
            unfinished = [state for state in states if state not in FINISHED]
            return (
                bool(unfinished)
                and all(state == "deferred" for state in unfinished)
                and states.count("deferred") >= 5
            )

        try:
            wait_until("the sensors to be deferred together", deferred_together, 240, 1, alive=self.alive)
        except DeploymentError as error:
            self.report.check(
                scenario, "the sensors are deferred together before the kill", False, str(error)
            )
        self.deferred_at_kill = [run.label for run in self.runs if self.sensor_state(run) == "deferred"]
        rows = self.snapshot_triggers()
        old_ids = {row["triggerer_id"] for row in rows if row["triggerer_id"] is not None}
        log(
            f"deferred together: {', '.join(self.deferred_at_kill)}; triggers {[r['id'] for r in rows]} on triggerer job(s) {sorted(old_ids)}"
        )
        self.report.check(
            scenario,
            "at least five sensors are deferred in the one triggerer when it is killed",
            len(self.deferred_at_kill) >= 5 and len(old_ids) == 1,
            f"deferred: {', '.join(self.deferred_at_kill)}; triggerer job ids {sorted(old_ids)}",
        )

        triggerer = self.airflow.components["triggerer"]
        members = dep.group_members(triggerer.pid)
        killed_at = time.time()
        self.processes.stop(triggerer, kill=True)
        alive = [pid for pid in members if pid in dep.group_members(triggerer.pid)]
        self.report.check(
            scenario,
            "SIGKILL ended the triggerer and its trigger runner (its whole process group)",
            len(members) >= 2 and not alive,
            f"group {triggerer.pid}: {len(members)} processes before, still alive: {alive}",
        )
        time.sleep(TRIGGERER_DOWN_SECONDS)
        self.refresh()
        still = [
            run.label
            for run in self.runs
            if run.label in self.deferred_at_kill and self.sensor_state(run) == "deferred"
        ]
        self.report.check(
            scenario,
            "the waits stay deferred while no triggerer runs",
            set(still) == set(self.deferred_at_kill),
            f"still deferred: {', '.join(still)}",
        )
        del self.airflow.components["triggerer"]
        self.airflow.start("triggerer")

        def taken_over() -> bool:
            current = self.snapshot_triggers()
            return all(
                row["triggerer_id"] is not None and row["triggerer_id"] not in old_ids for row in current
            )

        try:
            wait_until("the new triggerer to take the triggers over", taken_over, 120, 0.5, alive=self.alive)
            takeover = time.time()
            self.triggerer_outage = (killed_at, takeover)
            self.report.check(
                scenario,
                "the new triggerer took every orphaned trigger over",
                True,
                f"{takeover - killed_at:.1f}s after the kill",
            )
        except DeploymentError as error:
            self.triggerer_outage = (killed_at, time.time())
            self.report.check(
                scenario, "the new triggerer took every orphaned trigger over", False, str(error)
            )

    def wait_for_runs(self) -> None:
        assert self.api is not None

        def finished() -> bool:
            self.refresh()
            for run in self.runs:
                run.state = self.api.dag_run(run.dag_id, run.run_id)["state"] if self.api else None
            return all(run.state in ("success", "failed") for run in self.runs)

        try:
            wait_until("every DAG run to finish", finished, self.args.run_timeout, 2, alive=self.alive)
        finally:
            self.timings["runs"] = time.monotonic() - self.timings["triggered"]
            log(
                f"DAG runs after {self.timings['runs']:.0f}s: "
                + ", ".join(f"{run.label}={run.state}" for run in self.runs)
            )

    # --- checks ----------------------------------------------------------------------------------
    def job_names(self) -> dict[str, str]:
        return {run.label: run.job_name for run in self.runs if run.job_name}

    def sensor_log(self, run: Run) -> list[dict[str, Any]]:
        assert self.api is not None
        return self.api.log(run.dag_id, run.run_id, SENSOR, 1)

    def check_states(self) -> None:
        scenario = "outcomes"
        for run in self.runs:
            states = {task: ti["state"] for task, ti in run.tasks.items()}
            if run.expect_success:
                expected = {task: "success" for task in states}
                if run.dag_id == PROMOTION:
                    expected["reject"] = "skipped"
                want = "success"
            else:
                expected = {"upload_sample_data": "success", "create_job": "success", SENSOR: "failed"}
                expected["create_rollback_alarm"] = "success"  # the deploy's alarm, set up beside the job
                expected.update({task: "upstream_failed" for task in PROMOTION_DOWNSTREAM})
                want = "failed"
            self.report.check(
                scenario,
                f"{run.label}: DAG run {want}, every task as expected",
                run.state == want and states == expected,
                f"run {run.state}; tasks {states}"
                if (run.state != want or states != expected)
                else run.run_id,
            )

    def check_failure(self) -> None:
        scenario = "failing job"
        run = next(run for run in self.runs if not run.expect_success)
        assert self.api is not None and run.job_name
        job = self.sagemaker.describe_auto_ml_job(AutoMLJobName=run.job_name)
        reason = job.get("FailureReason") or ""
        self.report.check(
            scenario,
            "the emulated job failed with a FailureReason",
            job["AutoMLJobStatus"] == "Failed" and bool(reason),
            reason,
        )
        sensor = run.tasks.get(SENSOR, {})
        tries = self.api.tries(run.dag_id, run.run_id, SENSOR)
        self.report.check(
            scenario,
            "the sensor failed on its first try though retries were left (no retry burned)",
            sensor.get("state") == "failed"
            and sensor.get("try_number") == 1
            and sensor.get("max_tries", 0) >= 1
            and len(tries) == 1,
            f"state {sensor.get('state')}, try {sensor.get('try_number')} of 1+{sensor.get('max_tries')} retries, {len(tries)} tr(y/ies)",
        )
        entries = self.sensor_log(run)
        failure_lines = [
            entry for entry in entries
            if str(entry.get("level", "")).lower() in ("error", "critical") and reason and reason in log_text([entry])
        ]  # fmt: skip
        self.report.check(
            scenario,
            "the sensor's log has the task failure (error level) carrying the job's FailureReason",
            bool(failure_lines) and any("AutopilotJobFailed" in log_text([entry]) for entry in failure_lines),
            str(failure_lines[0].get("event"))[:200]
            if failure_lines
            else "no error-level entry with the reason",
        )
        downstream = {task: run.tasks.get(task, {}).get("state") for task in PROMOTION_DOWNSTREAM}
        self.report.check(
            scenario,
            "every task after the sensor ended upstream_failed",
            set(downstream.values()) == {"upstream_failed"},
            str(downstream),
        )

    def check_log_routing(self) -> None:
        """Each sensor's log holds its own job's progress and no other job's: the cross-talk check."""
        scenario = "log routing"
        names = self.job_names()
        for run in self.runs:
            own = run.job_name
            if own is None:
                self.report.check(scenario, f"{run.label}: job name known", False)
                continue
            entries = self.sensor_log(run)
            text = log_text(entries)
            foreign = sorted(label for label, name in names.items() if name != own and name in text)
            self.report.check(
                scenario,
                f"{run.label}: the sensor's log names no other job",
                not foreign,
                f"holds lines of {', '.join(foreign)}: "
                + "; ".join(
                    str(e.get("event"))[:90]
                    for e in entries
                    if any(names[label] in str(e.get("event")) for label in foreign)
                )[:600]
                if foreign
                else own,
            )
            worker, segments, counts = split_log(entries, own)
            trigger_states = [state for segment in segments for state in segment]
            # The trigger that fired the event (the last one) logged its own job's changes up to the
            # terminal status: before the fix those lines went to another trigger's log.
            last = segments[-1] if segments else []
            self.report.check(
                scenario,
                f"{run.label}: the triggerer's part of the log follows its own job to the end",
                bool(last) and last[-1].split("/")[0] in TERMINAL,
                f"worker logged {worker}; trigger logged {segments}",
            )
            # The worker's last line and the first trigger's lines follow each other; a second
            # segment (after the triggerer restart) starts afresh.
            duplicates = []
            for index, segment in enumerate(segments):
                sequence = (worker if index == 0 else []) + segment
                duplicates += [f"{b} twice" for a, b in pairwise(sequence) if a == b]
            self.report.check(
                scenario,
                f"{run.label}: no status line logged twice in a row (worker, then trigger)",
                not duplicates,
                ", ".join(duplicates) or f"{len(worker) + len(trigger_states)} status lines",
            )
            # While candidates train, the wait counts them (at most once per candidate_interval, the
            # first count at once): a trigger that logged its job entering training logged a count.
            uncounted = [
                index + 1
                for index, segment in enumerate(segments)
                if TRAINING & set(segment) and counts[index] == 0
            ]
            self.report.check(
                scenario,
                f"{run.label}: the trigger that saw its job train logged a candidate count",
                not uncounted,
                f"no count in trigger run(s) {uncounted}"
                if uncounted
                else f"counts per trigger run: {counts}",
            )

    def check_restart(self) -> None:
        scenario = "triggerer restart"
        assert self.api is not None
        listed = self.sagemaker.list_auto_ml_jobs(MaxResults=100)["AutoMLJobSummaries"]
        all_names = sorted(
            summary["AutoMLJobName"]
            for summary in listed
            # the other scenarios' own jobs
            if not summary["AutoMLJobName"].startswith(
                (scenario_events.JOB_PREFIX, GuardrailScenario.JOB_PREFIX)
            )
        )
        expected = sorted(self.job_names().values())
        self.report.check(
            scenario,
            "each job was created exactly once (ListAutoMLJobs on the emulator)",
            all_names == expected and len(expected) == len(self.runs),
            f"{len(all_names)} jobs: {', '.join(all_names)}",
        )
        for run in self.runs:
            if run.job_prefix:
                mine = [name for name in all_names if name.startswith(run.job_prefix + "-")]
                create = run.tasks.get("create_job", {})
                self.report.check(
                    scenario,
                    f"{run.label}: one job for the run, created on the first try",
                    len(mine) == 1 and create.get("try_number") == 1,
                    f"{mine}, create_job try {create.get('try_number')}",
                )
        for run in self.runs:
            if run.label not in self.deferred_at_kill:
                continue
            entries = self.sensor_log(run)
            events = [str(entry.get("event", "")) for entry in entries]
            fired = events.count(TRIGGER_FIRED)
            resumed = sum(1 for event in events if event.startswith(f"Autopilot job {run.job_name} reached "))
            sensor = run.tasks.get(SENSOR, {})
            want = "success" if run.expect_success else "failed"
            self.report.check(
                scenario,
                f"{run.label}: the wait deferred across the restart ended {want} on try 1, one event, resumed once",
                sensor.get("state") == want and sensor.get("try_number") == 1 and fired == 1
                and (resumed == 1 if run.expect_success else resumed == 0),
                f"state {sensor.get('state')}, try {sensor.get('try_number')}, {fired} event(s), resumed {resumed}x",
            )  # fmt: skip

    def check_xcoms_and_links(self) -> None:
        scenario = "XCom and links"
        assert self.api is not None
        for run in self.runs:
            job = run.job_name or ""
            expected_link = CONSOLE_URL.format(region=REGION, job=job)
            details = self.api.xcom(run.dag_id, run.run_id, SENSOR, "autopilot_job_details")
            self.report.check(
                scenario,
                f"{run.label}: the sensor's autopilot_job_details",
                details
                == {
                    "job_name": job,
                    "region_name": REGION,
                    "partition": "aws",
                    "aws_domain": "aws.amazon.com",
                },
                json.dumps(details),
            )
            link_tasks = [SENSOR] + (["create_job"] if run.dag_id == PROMOTION else [])
            for task in link_tasks:
                links = self.api.links(run.dag_id, run.run_id, task)
                self.report.check(
                    scenario,
                    f"{run.label}: {task}'s extra link is the documented console URL",
                    links == {"Autopilot Job": expected_link},
                    json.dumps(links),
                )
            if run.dag_id == PROMOTION:
                created = self.api.xcom(run.dag_id, run.run_id, "create_job")
                self.report.check(
                    scenario,
                    f"{run.label}: create_job pushed {{AutoMLJobName, AutoMLJobArn}}",
                    created
                    == {
                        "AutoMLJobName": job,
                        "AutoMLJobArn": f"arn:aws:sagemaker:{REGION}:123456789012:automl-job/{job}",
                    },
                    json.dumps(created),
                )
            if not run.expect_success:
                keys = self.api.xcom_keys(run.dag_id, run.run_id, SENSOR)
                self.report.check(
                    scenario,
                    f"{run.label}: the failed sensor pushed no return_value",
                    "return_value" not in keys,
                    str(keys),
                )
                continue
            summary = self.api.xcom(run.dag_id, run.run_id, SENSOR)
            problems = summary_problems(summary, job)
            self.report.check(
                scenario,
                f"{run.label}: the sensor's job summary is the documented JSON-safe value",
                not problems,
                "; ".join(problems) or f"EndTime {summary.get('EndTime')}",
            )
            best = self.api.xcom(run.dag_id, run.run_id, "best_candidate")
            board = self.api.xcom(run.dag_id, run.run_id, "leaderboard")
            problems = candidate_problems(best, summary.get("BestCandidateName"))
            if not isinstance(board, list) or not 1 <= len(board) <= 5:
                problems.append(f"leaderboard is not a list of 1 to 5 candidates: {type(board).__name__}")
            else:
                if board[0].get("CandidateName") != summary.get("BestCandidateName"):
                    problems.append("leaderboard[0] is not the best candidate")
                for candidate in board:
                    problems.extend(candidate_problems(candidate, None))
            self.report.check(
                scenario,
                f"{run.label}: best_candidate and leaderboard are JSON-safe SageMaker shapes",
                not problems,
                "; ".join(problems[:5]),
            )

    def check_asset_triggered_run(self) -> None:
        """
        The downstream example ran because promotion run A's approval step updated its Model
        Package Group asset (no XCom across DAGs): one asset-triggered run, created by that event,
        whose task read the new version from the event's extra.
        """
        scenario = "asset-triggered downstream DAG"
        assert self.api is not None
        api = self.api
        upstream = next(run for run in self.runs if run.conf.get("model_package_group") == NEW_MODEL_GROUP)
        registered = api.xcom(upstream.dag_id, upstream.run_id, "register")
        uri = f"sagemaker://{ACCOUNT_ID}.{REGION}/model-package-group/{NEW_MODEL_GROUP}"

        def downstream_done() -> list[dict[str, Any]]:
            runs = api.dag_runs(ON_NEW_MODEL)
            return runs if runs and all(r["state"] in ("success", "failed") for r in runs) else []

        runs = wait_until("the asset-triggered run to finish", downstream_done, 120, 2, alive=self.alive)
        self.report.check(
            scenario,
            f"exactly one {ON_NEW_MODEL} run, asset-triggered, succeeded",
            len(runs) == 1 and runs[0]["run_type"] == "asset_triggered" and runs[0]["state"] == "success",
            json.dumps([{k: r.get(k) for k in ("dag_run_id", "run_type", "state")} for r in runs]),
        )
        if not runs:
            return
        run_id = runs[0]["dag_run_id"]
        events = api.upstream_asset_events(ON_NEW_MODEL, run_id)
        sources = [
            (e.get("uri"), e.get("source_dag_id"), e.get("source_run_id"), e.get("source_task_id"))
            for e in events
        ]
        self.report.check(
            scenario,
            "created by the upstream run's asset event (approval of promotion A, on the group's URI)",
            sources == [(uri, PROMOTION, upstream.run_id, "approval")],
            json.dumps(sources),
        )
        extra: dict[str, Any] = dict(events[0].get("extra") or {}) if events else {}
        self.report.check(
            scenario,
            "the event's extra names the new version, candidate and objective",
            bool(extra)
            and extra.get("model_package_arn") == registered["ModelPackageArn"]
            and extra.get("model_package_version") == registered["ModelPackageVersion"]
            and extra.get("approval_status") == "Approved"
            and extra.get("objective_metric") == "F1"
            and isinstance(extra.get("objective_value"), (int, float)),
            json.dumps(extra),
        )
        read = api.xcom(ON_NEW_MODEL, run_id, "read_new_model")
        self.report.check(
            scenario,
            "the downstream task read the version from the event (its XCom is the event's extra)",
            read == extra,
            json.dumps(read),
        )

    def check_credentials(self) -> None:
        scenario = "no credential leak"
        assert self.api is not None and self.postgres is not None
        secrets_ = (ACCESS_KEY, SECRET_KEY)
        logs_read = 0
        leaks: list[str] = []
        used = False
        for run in self.runs:
            for task, ti in run.tasks.items():
                if ti.get("try_number", 0) < 1:
                    continue
                if any(secret in json.dumps(ti) for secret in secrets_):
                    leaks.append(f"task instance {run.label}/{task}")
                for try_number in range(1, ti["try_number"] + 1):
                    text = log_text(self.api.log(run.dag_id, run.run_id, task, try_number))
                    logs_read += 1
                    used = used or "credentials retrieved from login and password" in text
                    leaks.extend(
                        f"log {run.label}/{task}/{try_number}" for secret in secrets_ if secret in text
                    )
        self.report.check(
            scenario,
            f"no credential in any of the {logs_read} task logs or task instances",
            not leaks,
            ", ".join(leaks[:5]) or "credentials were in use: " + str(used),
        )
        self.report.check(
            scenario,
            "the tasks really authenticated with the connection's credentials",
            used,
            "'credentials retrieved from login and password' logged",
        )
        self.snapshot_triggers()
        rows = list(self.trigger_rows.values())
        leaking = [row["id"] for row in rows if any(secret in json.dumps(row) for secret in secrets_)]
        job_triggers = [row for row in rows if row["classpath"].endswith("AutopilotJobTrigger")]
        self.report.check(
            scenario,
            f"no credential in the {len(rows)} trigger rows seen (PostgreSQL trigger.kwargs)",
            not leaking and len(job_triggers) >= len(self.runs),
            f"rows {leaking} leak"
            if leaking
            else f"{len(job_triggers)} AutopilotJobTrigger rows, {len(rows) - len(job_triggers)} others",
        )
        xcoms = json.loads(
            self.postgres.psql(
                "SELECT coalesce(json_agg(t), '[]'::json) FROM (SELECT dag_id, run_id, task_id, key, value::text AS value FROM xcom) t"
            )
            or "[]"
        )
        leaking = [
            f"{x['run_id']}/{x['task_id']}/{x['key']}"
            for x in xcoms
            if any(secret in str(x["value"]) for secret in secrets_)
        ]
        rest_leaks: list[str] = []
        for run in self.runs:
            for task in run.tasks:
                for key in self.api.xcom_keys(run.dag_id, run.run_id, task):
                    value = json.dumps(self.api.xcom(run.dag_id, run.run_id, task, key))
                    rest_leaks.extend(f"{run.label}/{task}/{key}" for secret in secrets_ if secret in value)
        self.report.check(
            scenario,
            f"no credential in the {len(xcoms)} XComs (PostgreSQL table and REST API)",
            not leaking and not rest_leaks and len(xcoms) > 0,
            ", ".join(leaking + rest_leaks) or "none",
        )

    def check_latency(self) -> None:
        scenario = "latency"
        limit = POLL_SECONDS + LATENCY_SLACK_SECONDS
        takeover = self.triggerer_outage[1] if self.triggerer_outage else 0.0
        measured = 0
        for run in self.runs:
            if not run.job_name:
                continue
            job = self.sagemaker.describe_auto_ml_job(AutoMLJobName=run.job_name)
            end_time = job.get("EndTime")
            sensor_end = iso(run.tasks.get(SENSOR, {}).get("end_date"))
            if end_time is None or sensor_end is None:
                self.report.check(
                    scenario,
                    f"{run.label}: job and sensor both ended",
                    False,
                    f"EndTime {end_time}, sensor end {sensor_end}",
                )
                continue
            end_time = end_time if end_time.tzinfo else end_time.replace(tzinfo=timezone.utc)
            latency = (sensor_end - end_time).total_seconds()
            if end_time.timestamp() < takeover:
                self.report.figure(
                    f"{run.label}: job ended {takeover - end_time.timestamp():.1f}s before the new triggerer took over; sensor done {latency:.1f}s after the job (not bounded)"
                )
                continue
            measured += 1
            self.report.check(
                scenario,
                f"{run.label}: sensor finished {latency:.1f}s after the job ended (limit {limit:g}s)",
                0 <= latency <= limit,
                f"job EndTime {end_time.isoformat()}, sensor end {sensor_end.isoformat()}",
            )
        self.report.check(
            scenario, "at least four waits measured after the restart", measured >= 4, f"{measured} measured"
        )

    def check_guardrails(self) -> None:
        self.guardrails.check(PROMOTION)

    def emulator_client(self, service: str) -> Any:
        import boto3

        assert self.emulator is not None
        return boto3.client(
            service,
            endpoint_url=self.emulator.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def check_browser(self) -> None:
        scenario = "browser"
        assert self.chromium is not None and self.airflow is not None
        run = self.runs[0]
        browser = Browser(self.chromium, self.root / "chromium-profile")
        base = self.airflow.api_url
        page = f"{base}/dags/{run.dag_id}/runs/{run.run_id}/tasks/{SENSOR}"
        expected = CONSOLE_URL.format(region=REGION, job=run.job_name)
        found = [
            (text, href) for text, href in anchors(browser.dom(page + "/details")) if text == "Autopilot Job"
        ]
        self.report.check(
            scenario,
            "the sensor's task instance page shows the Autopilot Job link with the console URL",
            found == [("Autopilot Job", expected)],
            f"{found or 'no Autopilot Job link'}",
        )
        folder = Path(self.args.screenshots) if self.args.screenshots else self.root / "screenshots"
        shots = {
            "grid.png": f"{base}/dags/{run.dag_id}/runs/{run.run_id}",
            "sensor-log.png": page,
        }
        for name, url in shots.items():
            try:
                width, height = browser.screenshot(url, folder / name)
                size = (folder / name).stat().st_size
                self.report.check(
                    scenario,
                    f"screenshot {folder / name}",
                    width >= 1000 and height >= 600 and size > 20_000,
                    f"{width}x{height}, {size} bytes",
                )
            except Exception as error:
                self.report.check(scenario, f"screenshot {folder / name}", False, str(error))

    # --- the whole run ---------------------------------------------------------------------------
    def run(self) -> int:
        if self.args.only == "events":
            return scenario_events.run_alone(self)
        self.deploy()
        self.start_runs()
        events = scenario_events.EventsScenario(self)
        events.start()
        self.restart_triggerer()
        events.check_floor()
        # After the restart scenario, so its sensors are deferred together without this run's.
        self.guardrails = GuardrailScenario(self, self.emulator_client)
        self.guardrails.trigger(PROMOTION)
        self.wait_for_runs()
        events.downtime()
        print("\nChecks", flush=True)
        steps: list[Callable[[], None]] = [
            self.check_states,
            self.check_log_routing,
            self.check_failure,
            self.check_restart,
            self.check_xcoms_and_links,
            self.check_asset_triggered_run,
            self.check_credentials,
            self.check_latency,
            self.check_guardrails,
            events.check,
        ]
        if not self.args.no_browser:
            steps.append(self.check_browser)
        for step in steps:
            try:
                step()
            except Exception as error:
                self.report.check(
                    step.__name__.removeprefix("check_"),
                    "ran to the end",
                    False,
                    f"{type(error).__name__}: {error}",
                )
                traceback.print_exc()
        return self.summary()

    def summary(self) -> int:
        scenarios: dict[str, list[Check]] = {}
        for check in self.report.checks:
            scenarios.setdefault(check.scenario, []).append(check)
        print("\nSummary", flush=True)
        for scenario, checks in scenarios.items():
            failed = [check for check in checks if not check.ok]
            print(
                f"  {'FAIL' if failed else 'ok  '}  {scenario}: {len(checks) - len(failed)} of {len(checks)} checks passed"
            )
        timing = ", ".join(
            f"{name} {seconds:.0f}s" for name, seconds in self.timings.items() if name != "triggered"
        )
        print(f"  timings: {timing}; total {time.monotonic() - dep.STARTED:.0f}s")
        passed = len(self.report.checks) - len(self.report.failed)
        print(f"system-test: {passed} passed, {len(self.report.failed)} failed", flush=True)
        return 1 if self.report.failed else 0

    def dump_logs(self) -> None:
        """On failure: the end of every component's output, for CI."""
        for path in sorted((self.root / "logs").glob("*.log")):
            print(f"\n----- {path.name} (last lines) -----\n{dep.tail(path, 30)}", flush=True)


def split_log(entries: list[dict[str, Any]], job: str) -> tuple[list[str], list[list[str]], list[int]]:
    """
    The job's status lines in a sensor's log: those the worker logged before deferring, and those of
    each trigger run (a segment per "trigger ... starting"; two after a triggerer restart), with the
    number of candidate-count lines about the job in each segment.
    """
    worker: list[str] = []
    segments: list[list[str]] = []
    counts: list[int] = []
    fired = False
    for entry in entries:
        event = str(entry.get("event", ""))
        if TRIGGER_STARTING.match(event):
            segments.append([])
            counts.append(0)
            continue
        if event == TRIGGER_FIRED:
            fired = True
            continue
        in_trigger = bool(segments) and not fired
        count = COUNT_LINE.match(event)
        if count and count["job"] == job and in_trigger:
            counts[-1] += 1
        match = STATE_LINE.match(event)
        if not match or match["job"] != job:
            continue
        if in_trigger:
            segments[-1].append(match["state"])
        elif not segments:
            worker.append(match["state"])
    return worker, segments, counts


def summary_problems(summary: Any, job: str) -> list[str]:
    """How a sensor's XCom differs from the documented job summary."""
    if not isinstance(summary, dict):
        return [f"not an object: {type(summary).__name__}"]
    problems = []
    if set(summary) != SUMMARY_KEYS:
        problems.append(f"keys {sorted(set(summary) ^ SUMMARY_KEYS)} differ")
    if summary.get("AutoMLJobName") != job or summary.get("AutoMLJobStatus") != "Completed":
        problems.append(f"{summary.get('AutoMLJobName')} {summary.get('AutoMLJobStatus')}")
    end = summary.get("EndTime")
    if not has_timezone(end):
        problems.append(f"EndTime {end!r} is no ISO 8601 string with a timezone")
    if not isinstance(summary.get("PartialFailureReasons"), list):
        problems.append("PartialFailureReasons is not a list")
    metric = summary.get("BestCandidateObjectiveMetric")
    if (
        not isinstance(metric, dict)
        or not {"MetricName", "Value", "Type"} <= set(metric)
        or not isinstance(metric.get("Value"), (int, float))
    ):
        problems.append(f"BestCandidateObjectiveMetric {metric!r}")
    if not isinstance(summary.get("BestCandidateName"), str):
        problems.append("no BestCandidateName")
    return problems


def candidate_problems(candidate: Any, name: str | None) -> list[str]:
    """How a candidate XCom differs from SageMaker's shape made JSON-safe."""
    if not isinstance(candidate, dict):
        return [f"candidate is not an object: {type(candidate).__name__}"]
    problems = []
    if name is not None and candidate.get("CandidateName") != name:
        problems.append(f"CandidateName {candidate.get('CandidateName')} is not {name}")
    if "ResponseMetadata" in candidate or "InferenceContainers" not in candidate:
        problems.append(f"keys {sorted(candidate)}")
    for key in ("CreationTime", "EndTime", "LastModifiedTime"):
        value = candidate.get(key)
        if not has_timezone(value):
            problems.append(f"{key} {value!r} is no ISO 8601 string with a timezone")
    if not isinstance(candidate.get("FinalAutoMLJobObjectiveMetric", {}).get("Value"), (int, float)):
        problems.append("FinalAutoMLJobObjectiveMetric.Value is not a number")
    return problems


# --- entry point ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs, database files)"
    )
    parser.add_argument(
        "--screenshots",
        metavar="DIR",
        help="save grid.png and sensor-log.png here (default: the temporary folder)",
    )
    parser.add_argument(
        "--no-browser", action="store_true", help="skip the Chromium check and the screenshots"
    )
    parser.add_argument(
        "--run-timeout",
        type=float,
        default=420,
        help="seconds for the DAG runs to finish (default %(default)s)",
    )
    parser.add_argument(
        "--time-limit", type=int, default=900, help="seconds for the whole test (default %(default)s)"
    )
    parser.add_argument(
        "--only",
        choices=["events"],
        help="run only this scenario after the deployment (no browser check); default: every scenario",
    )
    args = parser.parse_args(argv)
    args.no_browser = args.no_browser or args.only is not None

    status = dep.run_scenario(
        args,
        lambda root, processes: SystemTest(args, root, processes),
        lambda root: f"system test in {root} (Python {sys.version.split()[0]}, venv {VENV_BIN.parent})",
    )
    if status == 2:
        print("system-test: the deployment could not be set up (see above); no scenario ran", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

"""
``autopilot-demo``: run the promotion DAG end to end on the local Autopilot emulator, no AWS account.

``autopilot-demo [--stage-seconds 1] [--threshold 0.6] [--fail] [--bad-model] [--dag-file PATH]``
(the same as ``python -m airflow_autopilot.demo`` and ``make demo``); needs the ``emulator`` extra.

1. starts the emulator (:class:`~airflow_autopilot.emulator.EmulatorServer`) on 127.0.0.1, free port;
2. points Airflow at it (``AIRFLOW_CONN_AWS_DEFAULT``) with a fresh SQLite database under
   ``$AIRFLOW_HOME`` (default: a temporary directory; ``make`` sets ``.airflow``);
3. runs ``example_autopilot_promotion.py``, the example DAG shipped in the package
   (:mod:`airflow_autopilot.example_dags`), twice with Airflow's real ``dag.test()``, Airflow's log
   going to ``$AIRFLOW_HOME/demo-run.log`` while job status changes and endpoint phases print live:
   the first run puts a model in production (a new endpoint), the second promotes a challenger onto
   it with a canary rollout, then smoke-tests it;
4. prints a summary: status transitions, the top 5 candidates, the promotion decision, the model
   package, the rollout's phases, the smoke test's answers and the endpoint. Exits 1 when a DAG run
   fails (``--fail`` shows that case: the first job fails; ``--bad-model``: the challenger fails
   its invocations, the smoke test puts the first model back, and it still answers).

``autopilot-demo --copy-dags DIR [--force]`` copies the example DAGs into a DAGs folder instead.

Nothing here imports Airflow before the environment is set up.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, TextIO

from airflow_autopilot.demo.examples import PROMOTION_DAG_ID as DAG_ID
from airflow_autopilot.demo.examples import copy_example_dags, example_dag_file

#: The Model Package Group of the demo's first promotion (the second registers in the DAG's own).
BASELINE_GROUP = "autopilot-churn-baseline"


class JobWatcher(threading.Thread):
    """Polls ListAutoMLJobs on the emulator and records (and prints) every status change."""

    def __init__(self, client: Any, out: TextIO, start: float, interval: float = 0.2) -> None:
        super().__init__(daemon=True, name="autopilot-demo-watcher")
        self.client = client
        self.out = out
        self.start_time = start
        self.interval = interval
        self.transitions: list[tuple[float, str, str]] = []
        self._last: dict[str, str] = {}
        self._halt = threading.Event()

    def poll(self) -> None:
        self.poll_endpoints()
        for job in self.client.list_auto_ml_jobs(MaxResults=100).get("AutoMLJobSummaries", []):
            state = f"{job['AutoMLJobStatus']}/{job.get('AutoMLJobSecondaryStatus', '')}"
            name = job["AutoMLJobName"]
            if self._last.get(name) != state:
                self._last[name] = state
                elapsed = time.monotonic() - self.start_time
                self.transitions.append((elapsed, name, state))
                print(f"  [{elapsed:6.1f}s] {name}: {state}", file=self.out, flush=True)

    def poll_endpoints(self) -> None:
        """Print each endpoint's phase as it changes (status, and the traffic shift in flight)."""
        from airflow_autopilot.core.rollout import phase_of

        for summary in self.client.list_endpoints(MaxResults=100).get("Endpoints", []):
            name = summary["EndpointName"]
            described = self.client.describe_endpoint(EndpointName=name)
            phase = f"{phase_of(described)} on {described.get('EndpointConfigName')}"
            if self._last.get(f"endpoint:{name}") != phase:
                self._last[f"endpoint:{name}"] = phase
                elapsed = time.monotonic() - self.start_time
                print(f"  [{elapsed:6.1f}s] endpoint {name}: {phase}", file=self.out, flush=True)

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                self.poll()
            except Exception as err:  # the emulator is going away, or a transient error
                print(f"  (watcher: {type(err).__name__}: {err})", file=self.out, flush=True)
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)
        try:
            self.poll()
        except Exception:
            pass


class _Redirect:
    """Send file descriptors 1 and 2 (Airflow's and werkzeug's log output) to a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.console = os.fdopen(os.dup(1), "w", buffering=1)

    def __enter__(self) -> TextIO:
        sys.stdout.flush()
        sys.stderr.flush()
        self._saved = (os.dup(1), os.dup(2))
        self._log = open(self.path, "w")  # noqa: SIM115 - closed in __exit__
        os.dup2(self._log.fileno(), 1)
        os.dup2(self._log.fileno(), 2)
        return self.console

    def __exit__(self, *exc: object) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        os.close(self._saved[0])
        os.close(self._saved[1])
        self._log.close()


def _prepare_environment(home: Path, poll_seconds: float) -> None:
    home.mkdir(parents=True, exist_ok=True)
    database = home / "demo.db"
    database.unlink(missing_ok=True)
    os.environ["AIRFLOW_HOME"] = str(home)
    os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{database}"
    os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
    os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
    os.environ["AUTOPILOT_EXAMPLE_POLL_SECONDS"] = str(poll_seconds)
    from airflow_autopilot.demo.airflow_versions import allow_sqlite_in_unit_test_mode

    allow_sqlite_in_unit_test_mode()


def _summary(
    dag_run: Any,
    xcoms: dict[str, Any],
    states: dict[str, Any],
    watcher: JobWatcher,
    server: Any,
    seconds: float,
    log_path: Path,
    title: str = "Autopilot promotion demo",
) -> str:
    from airflow_autopilot.operators.promotion import DECISION_XCOM_KEY
    from airflow_autopilot.operators.results import format_leaderboard
    from airflow_autopilot.operators.smoke_test import SMOKE_TEST_XCOM_KEY

    lines = [
        "",
        "=" * 78,
        f"{title}: DAG run {dag_run.state.upper()} in {seconds:.1f}s",
        "=" * 78,
    ]
    lines.append("\nTasks: " + ", ".join(f"{t}={s}" for t, s in states.items()))
    lines.append("\nJob status transitions:")
    job_name = (xcoms.get("create_job") or {}).get("AutoMLJobName")
    transitions = [(t, name, state) for t, name, state in watcher.transitions if name == job_name]
    lines += [f"  {t:6.1f}s  {name}: {state}" for t, name, state in transitions] or ["  (none seen)"]
    sagemaker = server.client("sagemaker")
    for name in dict.fromkeys(name for _, name, _ in transitions):
        job = sagemaker.describe_auto_ml_job(AutoMLJobName=name)
        if job.get("FailureReason"):
            lines.append(f"  {name} FailureReason: {job['FailureReason']}")
    board = xcoms.get("leaderboard")
    lines.append("\nLeaderboard (top 5):")
    lines.append("  " + format_leaderboard(board[:5]).replace("\n", "\n  ") if board else "  (not reached)")
    decision = xcoms.get(f"gate:{DECISION_XCOM_KEY}")
    lines.append("\nPromotion decision:")
    if decision:
        verdict = "PROMOTE" if decision["promote"] else "REJECT"
        lines.append(f"  {verdict} {decision['candidate_name']}: {decision['reason']}")
    else:
        lines.append("  (not reached)")
    registered = xcoms.get("register")
    lines.append("\nModel Registry:")
    if registered:
        package = sagemaker.describe_model_package(ModelPackageName=registered["ModelPackageArn"])
        meta = package.get("CustomerMetadataProperties") or {}
        lines.append(f"  {registered['ModelPackageArn']}")
        lines.append(
            f"  version {registered['ModelPackageVersion']}, {package.get('ModelApprovalStatus')}, "
            f"{meta.get('autopilot:objective-metric')}={meta.get('autopilot:objective-value')}, "
            f"{len(package['InferenceSpecification']['Containers'])} containers"
        )
    else:
        lines.append("  (nothing registered)")
    record = xcoms.get("deploy:rollout")
    if record:
        lines.append(
            f"\nRollout: {str(record.get('outcome')).upper()} (previous config {record.get('previous_config')}, "
            f"new config {record.get('new_config')}, serving {record.get('serving_config')})"
        )
        lines += [f"  {phase}" for phase in record.get("phases") or []]
        if record.get("alarms"):
            lines.append(f"  alarms: {', '.join(record['alarms'])}")
    smoke = xcoms.get(f"smoke_test:{SMOKE_TEST_XCOM_KEY}")
    if smoke:
        latency = smoke.get("latency_ms") or {}
        lines.append(
            f"\nSmoke test: {'PASSED' if smoke.get('passed') else 'FAILED'}, {smoke.get('rows_sent')} rows, "
            f"{smoke.get('failures')} failed (latency p50 {latency.get('p50')} ms, max {latency.get('max')} ms)"
        )
        for answer in smoke.get("answers") or []:
            verdict = "; ".join(answer.get("problems") or []) or "ok"
            raw = str(answer.get("raw"))
            raw = raw if len(raw) <= 100 else raw[:97] + "..."
            lines.append(f"  {answer.get('row')} -> {raw}  [{verdict}]")
    deployed = xcoms.get("deploy")
    lines.append("\nEndpoint:")
    if deployed:
        endpoint = sagemaker.describe_endpoint(EndpointName=deployed["EndpointName"])
        serving = endpoint["EndpointConfigName"]
        lines.append(
            f"  {deployed['EndpointName']}: {endpoint['EndpointStatus']} "
            f"(deployed config {deployed['EndpointConfigName']}, model {deployed['ModelName']})"
            + ("" if serving == deployed["EndpointConfigName"] else f"; serving {serving} now")
        )
    else:
        lines.append("  (not deployed)")
    lines.append(f"\nAirflow's log of the run: {log_path}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, prog: str = "autopilot-demo") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=(__doc__ or "").split("\n")[1].strip())
    parser.add_argument("--stage-seconds", type=float, default=1.0, help="emulated seconds per job stage")
    parser.add_argument("--poll-seconds", type=float, default=0.5, help="how often the DAG's waits poll")
    parser.add_argument("--threshold", type=float, default=None, help="the gate's F1 threshold")
    parser.add_argument(
        "--fail", action="store_true", help="make the Autopilot job fail (emu-failed- prefix)"
    )
    parser.add_argument(
        "--bad-model",
        action="store_true",
        help="make the challenger fail its invocations: its smoke test puts the first model back",
    )
    parser.add_argument(
        "--bake-seconds", type=float, default=2.0, help="seconds each canary step bakes (default 2)"
    )
    parser.add_argument(
        "--dag-file",
        type=Path,
        default=None,
        help=f"the promotion DAG file (default: {DAG_ID}.py shipped in airflow_autopilot.example_dags)",
    )
    parser.add_argument(
        "--copy-dags",
        type=Path,
        metavar="DIR",
        help="copy the example DAGs into DIR (e.g. $AIRFLOW_HOME/dags) and exit, without running the demo",
    )
    parser.add_argument(
        "--force", action="store_true", help="with --copy-dags: overwrite files of the same name"
    )
    args = parser.parse_args(argv)

    if args.copy_dags is not None:
        try:
            copied = copy_example_dags(args.copy_dags, force=args.force)
        except OSError as err:
            print(f"{prog}: {err}", file=sys.stderr)
            return 1
        print(f"Copied {len(copied)} example DAGs to {args.copy_dags}:")
        print("\n".join(f"  {path.name}" for path in copied))
        return 0
    if args.force:
        parser.error("--force only goes with --copy-dags")

    started = time.monotonic()
    try:
        dag_file = args.dag_file or example_dag_file(DAG_ID)
    except (FileNotFoundError, RuntimeError) as err:
        print(f"{prog}: {err}", file=sys.stderr)
        return 2
    if not dag_file.is_file():
        print(f"{prog}: DAG file {dag_file} not found", file=sys.stderr)
        return 2
    if importlib.util.find_spec("moto") is None:
        print(
            f"{prog}: the demo needs the emulator extra: pip install 'airflow-autopilot[emulator]'",
            file=sys.stderr,
        )
        return 2
    home = Path(os.environ.get("AIRFLOW_HOME") or tempfile.mkdtemp(prefix="autopilot-demo-"))
    _prepare_environment(home, args.poll_seconds)
    log_path = home / "demo-run.log"
    run_conf: dict[str, Any] = {}
    if args.threshold is not None:
        run_conf["threshold"] = args.threshold
    # Two promotions: the first puts a model in production (a new endpoint: nothing to shift), the
    # second a challenger onto it with a canary. The first registers in a group of its own, so the
    # second is promoted on its own merits rather than against a champion of random score.
    runs: list[tuple[str, dict[str, Any]]] = [
        ("Run 1: the first model goes to production", {**run_conf, "model_package_group": BASELINE_GROUP}),
        (
            "Run 2: a challenger, with a canary rollout and a smoke test",
            {**run_conf, "rollout": f"canary:50%:{args.bake_seconds:g}s"},
        ),
    ]
    if args.fail:
        runs = [("Run 1: a job that fails", {**runs[0][1], "job_name_prefix": "emu-failed-churn"})]

    from airflow_autopilot.emulator import EmulatorServer

    print(f"Starting the Autopilot emulator (stage {args.stage_seconds:g}s); Airflow home {home}")
    results: list[tuple[str, Any, dict[str, Any], dict[str, Any], float]] = []
    with EmulatorServer(port=0, stage_seconds=args.stage_seconds) as server:
        os.environ.update(server.environment())
        print(f"Emulator at {server.endpoint_url}; running {DAG_ID} with dag.test()")
        with _Redirect(log_path) as console:
            watcher = JobWatcher(server.client("sagemaker"), console, started)
            watcher.start()
            error: BaseException | None = None
            try:
                from airflow.utils.db import initdb

                from airflow_autopilot.demo.runner import load_dag_file, run_dag, task_states

                print("  initialising the Airflow database (SQLite) ...", file=console, flush=True)
                initdb()
                for index, (title, conf) in enumerate(runs):
                    # Loaded for each run: dag.test() keeps a run's conf in the DAG object's params.
                    dag = load_dag_file(dag_file, DAG_ID)
                    if index and args.bad_model:
                        from airflow_autopilot.emulator.handle import fail_invocations

                        print(
                            "  --bad-model: every model created from now on fails its invocations",
                            file=console,
                            flush=True,
                        )
                        fail_invocations(new_models_only=True)
                    print(
                        f"  [{time.monotonic() - started:6.1f}s] {title}: dag.test()",
                        file=console,
                        flush=True,
                    )
                    run_started = time.monotonic()
                    dag_run, xcoms = run_dag(dag, run_conf=conf or None)
                    results.append(
                        (title, dag_run, xcoms, task_states(dag_run), time.monotonic() - run_started)
                    )
                    if dag_run.state != "success" and not (index and args.bad_model):
                        break
            except BaseException as err:  # reported below, after the log is restored
                error = err
            finally:
                watcher.stop()
                logging.getLogger("werkzeug").setLevel(logging.WARNING)
        if error is not None or not results:
            print(
                f"The demo could not run: {type(error).__name__}: {error} (log: {log_path})", file=sys.stderr
            )
            return 1
        for title, dag_run, xcoms, states, seconds in results:
            print(_summary(dag_run, xcoms, states, watcher, server, seconds, log_path, title=title))
        if len(results) > 1:
            print(_serving_now(server, results[0][2], results[-1][2]))
    return 0 if all(dag_run.state == "success" for _, dag_run, _, _, _ in results) else 1


def _serving_now(server: Any, first: dict[str, Any], last: dict[str, Any]) -> str:
    """What the endpoint serves after the last run, and its answer to one customer's row."""
    from airflow_autopilot.emulator.sample_data import feature_line

    deployed = last.get("deploy") or first.get("deploy") or {}
    name = deployed.get("EndpointName")
    if not name:
        return ""
    endpoint = server.client("sagemaker").describe_endpoint(EndpointName=name)
    serving = endpoint["EndpointConfigName"]
    whose = {
        (first.get("deploy") or {}).get("EndpointConfigName"): "the first model's",
        (last.get("deploy") or {}).get("EndpointConfigName"): "the challenger's",
    }.get(serving, "another")
    row = feature_line(0)
    answer = server.client("sagemaker-runtime").invoke_endpoint(
        EndpointName=name, Body=row.encode(), ContentType="text/csv", Accept="application/jsonlines"
    )
    return (
        f"\nEndpoint {name} now: {endpoint['EndpointStatus']} on {serving} ({whose} config)\n"
        f"  InvokeEndpoint {row} -> {answer['Body'].read().decode().strip()}"
    )

"""
The event-driven scenario of ``make system-test`` (docs/events.md): Autopilot jobs created through
boto3 by "someone else" are each promoted once by ``example_autopilot_event_driven`` (one mapped
promotion per asset event; Airflow may fold several events into one run), across the system test's
triggerer kill and restart, a triggerer killed between a job's claim and its stored event, and a
downtime of the triggerer in which a job finished; a model version approved through boto3 starts
``example_autopilot_deploy_on_approval`` once (EventBridge to SQS to the Amazon provider's SQS
trigger, all on the emulator).

``run_system_test.py`` calls :func:`prepare` while deploying, :meth:`EventsScenario.start` once the
other runs started, and :meth:`EventsScenario.downtime` and :meth:`EventsScenario.check` at the end;
with ``--only events`` it runs :func:`run_alone` instead of the other scenarios.
"""

from __future__ import annotations

import ast
import json
import time
from typing import Any

from deployment import BINARY_F1, DeploymentError, create_watch_job, log, put_training_data, wait_until

EVENT_DAG = "example_autopilot_event_driven"
DEPLOY_DAG = "example_autopilot_deploy_on_approval"
#: The watcher's name prefix: no other job of the system test starts with it.
JOB_PREFIX = "systest-evt-"
QUEUE = "systest-approvals"
#: The Model Package Group the event-driven example registers in.
REGISTRY_GROUP = "autopilot-studio-models"
GROUP = "systest-approvals"
ENDPOINT = "systest-approved"
#: Stage seconds of the first three jobs: they finish about 8 stages apart in turn. The scheduler
#: folds the events that arrive before it creates the next run into one run: the DAG maps over them.
STAGES = (1.0, 2.5, 4.0)
#: How long after the last expected event the scenario still looks for a duplicate.
QUIET_SECONDS = 20.0
#: How long the scenario counts ListAutoMLJobs calls while waits and watchers share the triggerer.
FLOOR_WINDOW_SECONDS = 20.0
#: The watcher's lease here (``AUTOPILOT_EXAMPLE_WATCH_LEASE_SECONDS``): after the kill between a
#: claim and its stored event, the restarted watcher reports that job again this much later.
LEASE_SECONDS = 40.0
#: Stage seconds of the downtime jobs: the first finishes while the triggerer runs (and is killed
#: right after claiming it), the second while the triggerer is down.
DOWNTIME_STAGES = (0.5, 3.0)
SCENARIO = "event-driven"
#: A mapped promotion's tasks, and the states they end in when it succeeded: registered or rejected.
PROMOTION_TASKS = ("finished_job", "best_candidate", "gate", "promoted", "register", "reject")
PROMOTION_OUTCOMES = {
    ("success", "success", "success", "success", "success", "skipped"),
    ("success", "success", "success", "skipped", "skipped", "success"),
}


#: (access key, secret key, region) of the system test's fake account, set by :func:`prepare`.
_CREDENTIALS: tuple[str, str, str] = ("", "", "")


def _native(value: Any) -> Any:
    """An XCom value as the REST API returns it (the stored value, which may be its text) made native."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return ast.literal_eval(value)  # the repr of a list of dicts


def _client(test: Any, service: str) -> Any:
    import boto3

    access_key, secret_key, region = _CREDENTIALS
    return boto3.client(
        service,
        endpoint_url=test.emulator.endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
    )


def prepare(test: Any, access_key: str, secret_key: str, region: str) -> dict[str, str]:
    """Route approvals to a queue (the example's set-up, on the emulator) and return the example
    DAGs' settings (``AUTOPILOT_EXAMPLE_*``) for the Airflow components."""
    global _CREDENTIALS
    _CREDENTIALS = (access_key, secret_key, region)
    from airflow_autopilot.core.events import create_approval_route

    url = create_approval_route(
        _client(test, "sqs"), _client(test, "events"), queue_name=QUEUE, rule_name=QUEUE, group_names=[GROUP]
    )
    log(f"approvals of {GROUP} go to {url}")
    return {
        "AUTOPILOT_EXAMPLE_WATCH_PREFIX": JOB_PREFIX,
        "AUTOPILOT_EXAMPLE_APPROVAL_QUEUE_URL": url,
        "AUTOPILOT_EXAMPLE_ENDPOINT": ENDPOINT,
        "AUTOPILOT_EXAMPLE_WATCH_LEASE_SECONDS": f"{LEASE_SECONDS:g}",
    }


class EventsScenario:
    """Jobs and an approval made outside Airflow, and the DAG runs they must start exactly once."""

    def __init__(self, test: Any) -> None:
        self.test = test
        self.sagemaker = _client(test, "sagemaker")
        self.jobs: list[str] = []
        self.approved_arn: str | None = None
        #: The job whose claim the deliberate kill interrupted, if the kill landed before its event
        #: was stored (the defect this scenario guards against: such a job was never reported).
        self.killed_claim: str | None = None

    def create_jobs(self, stages: tuple[float, ...], label: str) -> list[str]:
        put_training_data(_client(self.test, "s3"), "systest-events", 200)
        names = []
        for index, stage in enumerate(stages, start=1):
            name = f"{JOB_PREFIX}{label}{index}"
            create_watch_job(self.sagemaker, name, "systest-events", f"{stage:g}", **BINARY_F1)
            names.append(name)
        self.jobs += names
        return names

    def start(self) -> None:
        """Unpause the two DAGs; create three jobs and approve one version, all through boto3."""
        api = self.test.api
        for dag_id in (EVENT_DAG, DEPLOY_DAG):

            def parsed(dag_id: str = dag_id) -> bool:
                return bool(api.dag(dag_id))

            wait_until(f"{dag_id} to be parsed", parsed, 120, 1, alive=self.test.alive)
            api.unpause(dag_id)
            # Airflow registers an asset's watchers when it parses the file of an unpaused DAG: ask
            # for that parse now rather than at the next periodic one (docs/events.md).
            token = api.dag(dag_id)["file_token"]
            response = api.http.put(f"/parseDagFile/{token}")
            if response.status_code >= 400:
                raise DeploymentError(
                    f"parseDagFile for {dag_id}: HTTP {response.status_code} {response.text[:300]}"
                )

        def watching() -> bool:
            classpaths = {row["classpath"].rsplit(".", 1)[-1] for row in self.test.snapshot_triggers()}
            return {"AutopilotJobCompletedTrigger", "SqsSensorTrigger"} <= classpaths

        wait_until("the two asset watchers to be registered", watching, 120, 1, alive=self.test.alive)
        log(f"created outside Airflow: {', '.join(self.create_jobs(STAGES, 'a'))}")
        self.sagemaker.create_model_package_group(ModelPackageGroupName=GROUP)
        container = {
            "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/churn:1",
            "ModelDataUrl": "s3://systest-events/model.tar.gz",
        }
        arn = self.sagemaker.create_model_package(
            ModelPackageGroupName=GROUP,
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [container],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        )["ModelPackageArn"]
        # A person approves it (as in Studio): UpdateModelPackage, outside Airflow.
        self.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
        self.approved_arn = arn
        log(f"approved outside Airflow: {arn}")

    def check_floor(self) -> None:
        """Right after the triggerer restart, while the deferred waits and the job watcher share the
        new triggerer: ListAutoMLJobs calls stay at one per poll cycle (the watcher adds none)."""
        emulator, poll = self.test.emulator, self.test.airflow.poll_seconds
        time.sleep(2 * poll)  # the new poller's first listings (a full one, the look back) are behind us
        rows = self.test.snapshot_triggers()
        waits = sum(1 for row in rows if row["classpath"].endswith(".AutopilotJobTrigger"))
        watchers = sum(1 for row in rows if row["classpath"].endswith(".AutopilotJobCompletedTrigger"))
        before = emulator.control("GET", "request-counts").get("ListAutoMLJobs", 0)
        started = time.monotonic()
        time.sleep(FLOOR_WINDOW_SECONDS)
        calls = emulator.control("GET", "request-counts").get("ListAutoMLJobs", 0) - before
        cycles = (time.monotonic() - started) / poll
        self.test.report.check(
            SCENARIO,
            "ListAutoMLJobs stays at the floor (one call per poll cycle) with the waits and the watcher together",
            calls <= int(cycles) + 2 and watchers == 1,
            f"{calls} calls in {cycles:.1f} cycles of {poll:g}s; {waits} deferred waits and {watchers} job "
            f"watcher in the triggerer when the count started",
        )

    def ack_state(self, name: str) -> str | None:
        """The state (``claimed``/``reported``) of the watcher's acknowledgement tag on a job."""
        from airflow_autopilot.core.events import ACK_TAG_PREFIX, Ack

        arn = self.sagemaker.describe_auto_ml_job(AutoMLJobName=name)["AutoMLJobArn"]
        tags = self.sagemaker.list_tags(ResourceArn=arn)["Tags"]
        values = [t["Value"] for t in tags if t["Key"].startswith(ACK_TAG_PREFIX)]
        ack = Ack.parse(values[-1]) if values else None  # the emulator appends: the last one counts
        return ack.state if ack else None

    def downtime(self) -> None:
        """Two more jobs. The triggerer is killed (SIGKILL) the moment the watcher has claimed the
        first, before its event can be stored (the watcher pauses ``settle_seconds`` after a claim);
        the second finishes while the triggerer is down; then the triggerer starts again."""
        self.wait_for_events(len(self.jobs), "the first jobs' runs")
        airflow = self.test.airflow
        runs_before = len(self.test.api.dag_runs(EVENT_DAG))
        first, second = self.create_jobs(DOWNTIME_STAGES, "down")

        def claimed() -> bool:
            return self.ack_state(first) is not None

        wait_until(f"the watcher to claim {first}", claimed, 120, 0.1, alive=self.test.alive)
        self.test.processes.stop(airflow.components["triggerer"], kill=True)
        del airflow.components["triggerer"]
        state, stored = self.ack_state(first), self.stored_events(first)
        if state == "claimed" and not stored:
            self.killed_claim = first
        log(f"triggerer killed with {first} {state}, {stored} asset event(s) stored for it")

        def finished() -> bool:
            return self.sagemaker.describe_auto_ml_job(AutoMLJobName=second)["AutoMLJobStatus"] == "Completed"

        wait_until("the downtime job to finish", finished, 120, 1, alive=self.test.alive)
        counts, runs = self.events_by_job()
        self.test.report.check(
            SCENARIO,
            "no run starts while the triggerer is down",
            not counts.get(second) and len(runs) <= runs_before + 1,
            f"{len(runs)} runs; events {counts}",
        )
        airflow.start("triggerer")
        log(f"triggerer down while {second} finished; started again")

    def stored_events(self, job: str) -> int:
        """Asset events stored for a job (Airflow's ``asset_event`` table), whether or not a DAG run
        was made of them yet."""
        sql = (
            "SELECT count(*) FROM asset_event "
            f"WHERE extra::jsonb -> 'payload' ->> 'job_name' = '{job}'"  # job: this scenario's own name
        )
        return int(self.test.postgres.psql(sql).strip() or 0)

    def events_by_job(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        """How many asset events named each job, and the runs of the event-driven DAG."""
        counts = {job: len(found) for job, found in self.payloads_by_job().items()}
        return counts, self.test.api.dag_runs(EVENT_DAG)

    def wait_for_events(self, count: int, what: str) -> None:
        def enough() -> bool:
            counts, _ = self.events_by_job()
            return len(counts) >= count

        try:
            wait_until(f"{what} ({count} jobs)", enough, 240, 2, alive=self.test.alive)
        except DeploymentError as error:
            log(f"not every job was reported: {error}")

    def payloads_by_run(self, runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """The event payloads that started each of ``runs`` (the event-driven DAG's), by run id."""
        api = self.test.api
        found: dict[str, list[dict[str, Any]]] = {}
        for run in runs:
            events = api.upstream_asset_events(EVENT_DAG, run["dag_run_id"])
            payloads = [(event.get("extra") or {}).get("payload") or {} for event in events]
            found[run["dag_run_id"]] = [p for p in payloads if p.get("job_name")]
        return found

    def payloads_by_job(self) -> dict[str, list[dict[str, Any]]]:
        """The event payloads that started the event-driven DAG's runs, by job."""
        found: dict[str, list[dict[str, Any]]] = {}
        for payloads in self.payloads_by_run(self.test.api.dag_runs(EVENT_DAG)).values():
            for payload in payloads:
                found.setdefault(payload["job_name"], []).append(payload)
        return found

    def promotions_by_run(self, runs: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
        """For each run, how many of its mapped promotions ended successfully (gated, then registered
        or rejected) for each job: ``finished_jobs`` returns the jobs the group is mapped over, in
        map-index order."""
        api = self.test.api
        found: dict[str, dict[str, int]] = {}
        for run in runs:
            run_id = run["dag_run_id"]
            done = found.setdefault(run_id, {})
            try:
                jobs = _native(api.xcom(EVENT_DAG, run_id, "finished_jobs")) or []
            except RuntimeError:
                continue  # finished_jobs pushed nothing (it failed or was skipped)
            path = f"/dags/{EVENT_DAG}/dagRuns/{run_id}/taskInstances"
            states: dict[tuple[str, int], str] = {
                (ti["task_id"], ti["map_index"]): ti["state"]
                for ti in api.get(path, limit=100)["task_instances"]
            }
            for index, job in enumerate(jobs):
                ended = tuple(states.get((f"promote.{t}", index)) for t in PROMOTION_TASKS)
                if ended in PROMOTION_OUTCOMES:
                    done[job["job_name"]] = done.get(job["job_name"], 0) + 1
        return found

    def registered_versions(self) -> dict[str, int]:
        """Model versions the runs registered, by job (CustomerMetadataProperties): a run's effect."""
        counts: dict[str, int] = {}
        try:
            pages = self.sagemaker.get_paginator("list_model_packages").paginate(
                ModelPackageGroupName=REGISTRY_GROUP
            )
            arns = [p["ModelPackageArn"] for page in pages for p in page["ModelPackageSummaryList"]]
        except self.sagemaker.exceptions.ClientError:
            return counts  # no version registered (the group does not exist)
        for arn in arns:
            described = self.sagemaker.describe_model_package(ModelPackageName=arn)
            job = (described.get("CustomerMetadataProperties") or {}).get("autopilot:job-name")
            if job:
                counts[job] = counts.get(job, 0) + 1
        return counts

    def check(self) -> None:
        api, report = self.test.api, self.test.report
        self.wait_for_events(len(self.jobs), "every job's run")
        time.sleep(QUIET_SECONDS)  # a duplicate would come within a few poll cycles

        def runs_done() -> bool:
            return all(r["state"] in ("success", "failed") for r in api.dag_runs(EVENT_DAG))

        wait_until("the event-driven runs to finish", runs_done, 240, 2, alive=self.test.alive)
        runs = api.dag_runs(EVENT_DAG)
        by_run = self.payloads_by_run(runs)
        payloads: dict[str, list[dict[str, Any]]] = {}
        for found in by_run.values():
            for payload in found:
                payloads.setdefault(payload["job_name"], []).append(payload)
        counts = {job: len(found) for job, found in payloads.items()}
        redelivered = {job: sum(1 for p in found if p.get("redelivery")) for job, found in payloads.items()}
        report.check(
            SCENARIO,
            f"each of the {len(self.jobs)} jobs created through boto3 made one asset event, a second "
            "only as a flagged redelivery (across the triggerer kills and restarts, and a downtime)",
            sorted(counts) == sorted(self.jobs)
            and all(n == 1 or (n == 2 and redelivered[job] == 1) for job, n in counts.items()),
            f"events {counts}; redeliveries {redelivered}",
        )
        if self.killed_claim is not None:
            report.check(
                SCENARIO,
                f"{self.killed_claim}, claimed when the triggerer was killed and before its event was "
                "stored, was reported after the restart, exactly once",
                counts.get(self.killed_claim) == 1,
                f"{counts.get(self.killed_claim, 0)} events; {payloads.get(self.killed_claim)}",
            )
        else:
            log("the deliberate kill landed after the claimed job's event was stored: see the counts above")
        events = sum(counts.values())
        report.check(
            SCENARIO,
            "every event-driven run successful (Airflow may fold several asset events into one run)",
            bool(runs) and all(r["state"] == "success" for r in runs),
            f"{len(runs)} runs for {events} asset events: {[r['state'] for r in runs]}",
        )
        promoted = self.promotions_by_run(runs)
        # Each run maps one promotion over each job of its events: every event is processed once, a
        # redelivery in another run by its own (idempotent) promotion.
        expected = {run_id: {p["job_name"]: 1 for p in found} for run_id, found in by_run.items()}
        report.check(
            SCENARIO,
            "every job's asset event was processed by exactly one successful mapped promotion "
            "(gate, then register or reject, the other skipped) of its run",
            promoted == expected,
            f"{len(runs)} runs, {events} events; promotions by run {promoted}; events by run {expected}",
        )
        versions = self.registered_versions()
        report.check(
            SCENARIO,
            "one model version per job, and every job with an asset event has one "
            "(idempotent on the job name: a redelivery registers nothing new)",
            all(n == 1 for n in versions.values()) and set(versions) == set(counts),
            f"{versions}",
        )

        def deployed() -> bool:
            return any(r["state"] in ("success", "failed") for r in api.dag_runs(DEPLOY_DAG))

        try:
            wait_until("the approval's deploy run", deployed, 180, 2, alive=self.test.alive)
        except DeploymentError as error:
            log(str(error))
        time.sleep(QUIET_SECONDS / 2)
        deploys = api.dag_runs(DEPLOY_DAG)
        result = api.xcom(DEPLOY_DAG, deploys[0]["dag_run_id"], "deploy") if deploys else None
        report.check(
            SCENARIO,
            "the version approved through boto3 started exactly one deploy run, which deployed it",
            len(deploys) == 1
            and deploys[0]["state"] == "success"
            and isinstance(result, dict)
            and result.get("model_package_arn") == self.approved_arn,
            f"{len(deploys)} runs: {[r['state'] for r in deploys]}; {result}",
        )
        endpoint = self.sagemaker.describe_endpoint(EndpointName=ENDPOINT)
        report.check(
            SCENARIO,
            "the endpoint serves the approved version",
            endpoint["EndpointStatus"] == "InService",
            f"{endpoint['EndpointStatus']} on {endpoint.get('EndpointConfigName')}",
        )


def run_alone(test: Any) -> int:
    """``run_system_test.py --only events``: the deployment and this scenario, nothing else (the
    triggerer kill between a claim and its stored event and the downtime included)."""
    test.deploy()
    scenario = EventsScenario(test)
    scenario.start()
    scenario.check_floor()
    scenario.downtime()
    print("\nChecks", flush=True)
    try:
        scenario.check()
    except Exception as error:
        test.report.check(SCENARIO, "ran to the end", False, f"{type(error).__name__}: {error}")
    return int(test.summary())

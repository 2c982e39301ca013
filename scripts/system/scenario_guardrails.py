"""
``make system-test`` scenario "guardrails": a promotion updates an endpoint that already serves a
model, with a canary watched by a CloudWatch alarm; while the deploy's wait is deferred in the
triggerer and the canary bakes, the alarm goes into ALARM (set with boto3 in the emulator's
CloudWatch). Checked through the REST API: the deploy task failed naming the alarm, its rollout
record says rolled back with the endpoint on its old config, and the smoke test did not run.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from airflow_api import log_text
from deployment import ROLE_ARN, log

SCENARIO = "guardrails"
ENDPOINT = "systest-guard"
ALARM = "systest-guard-5xx"
OLD_CONFIG = "systest-guard-old"
#: Long enough for the watcher below to see the canary bake and set the alarm (emulator clock).
ROLLOUT = "canary:10%:60s"


class GuardrailScenario:
    """
    The scenario's two steps, called by the system test: :meth:`trigger` (the endpoint serving an
    old config, the run, and a thread that fires the alarm at the right moment) and :meth:`check`
    once the run has finished.

    :param test: the running system test (its REST API client, report and emulator).
    :param clients: makes boto3 clients of the emulator: ``clients("sagemaker")``.
    """

    #: The job name prefix of the scenario's run (its job is not one of the other scenarios' runs).
    JOB_PREFIX = "sys-guard"

    def __init__(self, test: Any, clients: Any) -> None:
        self.test = test
        self.clients = clients
        self.run_id = f"systest-guardrails-{secrets.token_hex(3)}"
        self.fired_at: dict[str, Any] | None = None
        self.deploy_state_when_fired: str | None = None
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None

    def prepare(self) -> dict[str, Any]:
        """Put the endpoint in service on an old config (any model: it is never invoked here) and
        return the promotion run's conf."""
        sm = self.clients("sagemaker")
        sm.create_model(
            ModelName=OLD_CONFIG,
            ExecutionRoleArn=ROLE_ARN,
            PrimaryContainer={
                "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1-cpu-py3"
            },
        )
        sm.create_endpoint_config(
            EndpointConfigName=OLD_CONFIG,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": OLD_CONFIG,
                    "InstanceType": "ml.m5.large",
                    "InitialInstanceCount": 1,
                }
            ],
        )
        sm.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName=OLD_CONFIG)
        return {
            "job_name_prefix": self.JOB_PREFIX,
            "bucket": "systest-guardrails",
            "model_package_group": "systest-guardrails",
            "endpoint_name": ENDPOINT,
            "rollback_alarm": ALARM,
            "rollout": ROLLOUT,
            "threshold": 0.0,
        }

    def trigger(self, dag_id: str) -> None:
        """Prepare the endpoint, trigger the run through the REST API and start watching it."""
        self.test.api.unpause(dag_id)
        self.test.api.trigger(dag_id, self.run_id, self.prepare())
        log(f"guardrails: triggered {self.run_id} (endpoint {ENDPOINT} on {OLD_CONFIG}, rollout {ROLLOUT})")
        self.start(dag_id)

    def start(self, dag_id: str) -> None:
        """Watch the run; when its deploy is deferred and the canary bakes, set the alarm to ALARM."""
        self._thread = threading.Thread(target=self._watch, args=(dag_id,), daemon=True, name="guardrails")
        self._thread.start()

    def _watch(self, dag_id: str) -> None:
        sm, cloudwatch = self.clients("sagemaker"), self.clients("cloudwatch")
        while not self._halt.wait(1.0):
            try:
                deploy = self.test.api.task_instances(dag_id, self.run_id).get("deploy", {}).get("state")
                if deploy in ("failed", "success", "upstream_failed", "skipped"):
                    return
                endpoint = sm.describe_endpoint(EndpointName=ENDPOINT)
                if deploy != "deferred" or not baking(endpoint):
                    continue
                cloudwatch.set_alarm_state(
                    AlarmName=ALARM,
                    StateValue="ALARM",
                    StateReason="system test: 5XX errors during the canary",
                )
                self.fired_at, self.deploy_state_when_fired = endpoint, deploy
                log(f"guardrails: {ALARM} set to ALARM during the canary bake (deploy {deploy})")
                return
            except Exception as error:  # the API or the emulator busy: try again next second
                log(f"guardrails watcher: {type(error).__name__}: {error}")

    def stop(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def check(self, dag_id: str, timeout: float = 240.0) -> None:
        """Wait for the run to end, then check it through the REST API (and the endpoint with boto3)."""
        api, report = self.test.api, self.test.report
        deadline = time.monotonic() + timeout
        while (state := api.dag_run(dag_id, self.run_id).get("state")) not in ("success", "failed"):
            if time.monotonic() > deadline:
                break
            time.sleep(2)
        self.stop()
        tasks = api.task_instances(dag_id, self.run_id)
        states = {task: ti.get("state") for task, ti in tasks.items()}
        report.check(
            SCENARIO,
            "the alarm was set while the deploy's wait was deferred and the canary baked",
            self.fired_at is not None and self.deploy_state_when_fired == "deferred",
            f"deploy was {self.deploy_state_when_fired}"
            if self.fired_at
            else "the canary bake was never seen",
        )
        report.check(SCENARIO, "the run failed", state == "failed", f"run {state}; {states}")
        report.check(
            SCENARIO, "the deploy task failed", states.get("deploy") == "failed", str(states.get("deploy"))
        )
        text = log_text(api.log(dag_id, self.run_id, "deploy"))
        report.check(
            SCENARIO,
            "the deploy task's log names the alarm and the rollback",
            ALARM in text and "rolled back" in text.lower(),
            next((line for line in text.splitlines() if ALARM in line), "no line names the alarm")[:300],
        )
        record = api.xcom(dag_id, self.run_id, "deploy", "rollout")
        report.check(
            SCENARIO,
            "the rollout record says rolled back by the alarm, serving the old config",
            record.get("outcome") == "rolled_back"
            and record.get("alarms") == [ALARM]
            and record.get("previous_config") == record.get("serving_config") == OLD_CONFIG,
            str({k: record.get(k) for k in ("outcome", "alarms", "previous_config", "serving_config")}),
        )
        endpoint = self.clients("sagemaker").describe_endpoint(EndpointName=ENDPOINT)
        report.check(
            SCENARIO,
            "the endpoint is InService on its old config",
            endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == OLD_CONFIG,
            f"{endpoint['EndpointStatus']} on {endpoint['EndpointConfigName']}",
        )
        report.check(
            SCENARIO,
            "the smoke test did not run",
            states.get("smoke_test") == "upstream_failed",
            str(states.get("smoke_test")),
        )


def baking(endpoint: dict[str, Any]) -> bool:
    """Whether an endpoint update is in a bake (``PendingDeploymentSummary``: a variant Baking)."""
    pending = endpoint.get("PendingDeploymentSummary") or {}
    return endpoint.get("EndpointStatus") == "Updating" and any(
        status.get("Status") == "Baking"
        for variant in pending.get("ProductionVariants") or []
        for status in variant.get("VariantStatus") or []
    )

"""The smoke test of a deployed model: sample rows through InvokeEndpoint, every answer checked, and
a new deployment that fails put back on the endpoint config it replaced."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf

from airflow_autopilot.operators.base import AWS_TEMPLATE_FIELDS, AutopilotBaseOperator

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_autopilot.core.smoke import SmokeResult, SmokeTest
    from airflow_autopilot.hooks import AutopilotModelHook

#: XCom key of the smoke test's result (:meth:`~airflow_autopilot.core.smoke.SmokeResult.to_dict`),
#: pushed whether it passed or not.
SMOKE_TEST_XCOM_KEY = "smoke_test"
#: Keys of a deploy task's XCom value this operator reads: the endpoint, the config deployed and the
#: config the endpoint served before (each under its first name found).
ENDPOINT_KEYS = ("endpoint_name", "EndpointName")
NEW_CONFIG_KEYS = ("new_config", "EndpointConfigName")
PREVIOUS_CONFIG_KEYS = ("previous_config", "PreviousEndpointConfigName")


def _first(mapping: Mapping[str, Any], keys: Sequence[str]) -> Any:
    return next((mapping[k] for k in keys if mapping.get(k) not in (None, "", "None")), None)


@dataclass(frozen=True)
class SmokePlan:
    """
    What a smoke test task does, from its validated parameters (no AWS call).

    :param test: the smoke test.
    :param endpoint_name: the endpoint.
    :param tested_config: the config the endpoint must serve (the one deployed); ``None``: any.
    :param previous_config: the config to restore after a failure; ``None``: nothing to restore.
    """

    test: SmokeTest
    endpoint_name: str
    tested_config: str | None
    previous_config: str | None


class AutopilotEndpointSmokeTestOperator(AutopilotBaseOperator):
    """
    Send sample rows through ``InvokeEndpoint`` and check every answer; when a new deployment fails,
    put the endpoint back on the config it served before and fail the task with the failing rows.

    The rows are given inline (``rows``) or are the first ``row_count`` rows of an S3 object
    (``rows_s3_uri``, or the first object under that prefix: the job's training or validation data),
    without the ``target_attribute_name`` column. Each row is one request in ``content_type``
    (``text/csv``, or ``application/jsonlines`` as ``{"features": [...]}``). Each answer
    (``accept``: the served model's default when not given) must carry ``expected_response_keys``
    (default: the keys the served model answers with, its ``SAGEMAKER_INFERENCE_OUTPUT``), a
    ``predicted_label`` among ``expected_labels`` when given, every probability in [0, 1], and
    arrive within ``max_latency_ms`` when given. An answer that is a model error fails its row; a
    transient fault (throttling, a dropped connection) fails the task without restoring anything.

    The result (``endpoint_name``, ``passed``, ``rows_sent``, ``failures``, ``latency_ms``
    ``{"p50", "max"}``, ``answers`` and ``failed_rows``, JSON-safe) is pushed to XCom under
    ``smoke_test`` and returned when the test passes.

    On failure, when the deployment replaced a config (``deployment``'s ``previous_config``, or
    ``previous_endpoint_config_name``) and ``restore_on_failure`` is set, the endpoint is updated back
    to it and waited for (sync or deferred, the one endpoint wait); the task then fails with the
    failing rows and their answers, saying the previous config serves again. A new endpoint has no
    previous config: the task fails and says so.

    :param deployment: the deploy task's XCom value (templated; e.g. ``deploy.output``): the
        endpoint, the config deployed (which the endpoint must serve) and the one it replaced.
    :param endpoint_name: the endpoint (templated); default: ``deployment``'s.
    :param previous_endpoint_config_name: the config to restore on failure (templated); default:
        ``deployment``'s ``previous_config``.
    :param rows: inline rows: lists of feature values or CSV lines (templated).
    :param rows_s3_uri: an ``s3://`` object or prefix whose first rows are sent (templated).
    :param row_count: rows to send, 1 to 100 (templated; default 5 from S3, all inline rows).
    :param target_attribute_name: the target column of ``rows_s3_uri``'s header, left out (templated;
        without it the object must be headerless feature rows).
    :param content_type: ``text/csv`` (default) or ``application/jsonlines``.
    :param accept: ``text/csv`` or ``application/jsonlines``; default: the model's.
    :param expected_response_keys: keys every answer must carry (templated).
    :param expected_labels: the known classes (templated).
    :param max_latency_ms: the longest one invocation may take, in milliseconds (templated).
    :param restore_on_failure: put the previous config back when the test fails (default True).
    :param deferrable: wait for the restore in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between endpoint checks while restoring.
    :param max_wait_seconds: give up waiting for the restore after this long.
    """

    template_fields: Sequence[str] = (
        *AWS_TEMPLATE_FIELDS,
        "deployment",
        "endpoint_name",
        "previous_endpoint_config_name",
        "rows",
        "rows_s3_uri",
        "row_count",
        "target_attribute_name",
        "content_type",
        "accept",
        "expected_response_keys",
        "expected_labels",
        "max_latency_ms",
    )
    ui_color = "#d9ead3"

    def __init__(
        self,
        *,
        deployment: Any = None,
        endpoint_name: str | None = None,
        previous_endpoint_config_name: str | None = None,
        rows: Any = None,
        rows_s3_uri: str | None = None,
        row_count: int | str | None = None,
        target_attribute_name: str | None = None,
        content_type: str = "text/csv",
        accept: str | None = None,
        expected_response_keys: Sequence[str] | str | None = None,
        expected_labels: Sequence[str] | str | None = None,
        max_latency_ms: float | str | None = None,
        restore_on_failure: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        max_wait_seconds: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.deployment = deployment
        self.endpoint_name = endpoint_name
        self.previous_endpoint_config_name = previous_endpoint_config_name
        self.rows = rows
        self.rows_s3_uri = rows_s3_uri
        self.row_count = row_count
        self.target_attribute_name = target_attribute_name
        self.content_type = content_type
        self.accept = accept
        self.expected_response_keys = expected_response_keys
        self.expected_labels = expected_labels
        self.max_latency_ms = max_latency_ms
        self.restore_on_failure = restore_on_failure
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_wait_seconds = max_wait_seconds

    def plan(self) -> SmokePlan:
        """Validate every parameter (no AWS call): every problem at once, each naming the parameter."""
        from airflow_autopilot.core.promotion import (
            PromotionInputError,
            parse_mapping,
            refuse,
            validate_resource_name,
        )
        from airflow_autopilot.core.smoke import smoke_test_from
        from airflow_autopilot.core.validation import seconds_errors
        from airflow_autopilot.core.waits.pace import poll_interval_errors

        errors: list[str] = []
        deployment: dict[str, Any] = {}
        if self.deployment not in (None, ""):
            try:
                deployment = parse_mapping(self.deployment, "deployment")
            except PromotionInputError as err:
                errors.append(str(err))
        try:
            test = smoke_test_from(
                rows=self.rows,
                source_uri=self.rows_s3_uri,
                row_count=self.row_count,
                target_attribute_name=self.target_attribute_name,
                content_type=self.content_type,
                accept=self.accept,
                response_keys=self.expected_response_keys,
                labels=self.expected_labels,
                max_latency_ms=self.max_latency_ms,
            )
        except PromotionInputError as err:
            errors += list(err.errors) or [str(err)]
        endpoint = self.endpoint_name if self.endpoint_name not in (None, "", "None") else None
        endpoint = endpoint or _first(deployment, ENDPOINT_KEYS)
        if endpoint is None:
            errors.append(
                "endpoint_name: missing; name the endpoint, or pass the deploy task's XCom as deployment"
            )
        else:
            try:
                validate_resource_name(endpoint, "endpoint_name")
            except PromotionInputError as err:
                errors += list(err.errors) or [str(err)]
        previous = self.previous_endpoint_config_name
        previous = (
            previous if previous not in (None, "", "None") else _first(deployment, PREVIOUS_CONFIG_KEYS)
        )
        errors += [
            *poll_interval_errors(self.poll_interval),
            *seconds_errors(self.max_wait_seconds, "max_wait_seconds"),
        ]
        refuse(errors)
        tested = _first(deployment, NEW_CONFIG_KEYS)
        return SmokePlan(
            test=test,
            endpoint_name=str(endpoint),
            tested_config=str(tested) if tested else None,
            previous_config=str(previous) if previous else None,
        )

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autopilot.core.smoke import for_model
        from airflow_autopilot.exceptions import AutopilotError, AutopilotJobFailed

        plan = self.plan()
        hook = self.model_hook
        endpoint = hook.describe_endpoint_or_none(plan.endpoint_name)
        if endpoint is None:
            raise AutopilotError(
                f"endpoint_name: endpoint {plan.endpoint_name!r} does not exist; nothing to test"
            )
        serving = endpoint.get("EndpointConfigName")
        if endpoint.get("EndpointStatus") != "InService":
            raise AutopilotError(
                f"Endpoint {plan.endpoint_name!r} is {endpoint.get('EndpointStatus')}, not InService: "
                "its answers would not be the deployed model's; wait for the deployment first"
            )
        if plan.tested_config is not None and serving != plan.tested_config:
            raise AutopilotJobFailed(
                f"Endpoint {plan.endpoint_name!r} serves {serving}, not the deployed {plan.tested_config} "
                "(rolled back or replaced since): not testing it, and not changing it"
            )
        test = for_model(plan.test, hook.endpoint_config_containers(str(serving)))
        result = self.run_test(hook, plan.endpoint_name, test)
        value = result.to_dict()
        context["ti"].xcom_push(key=SMOKE_TEST_XCOM_KEY, value=value)
        if result.passed:
            self.log.info("Smoke test passed: %s", result.summary())
            return value
        message = f"Smoke test failed: {result.summary()}\n{result.failure_report()}"
        previous = plan.previous_config
        if not self.restore_on_failure or previous is None or previous == serving:
            why = (
                "restore_on_failure is off"
                if not self.restore_on_failure
                else "the deployment replaced no other config (a new endpoint)"
                if previous is None
                else f"it already served {previous} before"
            )
            raise AutopilotJobFailed(
                f"{message}\nNothing restored ({why}): {plan.endpoint_name} serves {serving}."
            )
        self.log.error("%s", message)
        self.log.warning(
            "Restoring endpoint %s from %s to its previous config %s", plan.endpoint_name, serving, previous
        )
        hook.update_endpoint_config(plan.endpoint_name, previous)
        saved = {
            "EndpointName": plan.endpoint_name,
            "message": message,
            "failed_config": serving,
            "restored_config": previous,
        }
        self.wait_until_in_service(
            hook,
            plan.endpoint_name,
            previous,
            hook.describe_endpoint_or_none(plan.endpoint_name) or {},
            poll_interval=self.poll_interval,
            timeout=self.max_wait_seconds,
            result=saved,
        )
        raise AutopilotJobFailed(restored_message(saved))

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, result: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Resume after the restore's deferred wait: fail with the smoke test's failures, saying the
        previous config serves again (or that restoring it did not end InService)."""
        from airflow_autopilot.exceptions import AutopilotJobFailed

        saved = dict(result or {})
        if not saved:
            # dag.test() resumes with the event alone (it drops the deferral's kwargs): what the
            # task saved is read back from its XCom and the event's endpoint.
            value = context["ti"].xcom_pull(task_ids=self.task_id, key=SMOKE_TEST_XCOM_KEY) or {}
            endpoint = (event or {}).get("endpoint") or {}
            saved = {
                "EndpointName": value.get("endpoint_name"),
                "message": f"Smoke test failed: {value.get('failures')} of {value.get('rows_sent')} rows failed "
                "(the failing rows and answers are in the log and under the XCom key smoke_test)",
                "failed_config": "the deployed config",
                "restored_config": endpoint.get("EndpointConfigName"),
            }
        try:
            self.resolve_endpoint_event(event, saved)
        except Exception as err:
            raise AutopilotJobFailed(
                f"{saved.get('message', 'Smoke test failed')}\nRestoring {saved.get('restored_config')} did not "
                f"end InService: {err}"
            ) from err
        raise AutopilotJobFailed(restored_message(saved))

    def run_test(self, hook: AutopilotModelHook, endpoint_name: str, test: SmokeTest) -> SmokeResult:
        """Choose the rows and send them, logging each answer."""
        from botocore.exceptions import ClientError

        from airflow_autopilot.core.smoke import HEAD_BYTES, InvocationError, rows_from_text, run_smoke_test

        if test.rows is not None:
            rows: Sequence[Sequence[str]] = test.rows
        else:
            assert test.source_uri is not None
            text, truncated, uri = hook.read_head(test.source_uri, HEAD_BYTES)
            rows = rows_from_text(
                text,
                count=test.row_count,
                target_attribute_name=test.target_attribute_name,
                truncated=truncated,
                source=uri,
            )
            self.log.info("Sending the first %d rows of %s", len(rows), uri)

        def invoke(body: str) -> str:
            try:
                return hook.invoke_endpoint(
                    endpoint_name, body, content_type=test.content_type, accept=test.accept or "text/csv"
                )
            except ClientError as err:
                if err.response.get("Error", {}).get("Code") == "ModelError":
                    raise InvocationError(err.response["Error"].get("Message") or str(err)) from err
                raise

        def log_answer(index: int, entry: dict[str, Any]) -> None:
            self.log.info(
                "  row %d: %s -> %s (%.0f ms)%s",
                index,
                entry["row"],
                entry["raw"],
                entry["latency_ms"],
                f" FAIL: {'; '.join(entry['problems'])}" if entry["problems"] else "",
            )

        return run_smoke_test(test, rows, invoke, endpoint_name=endpoint_name, on_answer=log_answer)


def restored_message(saved: Mapping[str, Any]) -> str:
    """The error of a smoke test whose deployment was restored to its previous config."""
    return (
        f"{saved.get('message', 'Smoke test failed')}\nRestored endpoint {saved.get('EndpointName')} to its "
        f"previous config {saved.get('restored_config')} (replacing {saved.get('failed_config')}); it serves "
        "the previous model again."
    )

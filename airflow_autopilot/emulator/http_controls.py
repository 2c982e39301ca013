"""HTTP control routes of an emulator server (request counts, faults, invocation failures, alarm
triggers, settings) in moto's ``/moto-api`` app."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from airflow_autopilot.emulator import controls, settings

ROUTE_PREFIX = "/moto-api/autopilot-emulator"
_JSON = {"Content-Type": "application/json"}


def _body(request: Any) -> dict[str, Any]:
    raw = request.get_data() if hasattr(request, "get_data") else b""
    if not raw and getattr(request, "form", None):
        # A JSON body sent as form-urlencoded (curl -d) arrives as a single form key.
        raw = next(iter(request.form.keys())).encode()
    if not raw:
        return {}
    # NaN and Infinity are not JSON, whatever Python's parser accepts.
    value = json.loads(raw, parse_constant=_reject_constant)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _count(body: dict[str, Any], key: str) -> int:
    """A fault count from the body: a non-negative integer (not a float, bool or string)."""
    value = body.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}: {value!r} must be a non-negative integer")
    return value


def request_counts_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """``/request-counts``: return (GET) or reset (POST/DELETE) the per-operation request counts.

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    if request.method in ("POST", "DELETE"):
        controls.reset_request_counts()
        return 200, dict(_JSON), json.dumps({})
    return 200, dict(_JSON), json.dumps(controls.request_counts())


def faults_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """``/faults``: return the any-request budget (GET) or queue faults (POST).

    The POST body is JSON ``{"job_name": null, "throttle": 0, "server_errors": 0, "not_found": 0,
    "access_denied": 0, "expired_token": 0}``,
    sent as ``application/json`` (or form-encoded, as ``curl -d`` does).

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    if request.method == "GET":
        return 200, dict(_JSON), json.dumps(dataclasses.asdict(controls.pending_faults()))
    try:
        body = _body(request)
        controls.inject_faults(
            job_name=body.get("job_name"),
            throttle=_count(body, "throttle"),
            server_errors=_count(body, "server_errors"),
            not_found=_count(body, "not_found"),
            access_denied=_count(body, "access_denied"),
            expired_token=_count(body, "expired_token"),
        )
    except (ValueError, TypeError) as error:
        return 400, dict(_JSON), json.dumps({"error": str(error)})
    return 200, dict(_JSON), json.dumps({"queued": True})


def configure_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """``/configure``: apply :func:`settings.configure` from a JSON body such as
    ``{"stage_seconds": 1.0, "max_candidates": 5}`` (POST).

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    try:
        body = _body(request)
        settings.configure(
            stage_seconds=body.get("stage_seconds"),
            max_candidates=body.get("max_candidates"),
        )
    except (ValueError, TypeError) as error:
        return 400, dict(_JSON), json.dumps({"error": str(error)})
    return (
        200,
        dict(_JSON),
        json.dumps({"stage_seconds": settings.stage_seconds(), "max_candidates": settings.candidate_cap()}),
    )


def deny_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """``/deny``: the operations answered with AccessDeniedException (GET), or deny more of them
    (POST ``{"operations": ["ListAutoMLJobs"]}``); DELETE clears faults and denials.

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    if request.method == "DELETE":
        controls.clear_faults()
    elif request.method == "POST":
        try:
            operations = _body(request).get("operations") or []
            if not isinstance(operations, list) or not all(isinstance(o, str) for o in operations):
                raise ValueError("operations: expected a list of operation names")
        except (ValueError, TypeError) as error:
            return 400, dict(_JSON), json.dumps({"error": str(error)})
        controls.deny(*operations)
    return 200, dict(_JSON), json.dumps({"denied": controls.denied_operations()})


def change_log_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """``/change-log``: every V1 job's status changes so far (GET), as JSON
    ``{"now": <emulator time>, "jobs": {name: [[time, status, secondary], ...]}}``.

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    from airflow_autopilot.emulator.handle import change_logs

    return 200, dict(_JSON), json.dumps({"now": settings.now(), "jobs": change_logs()})


def approval_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """``/approval``: decide a model package version as a person would in SageMaker Studio (POST
    ``{"model_package_arn": ..., "status": "Approved"|"Rejected"|"PendingManualApproval",
    "description": "..."}``); the answer is ``{"ModelPackageArn": ..., "ModelApprovalStatus": ...}``.

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    from airflow_autopilot.emulator.handle import set_approval

    try:
        body = _body(request)
        arn, status = body.get("model_package_arn"), body.get("status")
        if not isinstance(arn, str) or not isinstance(status, str):
            raise ValueError("model_package_arn and status: required strings")
        answer = set_approval(arn, status, body.get("description"))
    except Exception as error:  # noqa: BLE001 - any refusal is the caller's bad request
        return 400, dict(_JSON), json.dumps({"error": getattr(error, "message", None) or str(error)})
    return 200, dict(_JSON), json.dumps(answer)


def invocation_failures_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """``/invocation-failures``: the invocation failures set (GET), or set one (POST ``{"model_name":
    "*", "matching": null, "status": 500, "message": null, "new_models_only": false}``, every key
    optional; see :meth:`EmulatorHandle.fail_invocations`). DELETE ``/deny`` clears them with the faults.

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    from airflow_autopilot.emulator.handle import fail_invocations

    if request.method == "POST":
        try:
            body = _body(request)
            unknown = set(body) - {"model_name", "matching", "status", "message", "new_models_only"}
            if unknown:
                raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
            new_only = body.get("new_models_only", False)
            if not isinstance(new_only, bool):
                raise ValueError(f"new_models_only: {new_only!r} must be true or false")
            fail_invocations(
                body.get("model_name", "*"),
                matching=body.get("matching"),
                status=body.get("status", controls.DEFAULT_FAILURE_STATUS),
                message=body.get("message"),
                new_models_only=new_only,
            )
        except (ValueError, TypeError) as error:
            return 400, dict(_JSON), json.dumps({"error": str(error)})
    failures = [{**dataclasses.asdict(f), "spared": sorted(f.spared)} for f in controls.invocation_failures()]
    return 200, dict(_JSON), json.dumps({"invocation_failures": failures})


def alarm_triggers_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """``/alarm-triggers``: the alarm triggers not used yet (GET), or add one (POST ``{"alarm_name":
    "...", "phase": "canary", "endpoint_name": null}``; see :meth:`EmulatorHandle.fire_alarm`).

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    if request.method == "POST":
        try:
            body = _body(request)
            unknown = set(body) - {"alarm_name", "phase", "endpoint_name"}
            if unknown:
                raise ValueError(f"unknown keys: {', '.join(sorted(unknown))}")
            controls.fire_alarm(body.get("alarm_name"), body.get("phase"), body.get("endpoint_name"))  # type: ignore[arg-type]
        except (ValueError, TypeError) as error:
            return 400, dict(_JSON), json.dumps({"error": str(error)})
    triggers = [dataclasses.asdict(t) for t in controls.alarm_triggers()]
    return 200, dict(_JSON), json.dumps({"alarm_triggers": triggers})


def register_routes() -> None:
    """Add the routes under :data:`ROUTE_PREFIX` to moto's ``/moto-api`` route table (idempotent).

    A server reads that table when it first serves ``/moto-api``: register before starting it.
    """
    from moto.moto_api._internal import urls

    urls.url_paths["{0}" + ROUTE_PREFIX + "/request-counts"] = request_counts_view
    urls.url_paths["{0}" + ROUTE_PREFIX + "/faults"] = faults_view
    urls.url_paths["{0}" + ROUTE_PREFIX + "/configure"] = configure_view
    urls.url_paths["{0}" + ROUTE_PREFIX + "/deny"] = deny_view
    urls.url_paths["{0}" + ROUTE_PREFIX + "/change-log"] = change_log_view
    urls.url_paths["{0}" + ROUTE_PREFIX + "/approval"] = approval_view
    urls.url_paths["{0}" + ROUTE_PREFIX + "/invocation-failures"] = invocation_failures_view
    urls.url_paths["{0}" + ROUTE_PREFIX + "/alarm-triggers"] = alarm_triggers_view

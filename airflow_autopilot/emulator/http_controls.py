"""HTTP routes of a running emulator server, added to moto's own ``/moto-api`` app.

* ``GET /moto-api/autopilot-emulator/request-counts`` -> ``{"DescribeAutoMLJob": 3, ...}``;
  ``POST`` or ``DELETE`` on the same path resets the counts.
* ``POST /moto-api/autopilot-emulator/faults`` with JSON
  ``{"job_name": null, "throttle": 0, "server_errors": 0, "not_found": 0}`` queues faults
  (send ``Content-Type: application/json``).
* ``POST /moto-api/autopilot-emulator/configure`` with JSON ``{"stage_seconds": 1.0,
  "max_candidates": 5}`` changes the settings for jobs created afterwards.

A server reads moto's route table when it first serves ``/moto-api``: register before starting it.
"""

from __future__ import annotations

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
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def request_counts_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """Return (GET) or reset (POST/DELETE) the per-operation request counts.

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    if request.method in ("POST", "DELETE"):
        controls.reset_request_counts()
        return 200, dict(_JSON), json.dumps({})
    return 200, dict(_JSON), json.dumps(controls.request_counts())


def faults_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """Queue faults from a JSON body (POST) or return the any-request budget (GET).

    :param request: the werkzeug request.
    :param full_url: the request URL.
    :param headers: the request headers.
    """
    if request.method == "GET":
        budget = controls.pending_faults()
        return 200, dict(_JSON), json.dumps(budget.__dict__)
    try:
        body = _body(request)
        controls.inject_faults(
            job_name=body.get("job_name"),
            throttle=int(body.get("throttle", 0)),
            server_errors=int(body.get("server_errors", 0)),
            not_found=int(body.get("not_found", 0)),
        )
    except (ValueError, TypeError) as error:
        return 400, dict(_JSON), json.dumps({"error": str(error)})
    return 200, dict(_JSON), json.dumps({"queued": True})


def configure_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    """Apply :func:`settings.configure` from a JSON body (POST).

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


def register_routes() -> None:
    """Add the routes to moto's ``/moto-api`` route table (idempotent)."""
    from moto.moto_api._internal import urls

    urls.url_paths["{0}" + ROUTE_PREFIX + "/request-counts"] = request_counts_view
    urls.url_paths["{0}" + ROUTE_PREFIX + "/faults"] = faults_view
    urls.url_paths["{0}" + ROUTE_PREFIX + "/configure"] = configure_view

"""Local Amazon SageMaker Autopilot emulator on top of moto (install the ``emulator`` extra)."""

from __future__ import annotations

import importlib
from typing import Any

# Public name -> defining module. Names load on first use because the pytest11 plugin imports this
# package in every pytest run of the environment, emulator tests or not.
_EXPORTS = {
    "mock_autopilot": "airflow_autopilot.emulator.inprocess",
    "EmulatorServer": "airflow_autopilot.emulator.server",
    "airflow_conn_value": "airflow_autopilot.emulator.server",
    "EmulatorHandle": "airflow_autopilot.emulator.handle",
    "install": "airflow_autopilot.emulator.urls",
    "uninstall": "airflow_autopilot.emulator.urls",
    "AutopilotResponse": "airflow_autopilot.emulator.responses",
    "configure": "airflow_autopilot.emulator.settings",
    "advance_time": "airflow_autopilot.emulator.settings",
    "inject_faults": "airflow_autopilot.emulator.controls",
    "clear_faults": "airflow_autopilot.emulator.controls",
    "deny": "airflow_autopilot.emulator.controls",
    "fail_invocations": "airflow_autopilot.emulator.handle",
    "fire_alarm": "airflow_autopilot.emulator.controls",
    "PHASES": "airflow_autopilot.emulator.guardrails",
    "change_logs": "airflow_autopilot.emulator.handle",
    "request_counts": "airflow_autopilot.emulator.controls",
    "reset_request_counts": "airflow_autopilot.emulator.controls",
    "OUTCOMES": "airflow_autopilot.emulator.controls",
    "TAG_OUTCOME": "airflow_autopilot.emulator.controls",
    "TAG_STAGE_SECONDS": "airflow_autopilot.emulator.controls",
    "TAG_THROTTLE": "airflow_autopilot.emulator.controls",
    "TAG_SERVER_ERRORS": "airflow_autopilot.emulator.controls",
    "TAG_NOT_FOUND": "airflow_autopilot.emulator.controls",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))

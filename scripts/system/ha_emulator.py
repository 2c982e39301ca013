"""
The Autopilot emulator for the production-topology test (run_ha_test.py): the ``autopilot-emulator``
server plus two controls of that test, under ``/moto-api/autopilot-emulator-ha/``:

* ``POST advance {"seconds": S}``: move the emulator clock forward (jobs progress without waiting);
* ``POST hold {"prefix": P}``: the next CreateAutoMLJob whose name starts with P creates the job
  and then holds its answer until ``DELETE hold`` (or 300 s), so that the worker that sent it can
  be killed between the call and the XCom push; ``GET hold`` tells which job is held.

    python scripts/system/ha_emulator.py --port PORT
"""

from __future__ import annotations

import argparse
import json
import signal
import threading
from typing import Any

ROUTE = "/moto-api/autopilot-emulator-ha"
_JSON = {"Content-Type": "application/json"}
_hold: dict[str, Any] = {"prefix": None, "held": None}
_released = threading.Event()


def _body(request: Any) -> dict[str, Any]:
    raw = request.data if hasattr(request, "data") else request.get_data()
    return json.loads(raw or b"{}")


def advance_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    from airflow_autopilot.emulator import settings

    seconds = float(_body(request)["seconds"])
    settings.advance_time(seconds)
    return 200, dict(_JSON), json.dumps({"advanced": seconds, "now": settings.now()})


def hold_view(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    if request.method == "POST":
        _released.clear()
        _hold.update(prefix=str(_body(request)["prefix"]), held=None)
    elif request.method == "DELETE":
        _hold["prefix"] = None
        _released.set()
    return 200, dict(_JSON), json.dumps({"prefix": _hold["prefix"], "held": _hold["held"]})


def install_hold() -> None:
    """Wrap the emulator's CreateAutoMLJob: create, then hold the answer of the job named by the hold."""
    from airflow_autopilot.emulator.responses import AutopilotResponse

    original = AutopilotResponse.create_auto_ml_job

    def create_auto_ml_job(self: Any) -> Any:
        result = original(self)  # the job exists from here on
        name = str(self._get_param("AutoMLJobName"))
        prefix = _hold["prefix"]
        if prefix and name.startswith(prefix) and _hold["held"] is None:
            _hold["held"] = name
            _released.wait(timeout=300)
        return result

    AutopilotResponse.create_auto_ml_job = create_auto_ml_job  # type: ignore[method-assign]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    from moto.moto_api._internal import urls

    from airflow_autopilot.emulator.server import LOOPBACK, EmulatorServer

    urls.url_paths["{0}" + ROUTE + "/advance"] = advance_view
    urls.url_paths["{0}" + ROUTE + "/hold"] = hold_view
    install_hold()
    server = EmulatorServer(port=args.port, host=LOOPBACK).start()
    print(f"Autopilot emulator (HA test) at {server.endpoint_url}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    _released.set()
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

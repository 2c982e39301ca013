"""Airflow's public REST API (v2), used as a user would: a token from /auth/token, then JSON calls."""

from __future__ import annotations

import json
from typing import Any

import httpx


class AirflowAPI:
    """
    A small client of ``/api/v2`` on the deployment's API server.

    :param base_url: ``http://127.0.0.1:<port>``.
    """

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = httpx.Client(base_url=f"{self.base_url}/api/v2", timeout=60)
        self.token: str | None = None

    def close(self) -> None:
        self.http.close()

    def login(self) -> None:
        """Get a JWT from the simple auth manager (all-admins mode: no credentials) and use it."""
        response = httpx.get(f"{self.base_url}/auth/token", timeout=30)
        response.raise_for_status()
        self.token = response.json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {self.token}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    # --- the calls the test makes --------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        return dict(self.get("/monitor/health"))

    def dag(self, dag_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}"))

    def import_errors(self) -> list[dict[str, Any]]:
        return list(self.get("/importErrors")["import_errors"])

    def unpause(self, dag_id: str) -> None:
        if self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})["is_paused"]:
            raise RuntimeError(f"{dag_id} is still paused")

    def trigger(self, dag_id: str, run_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        body = {"dag_run_id": run_id, "logical_date": None, "conf": conf}
        return dict(self.request("POST", f"/dags/{dag_id}/dagRuns", json=body))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/dags/{dag_id}/dagRuns", limit=100)["dag_runs"])

    def upstream_asset_events(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """The asset events that created (triggered) a DAG run."""
        return list(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}"))

    def task_instances(self, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
        found = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)["task_instances"]
        return {ti["task_id"]: ti for ti in found}

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        return list(
            self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/tries")["task_instances"]
        )

    def log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> list[dict[str, Any]]:
        """The task's log for one try, as Airflow's structured entries (worker and triggerer parts)."""
        response = self.http.get(
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": True},
            headers={"Accept": "application/json"},
        )
        response.raise_for_status()
        content = response.json()["content"]
        return [entry if isinstance(entry, dict) else {"event": str(entry)} for entry in content]

    def xcom_keys(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        found = self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries")
        return [entry["key"] for entry in found["xcom_entries"]]

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        return self.get(path)["value"]

    def links(self, dag_id: str, run_id: str, task_id: str) -> dict[str, str | None]:
        return dict(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/links")["extra_links"])


def log_text(entries: list[dict[str, Any]]) -> str:
    """Every field of every log entry as one searchable text (for the credential check)."""
    return "\n".join(json.dumps(entry, default=str) for entry in entries)

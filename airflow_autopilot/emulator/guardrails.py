"""Guardrailed endpoint updates (UpdateEndpoint's DeploymentConfig): the phases of a blue/green or
rolling deployment on the emulator clock, the traffic each fleet takes, and automatic rollback
when a CloudWatch alarm is in ALARM while a phase is watched."""

from __future__ import annotations

from typing import Any

#: The phases a deployment goes through, by name (what :func:`controls.fire_alarm` takes).
PHASES = ("creating", "canary", "linear", "baking", "rolling", "termination-wait")


def traffic(backend: Any, endpoint: Any) -> list[tuple[str, float]]:
    """The endpoint configs serving ``endpoint`` now, each with its share of the traffic.

    :param backend: moto's SageMaker backend.
    :param endpoint: moto's endpoint.
    """
    return [(str(endpoint.endpoint_config_name), 1.0)]

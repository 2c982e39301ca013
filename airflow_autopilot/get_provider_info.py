"""Provider metadata for Airflow's ProvidersManager (imports nothing but the package's version)."""

from __future__ import annotations

from typing import Any

INTEGRATION = "Amazon SageMaker Autopilot"


def get_provider_info() -> dict[str, Any]:
    from airflow_autopilot import __version__

    def modules(*names: str) -> list[dict[str, Any]]:
        return [{"integration-name": INTEGRATION, "python-modules": list(names)}]

    return {
        "package-name": "airflow-autopilot",
        "name": INTEGRATION,
        "description": "Hook, deferrable sensor, operators, model promotion and a local emulator for "
        "SageMaker Autopilot (AutoML) jobs.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": INTEGRATION,
                "external-doc-url": "https://docs.aws.amazon.com/sagemaker/latest/dg/autopilot-automate-model-development.html",
                "tags": ["aws"],
            }
        ],
        "hooks": modules("airflow_autopilot.hooks.autopilot", "airflow_autopilot.hooks.model"),
        "sensors": modules("airflow_autopilot.sensors"),
        "operators": modules(
            "airflow_autopilot.operators.create",
            "airflow_autopilot.operators.create_v2",
            "airflow_autopilot.operators.results",
            "airflow_autopilot.operators.promotion",
            "airflow_autopilot.operators.smoke_test",
            "airflow_autopilot.operators.rollback",
            "airflow_autopilot.operators.transform",
        ),
        "triggers": modules("airflow_autopilot.triggers"),
        "extra-links": ["airflow_autopilot.links.AutopilotJobLink"],
    }

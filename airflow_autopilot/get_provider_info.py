"""Provider metadata for Airflow's ProvidersManager. Import-free on purpose."""

from __future__ import annotations


def get_provider_info() -> dict:
    return {
        "package-name": "airflow-autopilot",
        "name": "Amazon SageMaker Autopilot",
        "description": "Hook, deferrable sensor, operators and a local emulator for SageMaker Autopilot (AutoML) jobs.",
        "versions": ["0.1.0"],
        "integrations": [
            {
                "integration-name": "Amazon SageMaker Autopilot",
                "external-doc-url": "https://docs.aws.amazon.com/sagemaker/latest/dg/autopilot-automate-model-development.html",
                "tags": ["aws"],
            }
        ],
        "hooks": [
            {
                "integration-name": "Amazon SageMaker Autopilot",
                "python-modules": ["airflow_autopilot.hooks", "airflow_autopilot.hooks.model"],
            }
        ],
        "sensors": [
            {
                "integration-name": "Amazon SageMaker Autopilot",
                "python-modules": ["airflow_autopilot.sensors"],
            }
        ],
        "operators": [
            {
                "integration-name": "Amazon SageMaker Autopilot",
                "python-modules": ["airflow_autopilot.operators"],
            }
        ],
        "triggers": [
            {
                "integration-name": "Amazon SageMaker Autopilot",
                "python-modules": ["airflow_autopilot.triggers"],
            }
        ],
        "extra-links": ["airflow_autopilot.links.AutopilotJobLink"],
    }

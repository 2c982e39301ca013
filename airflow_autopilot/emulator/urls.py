"""The emulator's wiring into moto: its SageMaker route and the HTTP control routes."""

from __future__ import annotations

from moto.sagemaker import urls as sagemaker_urls
from moto.sagemaker.responses import SageMakerResponse

from airflow_autopilot.emulator.http_controls import register_routes
from airflow_autopilot.emulator.responses import AutopilotResponse

#: The entry of ``moto.sagemaker.urls.url_paths`` that serves every SageMaker request.
SAGEMAKER_URL_KEY = "{0}/$"


def install() -> None:
    """Route moto's SageMaker requests to :class:`AutopilotResponse` and register the HTTP controls.

    Idempotent. In-process (``mock_aws``) moto reads its route table on every request; a moto server
    reads it when it builds its SageMaker app, so install before its first SageMaker request.
    """
    sagemaker_urls.url_paths[SAGEMAKER_URL_KEY] = AutopilotResponse.dispatch
    register_routes()


def uninstall() -> None:
    """Give the SageMaker route back to moto's own response class (in-process mode)."""
    sagemaker_urls.url_paths[SAGEMAKER_URL_KEY] = SageMakerResponse.dispatch


def is_installed() -> bool:
    """Return whether moto's SageMaker route points at :class:`AutopilotResponse`."""
    handler = sagemaker_urls.url_paths.get(SAGEMAKER_URL_KEY)
    return getattr(handler, "__self__", None) is AutopilotResponse

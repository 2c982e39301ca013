"""In-process emulation: moto's ``mock_aws`` with the Autopilot extension installed."""

from __future__ import annotations

from contextlib import ContextDecorator
from typing import Any

from airflow_autopilot.emulator import controls, settings
from airflow_autopilot.emulator.handle import DEFAULT_REGION, EmulatorHandle
from airflow_autopilot.service_models import botocore_session


class mock_autopilot(ContextDecorator):  # noqa: N801 - named like moto's mock_aws
    """Context manager and decorator: moto's ``mock_aws`` plus the Autopilot emulator.

    Entering installs the extension, starts ``mock_aws``, clears queued faults and request counts
    and applies the given settings; leaving stops the mock (moto resets its state) and restores the
    previous settings and clock.

    :param stage_seconds: seconds per lifecycle stage for jobs created inside.
    :param max_candidates: cap on candidates per job.
    :param region: region of :meth:`EmulatorHandle.client`.
    """

    def __init__(
        self,
        stage_seconds: float | None = None,
        max_candidates: int | None = None,
        region: str = DEFAULT_REGION,
    ) -> None:
        self.stage_seconds = stage_seconds
        self.max_candidates = max_candidates
        self.region = region
        self._mock: Any = None
        self._saved: tuple[float | None, int | None, float] | None = None

    def __enter__(self) -> EmulatorHandle:
        import boto3
        from moto import mock_aws

        from airflow_autopilot.emulator.urls import install

        install()
        self._saved = settings.snapshot()
        settings.configure(stage_seconds=self.stage_seconds, max_candidates=self.max_candidates)
        controls.clear_faults()
        controls.reset_request_counts()
        self._mock = mock_aws()
        self._mock.start()
        # mock_aws clears boto3's default session until it stops: the next one reads the service
        # models through the process's shared loader instead of parsing them again.
        boto3.setup_default_session(botocore_session=botocore_session())
        return EmulatorHandle(self.region)

    def __exit__(self, *exc: object) -> None:
        if self._mock is not None:
            self._mock.stop()
            self._mock = None
        if self._saved is not None:
            settings.restore(self._saved)
            self._saved = None
        controls.clear_faults()

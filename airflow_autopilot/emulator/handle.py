"""The handle tests and scripts get from :func:`mock_autopilot`, the fixtures and :class:`EmulatorServer`."""

from __future__ import annotations

from typing import Any

from airflow_autopilot.emulator import controls, settings

DEFAULT_REGION = "us-east-1"


def reset_backends() -> None:
    """Reset every moto backend (as ``POST /moto-api/reset`` does) and the emulator's faults."""
    from moto.moto_api._internal.models import moto_api_backend

    with controls.REQUEST_GATE.exclusive():
        moto_api_backend.reset()
        controls.clear_faults()


def change_logs() -> dict[str, list[tuple[float, str, str]]]:
    """Every V1 job's status changes so far, in every account and region (name to
    ``(emulator time, status, secondary)``, oldest first)."""
    from moto.sagemaker.models import sagemaker_backends

    from airflow_autopilot.emulator.models import AutopilotBackend

    logs: dict[str, list[tuple[float, str, str]]] = {}
    for _account, _region, backend in sagemaker_backends.iter_backends():
        logs.update(AutopilotBackend(backend).change_log())  # type: ignore[arg-type]
    return logs


def model_names() -> set[str]:
    """The names of every SageMaker model that exists, in every account and region."""
    from moto.sagemaker.models import sagemaker_backends

    return {
        name
        for _account, _region, backend in sagemaker_backends.iter_backends()
        for name in list(backend._models)  # type: ignore[attr-defined]
    }


def fail_invocations(
    model_name: str = "*",
    matching: str | None = None,
    status: int = controls.DEFAULT_FAILURE_STATUS,
    message: str | None = None,
    new_models_only: bool = False,
) -> controls.InvocationFailure:
    """Make InvokeEndpoint answer ``ModelError`` for rows sent to matching models, until the faults
    are cleared (see :meth:`EmulatorHandle.fail_invocations`).

    :param model_name: the models (a shell-style pattern: ``*`` for every one).
    :param matching: fail only rows containing this text (``None``: every row).
    :param status: the container's HTTP status (``OriginalStatusCode``), 400 to 599.
    :param message: the container's message (``OriginalMessage``).
    :param new_models_only: spare the models that exist now.
    """
    return controls.fail_invocations(
        model_name,
        matching=matching,
        status=status,
        message=message,
        new_models_only=new_models_only,
        existing_models=model_names() if new_models_only else (),
    )


class EmulatorHandle:
    """Controls of a running emulator (in-process or a server in this process).

    :param region: region the emulator's clients use.
    """

    def __init__(self, region: str = DEFAULT_REGION) -> None:
        self.region = region

    def configure(self, stage_seconds: float | None = None, max_candidates: int | None = None) -> None:
        """Change stage duration or candidate cap for jobs created from now on.

        :param stage_seconds: seconds per lifecycle stage.
        :param max_candidates: cap on candidates per job.
        """
        settings.configure(stage_seconds=stage_seconds, max_candidates=max_candidates)

    def advance(self, seconds: float) -> None:
        """Move the emulator clock forward so jobs progress without sleeping.

        :param seconds: how far to jump.
        """
        settings.advance_time(seconds)

    def inject_faults(
        self,
        job_name: str | None = None,
        throttle: int = 0,
        server_errors: int = 0,
        not_found: int = 0,
        access_denied: int = 0,
        expired_token: int = 0,
    ) -> None:
        """Queue faults; see :func:`airflow_autopilot.emulator.controls.inject_faults`.

        :param job_name: the job the faults are about, or ``None`` for any next request.
        :param throttle: requests answered with ``ThrottlingException``.
        :param server_errors: requests answered with HTTP 500 ``InternalFailure``.
        :param not_found: describe requests answered with ``ResourceNotFound``.
        :param access_denied: requests answered with ``AccessDeniedException``.
        :param expired_token: requests answered with ``ExpiredTokenException``.
        """
        controls.inject_faults(
            job_name,
            throttle=throttle,
            server_errors=server_errors,
            not_found=not_found,
            access_denied=access_denied,
            expired_token=expired_token,
        )

    def clear_faults(self) -> None:
        """Drop every queued fault and every denied operation."""
        controls.clear_faults()

    def deny(self, *operations: str) -> None:
        """Answer these operations with ``AccessDeniedException`` until :meth:`clear_faults`.

        :param operations: SageMaker operation names, e.g. ``ListAutoMLJobs``.
        """
        controls.deny(*operations)

    def fail_invocations(
        self,
        model_name: str = "*",
        matching: str | None = None,
        status: int = controls.DEFAULT_FAILURE_STATUS,
        message: str | None = None,
        new_models_only: bool = False,
    ) -> None:
        """Make InvokeEndpoint answer ``ModelError`` for rows sent to matching models, until
        :meth:`clear_faults`; see :func:`airflow_autopilot.emulator.controls.fail_invocations`.

        :param model_name: the models (a shell-style pattern: ``*`` for every one).
        :param matching: fail only rows containing this text (``None``: every row).
        :param status: the container's HTTP status (``OriginalStatusCode``), 400 to 599.
        :param message: the container's message (``OriginalMessage``).
        :param new_models_only: spare the models that exist now: the endpoint's current model keeps
            answering, a model created later (the new deployment's) fails.
        """
        fail_invocations(model_name, matching, status, message, new_models_only)

    def fire_alarm(self, alarm_name: str, phase: str, endpoint_name: str | None = None) -> None:
        """Put a CloudWatch alarm into ALARM when the next deployment (of ``endpoint_name``, or any)
        enters ``phase``; see :func:`airflow_autopilot.emulator.controls.fire_alarm`.

        :param alarm_name: the alarm (create it with CloudWatch's PutMetricAlarm first).
        :param phase: a deployment phase: one of :data:`airflow_autopilot.emulator.guardrails.PHASES`.
        :param endpoint_name: the endpoint, or ``None`` for any.
        """
        controls.fire_alarm(alarm_name, phase, endpoint_name)

    def change_log(self) -> dict[str, list[tuple[float, str, str]]]:
        """Every V1 job's status changes so far: name to ``(emulator time, status, secondary)``."""
        return change_logs()

    def request_counts(self) -> dict[str, int]:
        """Return SageMaker requests per operation since the last reset."""
        return controls.request_counts()

    def reset_request_counts(self) -> None:
        """Zero the request counters."""
        controls.reset_request_counts()

    def set_approval(
        self, model_package_arn: str, status: str, description: str | None = None
    ) -> dict[str, str]:
        """Approve or reject a model package version, as a person would in SageMaker Studio.

        :param model_package_arn: the version.
        :param status: ``Approved``, ``Rejected`` or ``PendingManualApproval``.
        :param description: the ApprovalDescription.
        """
        return set_approval(model_package_arn, status, description)

    def reset(self) -> None:
        """Reset moto's state, queued faults and request counts (settings and clock stay)."""
        reset_backends()
        controls.reset_request_counts()

    def job(self, name: str, account_id: str | None = None) -> Any:
        """Return the stored job object (an :class:`EmulatedAutoMLJob` for V1 jobs).

        :param name: the AutoML job name.
        :param account_id: the account, default moto's default account.
        """
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.sagemaker.models import sagemaker_backends

        return sagemaker_backends[account_id or DEFAULT_ACCOUNT_ID][self.region].auto_ml_jobs[name.lower()]

    def client(self, service: str = "sagemaker", **kwargs: Any) -> Any:
        """Return a boto3 client for ``service`` in the emulator's region.

        :param service: the boto3 service name.
        :param kwargs: more ``boto3.client`` arguments.
        """
        import boto3

        kwargs.setdefault("region_name", self.region)
        return boto3.client(service, **kwargs)


def set_approval(model_package_arn: str, status: str, description: str | None = None) -> dict[str, str]:
    """Set a model package version's ModelApprovalStatus (the account and region come from its ARN).

    :param model_package_arn: the version's ARN.
    :param status: ``Approved``, ``Rejected`` or ``PendingManualApproval``.
    :param description: the ApprovalDescription.
    """
    from moto.sagemaker.models import sagemaker_backends

    from airflow_autopilot.emulator.models import AutopilotBackend

    parts = model_package_arn.split(":")
    if len(parts) < 6 or not parts[5].startswith("model-package/"):
        raise ValueError(f"model_package_arn: {model_package_arn!r} is not a model package ARN")
    backend = AutopilotBackend(sagemaker_backends[parts[4]][parts[3]])
    arn = backend.update_model_package(
        model_package_arn, approval_status=status, approval_description=description, metadata=None, remove=[]
    )
    return {"ModelPackageArn": arn, "ModelApprovalStatus": status}

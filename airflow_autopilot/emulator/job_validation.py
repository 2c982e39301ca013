"""CreateAutoMLJob and CreateAutoMLJobV2 validation with SageMaker's own messages, raised as moto's
``ValidationException``: the rules and their server wording are the request tables'
(:mod:`airflow_autopilot.core.fields.automl`), so the emulator and the operators cannot disagree."""

from __future__ import annotations

from typing import Any, NoReturn

from moto.sagemaker.exceptions import ValidationError

from airflow_autopilot.core.fields.automl import CREATE_AUTOML_JOB, CREATE_AUTOML_JOB_V2
from airflow_autopilot.core.fields.spec import RequestSpec
from airflow_autopilot.emulator import controls, settings


def _fail(message: str) -> NoReturn:
    raise ValidationError(message=message)


def _validate_tags(tags: list[dict[str, str]] | None) -> None:
    values = controls.tags_to_dict(tags)
    outcome = values.get(controls.TAG_OUTCOME)
    if outcome is not None and outcome not in controls.OUTCOMES:
        _fail(f"Unknown {controls.TAG_OUTCOME} value '{outcome}'. Known: {', '.join(controls.OUTCOMES)}.")
    stage = values.get(controls.TAG_STAGE_SECONDS)
    if stage is not None:
        try:
            ok = settings.is_positive_number(float(stage))
        except ValueError:
            ok = False
        if not ok:
            _fail(f"{controls.TAG_STAGE_SECONDS} must be a positive, finite number, got '{stage}'.")
    for key in (controls.TAG_THROTTLE, controls.TAG_SERVER_ERRORS, controls.TAG_NOT_FOUND):
        raw = values.get(key)
        if raw is not None and (not raw.isdigit()):
            _fail(f"{key} must be a non-negative integer, got '{raw}'.")


def validate(spec: RequestSpec, params: dict[str, Any]) -> None:
    """Validate a create request against its table like SageMaker does; raise ``ValidationException``.

    :param spec: the request table.
    :param params: the parsed request parameters.
    """
    message = spec.server_message(params)
    if message:
        _fail(message)
    # The emulator's own tags (outcome, stage seconds, faults) are checked after SageMaker's rules.
    _validate_tags(params.get("Tags"))


def validate_create_request(params: dict[str, Any]) -> None:
    """Validate a CreateAutoMLJob request like SageMaker does; raise ``ValidationException``.

    :param params: the parsed request parameters.
    """
    validate(CREATE_AUTOML_JOB, params)


def validate_create_v2_request(params: dict[str, Any]) -> None:
    """Validate a CreateAutoMLJobV2 request (every problem type); raise ``ValidationException``.

    :param params: the parsed request parameters.
    """
    validate(CREATE_AUTOML_JOB_V2, params)

"""Checks of a raw SageMaker JSON request against botocore's input shape (malformed JSON, missing
required members, wrongly typed members), as SageMaker's front end answers them with a 400
ValidationException before any operation runs: clients that skip botocore's own validation get
the same answer from the emulator. The type rules and their wording are the request tables'
(:mod:`airflow_autopilot.core.fields.spec`)."""

from __future__ import annotations

import functools
import json
from typing import Any

from airflow_autopilot.core.fields.spec import BOTOCORE_KINDS, kind_constraint

#: At most this many problems are reported, as SageMaker lists at most a few.
MAX_REPORTED = 5


@functools.lru_cache(maxsize=1)
def _service_model() -> Any:
    import botocore.session

    return botocore.session.get_session().get_service_model("sagemaker")


def _member_path(path: str, name: str) -> str:
    # SageMaker names members in camelCase in its messages: 'autoMLJobName', 'inputDataConfig.member'.
    camel = name[:1].lower() + name[1:]
    return f"{path}.{camel}" if path else camel


def _type_problem(shape: Any, value: Any) -> str | None:
    kind = shape.type_name
    if kind == "timestamp":
        ok = isinstance(value, (int, float, str)) and not isinstance(value, bool)
        return None if ok else "Member must be a timestamp"
    return kind_constraint(BOTOCORE_KINDS[kind], value) if kind in BOTOCORE_KINDS else None


def _walk(shape: Any, value: Any, path: str, problems: list[str]) -> None:
    if len(problems) >= MAX_REPORTED:
        return
    if value is None:
        return
    problem = _type_problem(shape, value)
    if problem:
        shown = json.dumps(value)[:80]
        problems.append(f"Value '{shown}' at '{path}' failed to satisfy constraint: {problem}")
        return
    if shape.type_name == "structure":
        for name in shape.required_members:
            if value.get(name) is None:
                problems.append(
                    f"Value null at '{_member_path(path, name)}' failed to satisfy constraint: Member must not be null"
                )
        for name, member in shape.members.items():
            if name in value:
                _walk(member, value[name], _member_path(path, name), problems)
    elif shape.type_name == "list":
        for item in value:
            _walk(shape.member, item, f"{path}.member", problems)
    elif shape.type_name == "map":
        for item in value.values():
            _walk(shape.value, item, f"{path}.value", problems)


def request_problem(operation: str, body: str | bytes | None) -> str | None:
    """The ValidationException message for a request SageMaker would refuse on its shape, else ``None``.

    :param operation: the operation name (``CreateAutoMLJob``).
    :param body: the raw JSON request body.
    """
    model = _service_model()
    if operation not in model.operation_names:
        return None
    try:
        params = json.loads(body or "{}")
    except (ValueError, UnicodeDecodeError) as err:
        return f"1 validation error detected: the request body is not valid JSON ({err})."
    if not isinstance(params, dict):
        return "1 validation error detected: the request body must be a JSON object."
    shape = model.operation_model(operation).input_shape
    if shape is None:
        return None
    problems: list[str] = []
    _walk(shape, params, "", problems)
    if not problems:
        return None
    count = len(problems)
    return f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(problems)}"

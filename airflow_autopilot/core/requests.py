"""The Tags of the requests operators build: the ``tags`` parameter, ``extras["Tags"]`` and the
operator's own ownership tag, merged and counted against SageMaker's limit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_autopilot.core.fields.common import MAX_TAGS
from airflow_autopilot.core.fields.spec import deep_merge
from airflow_autopilot.core.naming import OWNER_TAG_KEY, RESERVED_TAG_PREFIX

__all__ = ["deep_merge", "merge_tags", "request_tags", "tags_as_list"]


def tags_as_list(tags: Any, field: str = "tags") -> tuple[list[dict[str, Any]] | None, list[str]]:
    """
    Accept ``{"key": "value"}`` or ``[{"Key": ..., "Value": ...}]``; report keys this package reserves.

    :param tags: the ``tags`` parameter (or ``extras["Tags"]``).
    :param field: the parameter, for messages.
    :return: the tags as a list (``None`` when not given or unusable) and the problems found.
    """
    if tags is None:
        return None, []
    if isinstance(tags, Mapping):
        tags = [{"Key": str(k), "Value": "" if v is None else str(v)} for k, v in tags.items()]
    if not isinstance(tags, list):
        return None, [f"{field}: must be a dict {{key: value}} or a list of {{'Key': ..., 'Value': ...}}"]
    reserved = [
        t["Key"]
        for t in tags
        if isinstance(t, Mapping)
        and isinstance(t.get("Key"), str)
        and t["Key"].startswith(RESERVED_TAG_PREFIX)
    ]
    errors = [
        f"{field}: the key {key!r} is reserved; the operator sets {RESERVED_TAG_PREFIX}* tags to mark its jobs"
        for key in reserved
    ]
    return list(tags), errors


def merge_tags(*groups: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """
    One tag list from several: a key appears once, with the value of the last group that sets it,
    at the place it first appeared. Entries without a usable key are kept for validation to report.

    :param groups: tag lists, later ones winning (the operator's own tags last).
    """
    merged: dict[str, dict[str, Any]] = {}
    unusable: list[dict[str, Any]] = []
    for group in groups:
        for tag in group or []:
            key = tag.get("Key") if isinstance(tag, Mapping) else None
            if isinstance(key, str):
                merged[key] = dict(tag)
            else:
                unusable.append(tag)
    return [*merged.values(), *unusable]


def request_tags(p: Mapping[str, Any], errors: list[str]) -> tuple[list[dict[str, str]], Any]:
    """
    A create request's Tags: the ``tags`` parameter's, then ``extras["Tags"]``, then the owner tag
    (ours must survive, as a retry finds its job by it), counted together against SageMaker's limit.

    :param p: the operator's parameters (``tags``, ``extras``, ``owner_tag``).
    :param errors: where a problem is appended.
    :return: the tags, and ``extras`` without its ``Tags``.
    """
    given_tags, tag_errors = tags_as_list(p.get("tags"))
    errors.extend(tag_errors)
    extras = p.get("extras")
    extra_tags = None
    if isinstance(extras, Mapping) and "Tags" in extras:
        extra_tags, tag_errors = tags_as_list(extras["Tags"], "extras['Tags']")
        errors.extend(tag_errors)
        extras = {k: v for k, v in extras.items() if k != "Tags"}
    ours = [p["owner_tag"]] if p.get("owner_tag") is not None else []
    users = merge_tags(given_tags, extra_tags)
    if ours and len(users) >= MAX_TAGS:
        errors.append(
            f"tags: {len(users)} tags given (tags and extras['Tags'] together); at most {MAX_TAGS - 1} "
            f"allowed: SageMaker takes at most {MAX_TAGS} and the operator adds its own {OWNER_TAG_KEY!r} tag"
        )
        users = users[: MAX_TAGS - 1]  # the count is reported above, once; nothing is sent anyway
    return merge_tags(users, ours), extras

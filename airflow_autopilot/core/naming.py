"""Deterministic AutoML job names and the ownership tag that lets a retry re-attach to its own job."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airflow_autopilot.core.validation import JOB_NAME_MAX_LENGTH

#: Tag key holding the owner token (a SHA-256 hex digest of the try-chain identity).
OWNER_TAG_KEY = "airflow-autopilot:owner"
#: Hex characters of the owner token used in a generated name (48 bits).
NAME_DIGEST_LENGTH = 12
#: Longest prefix a generated name can carry: ``<prefix>-<digest>`` fits in 32 characters.
MAX_NAME_PREFIX_LENGTH = JOB_NAME_MAX_LENGTH - NAME_DIGEST_LENGTH - 1
DEFAULT_NAME_PREFIX = "autopilot"


@dataclass(frozen=True)
class TryChain:
    """
    The identity of one task try chain: every retry of a task instance shares it.

    :param dag_id: the DAG id.
    :param task_id: the task id.
    :param run_id: the DAG run id.
    :param map_index: the map index (-1 for unmapped tasks).
    :param first_try_number: the try number that started the chain (1, or the first try after a clear).
    """

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    first_try_number: int = 1

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TryChain:
        """
        Read the identity from an Airflow task context.

        The chain's first try is ``max_tries - retries + 1``, the same rule Airflow's task runner
        uses to find the start of a reschedule chain: a retry keeps it, a clear moves it on.

        :param context: the context given to ``execute``.
        """
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        map_index = -1 if map_index is None else int(map_index)
        max_tries = getattr(ti, "max_tries", None)
        retries = getattr(getattr(ti, "task", None), "retries", None) or 0
        first_try = 1
        if isinstance(max_tries, int) and max_tries >= 0:
            first_try = max(1, max_tries - int(retries) + 1)
        return cls(
            dag_id=str(ti.dag_id),
            task_id=str(ti.task_id),
            run_id=str(ti.run_id),
            map_index=map_index,
            first_try_number=first_try,
        )

    @property
    def owner_token(self) -> str:
        """A SHA-256 hex digest of the identity: the value of the :data:`OWNER_TAG_KEY` tag."""
        payload = json.dumps(
            [self.dag_id, self.task_id, self.run_id, self.map_index, self.first_try_number],
            separators=(",", ":"),
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def owner_tag(self) -> dict[str, str]:
        """The tag that marks a job as created by this try chain."""
        return {"Key": OWNER_TAG_KEY, "Value": self.owner_token}


def name_prefix_from(text: str) -> str:
    """
    A name-safe prefix: lowercase letters, digits and single hyphens, at most
    :data:`MAX_NAME_PREFIX_LENGTH` characters, never empty.

    :param text: any text, typically the task id.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    slug = slug[:MAX_NAME_PREFIX_LENGTH].strip("-")
    return slug or DEFAULT_NAME_PREFIX


def deterministic_job_name(chain: TryChain, prefix: str | None = None) -> str:
    """
    ``<prefix>-<12 hex digits of the owner token>``: at most 32 characters and always a valid
    AutoMLJobName.

    :param chain: the try chain the job belongs to.
    :param prefix: readable start of the name; default derived from the task id. It is slugged and
        cut to :data:`MAX_NAME_PREFIX_LENGTH` characters.
    """
    readable = name_prefix_from(prefix if prefix is not None else chain.task_id)
    return f"{readable}-{chain.owner_token[:NAME_DIGEST_LENGTH]}"


def owner_token_of(tags: Sequence[Mapping[str, Any]] | None) -> str | None:
    """
    The owner token in a job's tags, or ``None`` when the job carries none.

    :param tags: ``[{"Key": ..., "Value": ...}]`` as ListTags returns them.
    """
    for tag in tags or []:
        if tag.get("Key") == OWNER_TAG_KEY:
            return str(tag.get("Value", ""))
    return None

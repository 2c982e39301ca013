"""Deterministic AutoML job names, the ownership tag that lets a retry re-attach to its own job, and
the rule that decides between re-attaching, starting the next job and refusing a job.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from airflow_autopilot.core.fields.common import JOB_NAME_MAX_LENGTH

#: Prefix of the tag keys this package sets; users cannot set them.
RESERVED_TAG_PREFIX = "airflow-autopilot:"
#: Tag key holding the owner token (a SHA-256 hex digest of the try-chain identity).
OWNER_TAG_KEY = RESERVED_TAG_PREFIX + "owner"
#: Tag key ``on_kill`` adds before it stops a job: the next try starts a new job instead of
#: re-attaching to the one this task stopped.
STOPPED_BY_TAG_KEY = RESERVED_TAG_PREFIX + "stopped-by"
#: Hex characters of the owner token used in a generated name (48 bits).
NAME_DIGEST_LENGTH = 12
#: Longest prefix a generated name can carry: ``<prefix>-<digest>`` fits in 32 characters.
MAX_NAME_PREFIX_LENGTH = JOB_NAME_MAX_LENGTH - NAME_DIGEST_LENGTH - 1
DEFAULT_NAME_PREFIX = "autopilot"
#: Most jobs one try chain walks through (each one stopped by this task's ``on_kill``).
MAX_GENERATIONS = 100
#: Job statuses in which a job our ``on_kill`` stopped is not worth re-attaching to.
_STOPPED_STATUSES = frozenset({"Stopping", "Stopped"})


def _utc_iso(value: Any) -> str:
    """``value`` as an ISO 8601 UTC string (naive datetimes are UTC); ``""`` for ``None``."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    return str(value)


@dataclass(frozen=True)
class TryChain:
    """
    The identity of one task try chain in one DAG run instance: every retry of the task instance
    shares it; a cleared task, or another run instance with the same run id, does not.

    :param dag_id: the DAG id.
    :param task_id: the task id.
    :param run_id: the DAG run id.
    :param map_index: the map index (-1 for unmapped tasks).
    :param run_started: when this DAG run instance started (ISO 8601 UTC). A run deleted and
        triggered again with the same run id, a rebuilt metadata database or a second Airflow
        environment in the account gives another value, so their tasks never share jobs.
    :param max_tries: the task instance's ``max_tries``. Airflow sets it when it creates the task
        instance and raises it when the task is cleared, and at no other time, so it names the try
        chain; unlike ``retries`` it does not follow edits of the DAG file between tries.
    """

    dag_id: str
    task_id: str
    run_id: str
    map_index: int = -1
    run_started: str = ""
    max_tries: int = 0

    @classmethod
    def from_context(cls, context: Mapping[str, Any]) -> TryChain:
        """
        Read the identity from an Airflow task context.

        The run instance is the DAG run's ``start_date``: Airflow sets it when the run starts and
        leaves it alone while the run goes on (clearing tasks of a running run, retries); it is
        reset only when a finished run is cleared, and a cleared task starts a new try chain anyway.
        ``run_after`` stands in when the context has no start date.

        :param context: the context given to ``execute``.
        """
        ti = context["ti"]
        map_index = getattr(ti, "map_index", -1)
        map_index = -1 if map_index is None else int(map_index)
        max_tries = getattr(ti, "max_tries", None)
        dag_run = context.get("dag_run")
        started = getattr(dag_run, "start_date", None) or getattr(dag_run, "run_after", None)
        return cls(
            dag_id=str(ti.dag_id),
            task_id=str(ti.task_id),
            run_id=str(ti.run_id),
            map_index=map_index,
            run_started=_utc_iso(started),
            max_tries=max_tries if isinstance(max_tries, int) and max_tries >= 0 else 0,
        )

    @property
    def owner_token(self) -> str:
        """A SHA-256 hex digest of the identity: the value of the :data:`OWNER_TAG_KEY` tag."""
        payload = json.dumps(
            [self.dag_id, self.task_id, self.run_id, self.map_index, self.run_started, self.max_tries],
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


def deterministic_job_name(chain: TryChain, prefix: str | None = None, generation: int = 0) -> str:
    """
    ``<prefix>-<12 hex digits>``: at most 32 characters and always a valid AutoMLJobName. The digits
    are the owner token's for the chain's first job; job ``generation`` n > 0 (the job started after
    this task's ``on_kill`` stopped job n - 1) hashes the token with n.

    :param chain: the try chain the job belongs to.
    :param prefix: readable start of the name; default derived from the task id. It is slugged and
        cut to :data:`MAX_NAME_PREFIX_LENGTH` characters.
    :param generation: which job of the chain (0 for the first).
    """
    readable = name_prefix_from(prefix if prefix is not None else chain.task_id)
    digest = chain.owner_token
    if generation:
        digest = hashlib.sha256(f"{digest}/{generation}".encode()).hexdigest()
    return f"{readable}-{digest[:NAME_DIGEST_LENGTH]}"


def fixed_job_name(job_name: str, generation: int = 0) -> str:
    """
    A user-given ``job_name`` for job ``generation``: the name itself for the first job, then
    ``<name>-r<n>`` (the name cut so that the result fits in 32 characters).

    :param job_name: the valid AutoMLJobName the user gave.
    :param generation: which job of the chain (0 for the first).
    """
    if not generation:
        return job_name
    suffix = f"-r{generation}"
    return job_name[: JOB_NAME_MAX_LENGTH - len(suffix)].rstrip("-") + suffix


def owner_token_of(tags: Sequence[Mapping[str, Any]] | None) -> str | None:
    """
    The owner token in a job's tags, or ``None`` when the job carries none.

    :param tags: ``[{"Key": ..., "Value": ...}]`` as ListTags returns them.
    """
    return tag_value(tags, OWNER_TAG_KEY)


def tag_value(tags: Sequence[Mapping[str, Any]] | None, key: str) -> str | None:
    """
    The value of tag ``key``, or ``None`` when absent.

    :param tags: ``[{"Key": ..., "Value": ...}]`` as ListTags returns them.
    :param key: the tag key.
    """
    for tag in tags or []:
        if tag.get("Key") == key:
            return str(tag.get("Value", ""))
    return None


#: What to do with a job found under this chain's name.
#: ``reattach``: it is this chain's: wait for it. ``reattach-unmark``: the same, after removing a
#: stop marker whose stop never took effect. ``next``: this task's ``on_kill`` stopped it: start the
#: chain's next job. ``conflict``: another chain's or nobody's job: refuse.
ExistingJobAction = Literal["reattach", "reattach-unmark", "next", "conflict"]


def existing_job_action(
    status: str | None, tags: Sequence[Mapping[str, Any]] | None, chain: TryChain
) -> ExistingJobAction:
    """
    Decide what a try does with the job it finds under its chain's name.

    A job this chain owns is re-attached to, unless this task's ``on_kill`` marked it
    (:data:`STOPPED_BY_TAG_KEY`) and it is Stopping or Stopped: a retry after our own kill (an
    ``execution_timeout``, a worker's SIGTERM) starts a new job, while a job someone else stopped
    still fails the wait. A marked job that is still running (the stop request never got through)
    or ended otherwise is re-attached to, and the marker goes.

    :param status: the job's AutoMLJobStatus.
    :param tags: the job's tags.
    :param chain: this try's chain.
    """
    if owner_token_of(tags) != chain.owner_token:
        return "conflict"
    if tag_value(tags, STOPPED_BY_TAG_KEY) is None:
        return "reattach"
    if status in _STOPPED_STATUSES:
        return "next"
    return "reattach-unmark"

"""Which finished Autopilot jobs an event-driven watcher reports, and the acknowledgement tag that makes
each report happen once (docs/events.md); Airflow-free, shared by the watcher trigger and the sensor."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from airflow_autopilot.core.clock import parse_timestamp
from airflow_autopilot.core.job import ALL_STATUSES, COMPLETED, TERMINAL_STATUSES, AutopilotJob

#: The tag key prefix of an acknowledgement: ``airflow-autopilot:reported:<watcher id>``.
ACK_TAG_PREFIX = "airflow-autopilot:reported:"
#: Seconds a claimant waits between writing its claim and reading it back (docs/events.md).
DEFAULT_SETTLE_SECONDS = 3.0
#: Seconds a claimant waits after yielding an event before it marks the job reported: the
#: triggerer stores a yielded event within a second or two (docs/events.md, Exactly once).
DEFAULT_CONFIRM_SECONDS = 10.0
#: Seconds after which a claim not yet marked reported is taken for the claim of a watcher run that
#: stopped before its event was known stored, and the job is reported again.
DEFAULT_LEASE_SECONDS = 300.0
#: The two states of an acknowledgement tag's value: ``<state>:<token>@<ISO 8601 time>``.
CLAIMED = "claimed"
REPORTED = "reported"
#: How far back a watcher that starts without a high-water mark looks for finished jobs.
DEFAULT_LOOKBACK_SECONDS = 3 * 24 * 3600.0
#: The problem types a filter may name (V1 tabular and V2 problem types).
PROBLEM_TYPES = frozenset(
    {
        "BinaryClassification",
        "MulticlassClassification",
        "Regression",
        "ImageClassification",
        "TextClassification",
        "TimeSeriesForecasting",
        "TextGeneration",
    }
)
#: The longest watcher id: an AWS tag key is at most 128 characters.
MAX_WATCHER_ID = 128 - len(ACK_TAG_PREFIX)
_WATCHER_ID = re.compile(r"[A-Za-z0-9_.:/=+\-@]+")


class EventFilterError(ValueError):
    """A watcher's filter is not valid (raised when the DAG file is parsed)."""


@dataclass(frozen=True)
class JobEventFilter:
    """
    Which finished jobs a watcher reports. Each given criterion must hold; an empty filter matches
    every job in the account, so it needs ``match_all=True``.

    :param name_prefix: the job name starts with this.
    :param name_pattern: the job name matches this regular expression (``re.fullmatch``).
    :param tags: the job carries every one of these tags (key and value).
    :param problem_types: the job's problem type (resolved or requested) is one of these.
    :param api_version: ``"v1"`` or ``"v2"``: only jobs created with that API; ``None``: both.
    :param statuses: the terminal statuses that count (default: Completed only).
    :param match_all: allow a filter without any criterion.
    """

    name_prefix: str | None = None
    name_pattern: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    problem_types: tuple[str, ...] = ()
    api_version: Literal["v1", "v2"] | None = None
    statuses: tuple[str, ...] = (COMPLETED,)
    match_all: bool = False

    @classmethod
    def build(
        cls,
        *,
        name_prefix: str | None = None,
        name_pattern: str | None = None,
        tags: Mapping[str, str] | None = None,
        problem_types: Collection[str] | str | None = None,
        api_version: str | None = None,
        statuses: Collection[str] | str | None = None,
        match_all: bool = False,
    ) -> JobEventFilter:
        """Normalise and check the arguments; raise :class:`EventFilterError` naming the parameter."""
        if isinstance(problem_types, str):
            problem_types = [problem_types]
        if isinstance(statuses, str):
            statuses = [statuses]
        built = cls(
            name_prefix=name_prefix or None,
            name_pattern=name_pattern or None,
            tags=dict(tags or {}),
            problem_types=tuple(sorted(set(problem_types or ()))),
            api_version=api_version,  # type: ignore[arg-type]
            statuses=tuple(sorted(set(statuses))) if statuses is not None else (COMPLETED,),
            match_all=bool(match_all),
        )
        built.check()
        return built

    def check(self) -> None:
        """Raise :class:`EventFilterError` for the first invalid parameter."""
        if self.name_prefix is not None and not isinstance(self.name_prefix, str):
            raise EventFilterError(f"name_prefix: must be a string, got {self.name_prefix!r}")
        if self.name_pattern is not None:
            try:
                re.compile(self.name_pattern)
            except (re.error, TypeError) as err:
                raise EventFilterError(
                    f"name_pattern: {self.name_pattern!r} is not a valid regular expression ({err})"
                ) from None
        for key, value in self.tags.items():
            if not isinstance(key, str) or not isinstance(value, str) or not key:
                raise EventFilterError(
                    f"tags: keys and values must be non-empty strings, got {key!r}: {value!r}"
                )
        unknown = sorted(set(self.problem_types) - PROBLEM_TYPES)
        if unknown:
            raise EventFilterError(
                f"problem_types: unknown problem type(s) {unknown}; known: {sorted(PROBLEM_TYPES)}"
            )
        if self.api_version not in (None, "v1", "v2"):
            raise EventFilterError(f"api_version: must be 'v1', 'v2' or None, got {self.api_version!r}")
        if not self.statuses:
            raise EventFilterError(f"statuses: give at least one of {sorted(TERMINAL_STATUSES)}")
        wrong = sorted(set(self.statuses) - TERMINAL_STATUSES)
        if wrong:
            kind = "not terminal" if set(wrong) <= ALL_STATUSES else "unknown"
            raise EventFilterError(
                f"statuses: {wrong} {kind}; a watcher reports finished jobs, give any of "
                f"{sorted(TERMINAL_STATUSES)}"
            )
        narrowing = (self.name_prefix, self.name_pattern, self.tags, self.problem_types, self.api_version)
        if not any(narrowing) and not self.match_all:
            raise EventFilterError(
                "name_prefix, name_pattern, tags, problem_types, api_version: all empty, so every "
                "finished job in the account would be reported; give a filter or match_all=True"
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON-safe arguments (``build(**to_dict())`` gives an equal filter)."""
        return {
            "name_prefix": self.name_prefix,
            "name_pattern": self.name_pattern,
            "tags": dict(self.tags),
            "problem_types": list(self.problem_types),
            "api_version": self.api_version,
            "statuses": list(self.statuses),
            "match_all": self.match_all,
        }

    def default_watcher_id(self) -> str:
        """A stable id derived from the filter: the same filter, the same acknowledgements."""
        digest = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()
        return f"f-{digest[:16]}"

    # --- matching ---------------------------------------------------------------------------------
    def matches_summary(self, row: Mapping[str, Any]) -> bool:
        """What a ListAutoMLJobs summary can tell: a counted status and the name."""
        if str(row.get("AutoMLJobStatus", "")) not in self.statuses:
            return False
        name = str(row.get("AutoMLJobName", ""))
        if self.name_prefix is not None and not name.startswith(self.name_prefix):
            return False
        return self.name_pattern is None or re.fullmatch(self.name_pattern, name) is not None

    def matches_job(self, job: AutopilotJob, tags: Mapping[str, str]) -> bool:
        """The rest, from the describe and the job's tags."""
        if job.status not in self.statuses:
            return False
        if self.api_version is not None and job.api_version != self.api_version:
            return False
        if self.problem_types and (job.problem_type or job.v2_problem_type) not in self.problem_types:
            return False
        return all(tags.get(k) == v for k, v in self.tags.items())


def check_watcher_id(watcher_id: str) -> str:
    """
    Raise :class:`EventFilterError` unless ``watcher_id`` fits in a tag key.

    :param watcher_id: the id.
    """
    if (
        not isinstance(watcher_id, str)
        or not _WATCHER_ID.fullmatch(watcher_id)
        or len(watcher_id) > MAX_WATCHER_ID
    ):
        raise EventFilterError(
            f"watcher_id: {watcher_id!r} must be 1 to {MAX_WATCHER_ID} characters of letters, digits "
            "and _.:/=+-@ (it becomes part of a tag key)"
        )
    return watcher_id


def ack_tag_key(watcher_id: str) -> str:
    """The tag key that marks a job reported by ``watcher_id``."""
    return ACK_TAG_PREFIX + watcher_id


def tag_dict(tags: Iterable[Mapping[str, str]]) -> dict[str, str]:
    """ListTags' ``Tags`` as a dict; for a key given twice, the last one wins (moto appends on
    AddTags where SageMaker overwrites: the last written value is what both mean)."""
    return {str(t["Key"]): str(t.get("Value", "")) for t in tags}


@dataclass(frozen=True)
class Ack:
    """
    An acknowledgement tag's value: a job ``claimed`` by a watcher run about to report it, or
    ``reported`` once that run knows its event stored.

    :param state: :data:`CLAIMED` or :data:`REPORTED`.
    :param token: the watcher run that wrote it.
    :param at: when it was written (``None`` if the value carries no readable time).
    """

    state: str
    token: str | None
    at: datetime | None

    @classmethod
    def parse(cls, value: str | None) -> Ack | None:
        """The state in a tag's value; ``None`` for no tag. A value in no known form (written by
        hand, say) counts as reported: the tag's presence is what keeps a job from being reported
        again, and deleting it is how to ask for that."""
        if value is None:
            return None
        state, _, rest = value.partition(":")
        if state not in (CLAIMED, REPORTED) or not rest:
            return cls(REPORTED, None, None)
        token, _, when = rest.partition("@")
        try:
            at = parse_timestamp(when) if when else None
        except ValueError:
            at = None
        return cls(state, token or None, at)


def ack_value(state: str, token: str, at: Any) -> str:
    """
    An acknowledgement tag's value (``<state>:<token>@<ISO 8601 time>``).

    :param state: :data:`CLAIMED` or :data:`REPORTED`.
    :param token: the watcher run that writes it.
    :param at: when (a datetime or an ISO 8601 string).
    """
    when = parse_timestamp(at)
    return f"{state}:{token}@{when.isoformat() if when else ''}"


def claim_value(token: str, claimed_at: Any) -> str:
    """The value of a claim: this watcher run (``token``) is about to report the job."""
    return ack_value(CLAIMED, token, claimed_at)


def reported_value(token: str, reported_at: Any) -> str:
    """The value of a report known stored: the job is never reported again by this watcher id."""
    return ack_value(REPORTED, token, reported_at)


def claim_owner(value: str | None) -> str | None:
    """The watcher run (token) that wrote an acknowledgement tag's value."""
    ack = Ack.parse(value)
    return ack.token if ack else None


@dataclass(frozen=True)
class Decision:
    """
    What a watcher run does with a finished, matching job, given its acknowledgement tag.

    :param action: ``"claim"`` (claim it, then report it), ``"skip"`` (reported already) or
        ``"wait"`` (another run's claim, still within its lease: look again at ``until``).
    :param redelivery: the claim replaces one whose run stopped before its event was known stored:
        that event may have been stored all the same (at least once).
    :param until: for ``"wait"``, when the other run's lease ends.
    """

    action: Literal["claim", "skip", "wait"]
    redelivery: bool = False
    until: datetime | None = None


def decide(value: str | None, now: datetime, lease_seconds: float, *, token: str | None = None) -> Decision:
    """
    The rule of docs/events.md, Exactly once: no tag, claim; reported, skip; claimed, wait for the
    claimant until its lease ends, then claim it again (a redelivery).

    :param value: the acknowledgement tag's value, ``None`` when the job has none.
    :param now: the current time.
    :param lease_seconds: how long a claim may stay unconfirmed.
    :param token: the deciding run's own token: its own claim (left by a transient error before the
        read-back, so never reported) is claimed again at once, and is no redelivery.
    """
    ack = Ack.parse(value)
    if ack is None:
        return Decision("claim")
    if ack.state == REPORTED:
        return Decision("skip")
    if token is not None and ack.token == token:
        return Decision("claim")
    ends = ack.at + timedelta(seconds=lease_seconds) if ack.at is not None else now
    if now >= ends:
        return Decision("claim", redelivery=True)
    return Decision("wait", until=ends)


def job_event(job: AutopilotJob, watcher_id: str, *, redelivery: bool = False) -> dict[str, Any]:
    """
    The event's payload for a finished job (JSON-safe; the asset event's ``extra["payload"]``).

    :param job: the job's describe.
    :param watcher_id: the watcher that reports it.
    :param redelivery: an earlier report of the job may have been stored too (:class:`Decision`).
    """
    best = job.best_candidate or {}
    metric = best.get("FinalAutoMLJobObjectiveMetric") or {}

    def iso(value: Any) -> str | None:
        parsed = parse_timestamp(value)
        return parsed.isoformat() if parsed else None

    return {
        "watcher_id": watcher_id,
        "job_name": job.name,
        "job_arn": job.arn,
        "status": job.status,
        "secondary_status": job.secondary_status,
        "api_version": job.api_version,
        "problem_type": job.problem_type or job.v2_problem_type,
        "end_time": iso(job.raw.get("EndTime")),
        "failure_reason": job.failure_reason,
        "best_candidate": best.get("CandidateName"),
        "objective_metric": metric.get("MetricName") or job.objective_metric,
        "objective_value": metric.get("Value"),
        "redelivery": redelivery,
    }


def finished_order(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Summaries in the order their jobs finished (EndTime, then LastModifiedTime, then name)."""

    def key(row: Mapping[str, Any]) -> tuple[str, str, str]:
        end = parse_timestamp(row.get("EndTime") or row.get("LastModifiedTime"))
        modified = parse_timestamp(row.get("LastModifiedTime"))
        return (
            end.isoformat() if end else "",
            modified.isoformat() if modified else "",
            str(row.get("AutoMLJobName")),
        )

    return sorted(rows, key=key)


#: EventBridge's detail-type of SageMaker's model package events.
MODEL_PACKAGE_STATE_CHANGE = "SageMaker Model Package State Change"


def approved_versions_pattern(group_names: Collection[str] | None = None) -> dict[str, Any]:
    """
    The EventBridge rule pattern for versions that become Approved (in the given Model Package
    Groups, or any): an approval by a person in Studio, the CLI or an SDK alike.

    :param group_names: the groups; ``None``: every group.
    """
    detail: dict[str, Any] = {"ModelApprovalStatus": ["Approved"]}
    if group_names:
        detail["ModelPackageGroupName"] = sorted(group_names)
    return {"source": ["aws.sagemaker"], "detail-type": [MODEL_PACKAGE_STATE_CHANGE], "detail": detail}


def approved_versions(messages: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """
    The approved versions in SQS messages that carry EventBridge model package events (the
    ``message_batch`` of the Amazon provider's SQS trigger), oldest first, each once by ARN:
    ``{"model_package_arn", "model_package_group", "model_package_version", "approval_status",
    "event_time"}``.

    :param messages: SQS messages (``Body`` is the EventBridge event as JSON).
    """
    found: dict[str, dict[str, Any]] = {}
    for message in messages:
        try:
            event = json.loads(message.get("Body") or "{}")
        except ValueError:
            continue
        detail = event.get("detail") or {}
        if (
            event.get("detail-type") != MODEL_PACKAGE_STATE_CHANGE
            or detail.get("ModelApprovalStatus") != "Approved"
        ):
            continue
        arn = detail.get("ModelPackageArn")
        if arn and arn not in found:
            found[arn] = {
                "model_package_arn": arn,
                "model_package_group": detail.get("ModelPackageGroupName"),
                "model_package_version": detail.get("ModelPackageVersion"),
                "approval_status": detail.get("ModelApprovalStatus"),
                "event_time": event.get("time"),
            }
    return list(found.values())


def create_approval_route(
    sqs: Any, events: Any, *, queue_name: str, rule_name: str, group_names: Collection[str] | None = None
) -> str:
    """
    Route approvals to an SQS queue (idempotent): the queue, a policy that lets EventBridge send to
    it, and a rule on the default event bus with :func:`approved_versions_pattern`. Returns the
    queue URL (what the deploy DAG's ``SqsQueueWatcher`` reads).

    :param sqs: a boto3 SQS client.
    :param events: a boto3 EventBridge client.
    :param queue_name: the queue to create or reuse.
    :param rule_name: the rule to create or update.
    :param group_names: the Model Package Groups whose approvals count; ``None``: all.
    """
    url = str(sqs.create_queue(QueueName=queue_name)["QueueUrl"])
    queue_arn = str(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    )
    rule_arn = str(
        events.put_rule(
            Name=rule_name, EventPattern=json.dumps(approved_versions_pattern(group_names)), State="ENABLED"
        )["RuleArn"]
    )
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "EventBridgeSendsApprovals",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    events.put_targets(Rule=rule_name, Targets=[{"Id": "approvals-queue", "Arn": queue_arn}])
    return url

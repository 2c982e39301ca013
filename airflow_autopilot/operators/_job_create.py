"""The base of the create operators: create (or, on retry, re-attach to) an Autopilot job described
by a request table, stop it on kill, optionally wait, and return its name and ARN."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf

from airflow_autopilot.core.lineage_names import JOB_OUTPUT_ALIAS
from airflow_autopilot.core.redaction import describe_error, scrub
from airflow_autopilot.exceptions import AutopilotJobNameConflict
from airflow_autopilot.links import AutopilotJobLink
from airflow_autopilot.operators._tables import RequestTablesMixin
from airflow_autopilot.operators.base import AWS_TEMPLATE_FIELDS, AutopilotBaseOperator, resolve_event
from airflow_autopilot.operators.lineage import AutopilotLineageMixin

# The domain core is imported where a task runs (the request tables, which DAG files need for the
# parameters, are plain data).
if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_autopilot.core.fields.spec import RequestSpec
    from airflow_autopilot.core.job import AutopilotJob, WaitCriteria
    from airflow_autopilot.core.lineage import Channel, TaskLineage
    from airflow_autopilot.core.naming import TryChain

#: The ``:param:`` lines of the parameters every create operator has besides its table's.
COMMON_PARAM_DOCS = """    :param job_name_prefix: readable start of a generated name (default: the task id), slugged and
        cut to 19 characters. Not allowed together with ``job_name``.
    :param wait_for_completion: wait until the job succeeds or fails (default True).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between status checks while waiting.
    :param max_wait_seconds: give up waiting after this long (the job keeps running); None = no limit.
    :param emit_asset_events: add the AssetAlias ``autopilot-job-output`` to ``outlets`` and, once
        the job is created (or has ended, when waiting), an event for the asset ``s3_output_path``
        with ``job_name``, ``job_arn``, ``s3_output_path``, ``problem_type`` and ``objective_metric``
        in its extra (docs/lineage.md).

    The connection parameters (``aws_conn_id``, ``region_name``, ``verify``, ``botocore_config``)
    are :class:`~airflow_autopilot.operators.AutopilotBaseOperator`'s.
"""


class AutopilotCreateJobBase(RequestTablesMixin, AutopilotLineageMixin, AutopilotBaseOperator):
    """
    What the create operators share: naming and re-attaching on retries, ``on_kill`` stop, the
    return value ``{"AutoMLJobName", "AutoMLJobArn"}`` and waiting. A subclass names its request
    table (:attr:`request_tables`, over one table) and gets from it its request parameters
    (:class:`~airflow_autopilot.operators._tables.RequestTablesMixin`); every one is optional in the
    signature, as the request is validated in ``execute``.
    """

    template_fields: Sequence[str] = (*AWS_TEMPLATE_FIELDS, "job_name_prefix")
    other_template_fields = ("job_name_prefix",)
    more_param_docs = COMMON_PARAM_DOCS
    operator_extra_links = (AutopilotJobLink(),)
    ui_color = "#c6e0b4"
    asset_alias_name = JOB_OUTPUT_ALIAS
    # Set from the table's parameters in __init__ (declared for the type checker).
    job_name: Any
    s3_input_uri: Any
    validation_s3_input_uri: Any
    input_data_config: Any
    content_type: Any
    compression_type: Any
    s3_data_type: Any
    s3_output_path: Any
    objective_metric: Any

    def __init__(
        self,
        *,
        job_name_prefix: str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 60.0,
        max_wait_seconds: float | None = None,
        emit_asset_events: bool = False,
        **kwargs: Any,
    ) -> None:
        table = self.take_request_parameters(kwargs)
        super().__init__(**kwargs)
        self.init_lineage(emit_asset_events)
        self.assign_request_parameters(table)
        self.job_name_prefix = job_name_prefix
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_wait_seconds = max_wait_seconds
        # Set in execute: the job this try is about, and the value of the tag on_kill leaves on it.
        self.resolved_job_name: str | None = None
        self.stop_marker = "on_kill"

    @property
    def request_spec(self) -> RequestSpec:
        """The create request's table (the one of :attr:`request_tables`)."""
        return self.request_tables.specs[0]

    @property
    def criteria(self) -> WaitCriteria:
        """What ends the wait: SageMaker's own success and failure statuses (the defaults)."""
        from airflow_autopilot.core.job import WaitCriteria

        return WaitCriteria()

    # --- request ----------------------------------------------------------------------------------
    def resolve_job_name(self, chain: TryChain, errors: list[str]) -> str | None:
        """The given ``job_name``, or the deterministic name of this try chain."""
        from airflow_autopilot.core.naming import MAX_NAME_PREFIX_LENGTH, deterministic_job_name
        from airflow_autopilot.core.validation import empty_rendering_error

        if self.job_name is not None:
            if self.job_name_prefix is not None:
                errors.append("job_name_prefix: give job_name or job_name_prefix, not both")
            return self.job_name
        prefix = self.job_name_prefix
        empty = empty_rendering_error(prefix, "job_name_prefix")
        if empty:
            errors.append(empty)
            return None
        if prefix is not None and (not isinstance(prefix, str) or len(prefix) > MAX_NAME_PREFIX_LENGTH):
            errors.append(
                f"job_name_prefix: {prefix!r} must be a string of at most {MAX_NAME_PREFIX_LENGTH} "
                "characters (a 12-character hash follows it)"
            )
            return None
        return deterministic_job_name(chain, prefix)

    def build_request(self, chain: TryChain) -> tuple[dict[str, Any], list[str]]:
        """
        The validated create request for this try chain, with the ownership tag, from the table.

        :param chain: the task's try chain.
        :return: the request and the top-level ``extras`` fields passed through unchecked.
        :raises AutopilotValidationError: listing every problem; nothing is sent to AWS.
        """
        from airflow_autopilot.core.validation import seconds_errors

        spec = self.request_spec
        errors: list[str] = []
        # The wait's settings too: a bad one must not surface only after the job was created.
        from airflow_autopilot.core.waits.pace import poll_interval_errors  # the rule is in core

        errors += poll_interval_errors(self.poll_interval)
        errors += seconds_errors(self.max_wait_seconds, "max_wait_seconds", allow_none=True)
        params = self.request_parameters()
        params["job_name"] = self.resolve_job_name(chain, errors)
        params["owner_tag"] = chain.owner_tag
        request, build_errors = spec.build(params)
        given = frozenset(name for name, value in params.items() if value is not None)
        passthrough = spec.check(request, errors + build_errors, given)
        return request, passthrough

    # --- create or re-attach ----------------------------------------------------------------------
    def find_job(self, job_name: str) -> AutopilotJob | None:
        """The job with this name, or ``None`` when SageMaker has none."""
        from airflow_autopilot.exceptions import AutopilotJobNotFound

        try:
            return self.hook.get_job(job_name)
        except AutopilotJobNotFound:
            return None

    def job_tags(self, job: AutopilotJob) -> list[dict[str, Any]]:
        """ListTags of ``job`` (every page)."""
        tags: list[dict[str, Any]] = []
        if job.arn:
            paginator = self.hook.client.get_paginator("list_tags")
            for page in paginator.paginate(ResourceArn=job.arn):
                tags.extend(page.get("Tags", []))
        return tags

    def conflict(self, job: AutopilotJob, tags: list[dict[str, Any]]) -> AutopilotJobNameConflict:
        """The error for a job under our name that this try chain did not create."""
        from airflow_autopilot.core.naming import OWNER_TAG_KEY, owner_token_of

        found = owner_token_of(tags)
        return AutopilotJobNameConflict(
            f"Autopilot job name {job.name!r} is taken by a job this task try did not create "
            f"(it is {job.describe_state()}, created {job.creation_time}; its {OWNER_TAG_KEY!r} tag is "
            f"{'absent' if found is None else 'for another DAG run, task or try chain'}). "
            "Choose another job_name, or leave job_name unset to get a generated name per run. "
            "A fixed job_name cannot be reused after the task is cleared, nor by a DAG run deleted and "
            "triggered again with the same run id: each starts a new try chain."
        )

    def job_name_for(self, first_name: str, chain: TryChain, generation: int) -> str:
        """The name of the chain's job ``generation`` (``first_name`` for generation 0)."""
        from airflow_autopilot.core.naming import deterministic_job_name, fixed_job_name

        if not generation:
            return first_name
        if self.job_name is not None:
            return fixed_job_name(first_name, generation)
        return deterministic_job_name(chain, self.job_name_prefix, generation)

    def create_or_reattach(
        self, request: dict[str, Any], passthrough: list[str], chain: TryChain
    ) -> tuple[str, str]:
        """
        Create the job, or find the one an earlier try of this chain created; return its name and ARN.

        Under the chain's name there may be a job this task's ``on_kill`` stopped: then the chain's
        next name is tried (:func:`~airflow_autopilot.core.naming.existing_job_action` decides).

        :param request: the validated request (its AutoMLJobName is the chain's first name).
        :param passthrough: top-level fields not known to the validation module (from ``extras``).
        :param chain: this task's try chain.
        """
        from airflow_autopilot.core.naming import MAX_GENERATIONS, STOPPED_BY_TAG_KEY, existing_job_action

        first_name = request["AutoMLJobName"]
        for generation in range(MAX_GENERATIONS):
            name = self.job_name_for(first_name, chain, generation)
            self.resolved_job_name = name  # on_kill stops it, even if the kill comes mid-create
            existing = self.find_job(name)
            if existing is None:
                created = self.create(dict(request, AutoMLJobName=name), passthrough)
                if created is not None:
                    return name, created
                existing = self.find_job(name)
                if existing is None:
                    raise AutopilotJobNameConflict(
                        f"Autopilot job {name!r} is in use but cannot be described"
                    )
            tags = self.job_tags(existing)
            action = existing_job_action(existing.status, tags, chain)
            if action == "conflict":
                raise self.conflict(existing, tags)
            if action == "next":
                self.log.info(
                    "Autopilot job %s was stopped by an earlier try of this task (on_kill) and is %s; "
                    "starting a new job %s",
                    name,
                    existing.describe_state(),
                    self.job_name_for(first_name, chain, generation + 1),
                )
                continue
            if action == "reattach-unmark" and existing.arn:
                # on_kill marked it, but the stop never took effect: the job is ours to wait for.
                self.hook.client.delete_tags(ResourceArn=existing.arn, TagKeys=[STOPPED_BY_TAG_KEY])
            self.log.info(
                "Re-attaching to Autopilot job %s, created by an earlier try of this task; it is %s",
                name,
                existing.describe_state(),
            )
            return name, existing.arn or ""
        raise AutopilotJobNameConflict(
            f"This task stopped {MAX_GENERATIONS} Autopilot jobs in one try chain ({first_name!r} ...); "
            "clear the task to start a new chain"
        )

    def create(self, request: dict[str, Any], passthrough: list[str]) -> str | None:
        """
        CreateAutoMLJob; the ARN, or ``None`` when SageMaker answers ResourceInUse (a parallel try,
        or a create AWS performed before a retried connection error, got there first).
        """
        from botocore.exceptions import ClientError

        from airflow_autopilot.core.errors import error_code

        name = request["AutoMLJobName"]
        try:
            if passthrough:
                self.log.info(
                    "Passing extras field(s) %s to %s unchecked", passthrough, self.create_operation
                )
            arn = self.submit(request, checked=not passthrough)
        except ClientError as err:
            if error_code(err) != "ResourceInUse":
                raise
            self.log.info("%s answered ResourceInUse for %s; checking its owner", self.create_operation, name)
            return None
        self.log.info("Created Autopilot job %s (%s)", name, arn)
        return str(arn)

    @property
    def create_operation(self) -> str:
        """The create call, for messages (``CreateAutoMLJob``)."""
        return self.request_spec.operation

    def submit(self, request: dict[str, Any], *, checked: bool) -> str:
        """
        Send the create request; return the ARN.

        :param request: the validated request.
        :param checked: every field is known to the table (else send it as it is, unchecked).
        """
        method = (
            "create_auto_ml_job_v2" if self.request_spec.operation.endswith("V2") else "create_auto_ml_job"
        )
        if checked:
            return str(getattr(self.hook, method)(request))
        return str(getattr(self.hook.client, method)(**request)["AutoMLJobArn"])

    # --- execute ----------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autopilot.core.clock import default_clock
        from airflow_autopilot.core.naming import TryChain

        chain = TryChain.from_context(context)
        request, passthrough = self.build_request(chain)
        self.stop_marker = f"on_kill of try {getattr(context['ti'], 'try_number', '?')}"
        started_at = default_clock().now()  # the clock the wait's grace period is read on
        job_name, arn = self.create_or_reattach(request, passthrough, chain)
        AutopilotJobLink.persist(
            context=context,
            operator=self,
            job_name=job_name,
            region_name=self.hook.conn_region_name,
            partition=self.hook.conn_partition,
        )
        result = {"AutoMLJobName": job_name, "AutoMLJobArn": arn}
        if not self.wait_for_completion:
            return self.finish(context, result, request)
        if self.deferrable:
            self.defer_until_done(job_name, arn, started_at)
        else:
            self.hook.wait_for_job(job_name, self.criteria, **self.wait_settings(started_at))
        return self.finish(context, result, request)

    def wait_settings(self, started_at: datetime) -> dict[str, Any]:
        """How this task waits for its job, in the terms of the hook's wait and of ``JobWait``.

        :param started_at: when this try started creating the job.
        """
        return {
            "poll_interval": self.poll_interval,
            "timeout": self.max_wait_seconds,
            "log": self.log,
            "created_at": started_at,
        }

    def defer_until_done(self, job_name: str, arn: str, started_at: datetime) -> None:
        """Check the job once; return when it already succeeded, else defer to the trigger."""
        from airflow_autopilot.core.waits.job import JobWait

        wait = JobWait(job_name, self.criteria, **self.wait_settings(started_at))
        job = self.check_job_once(wait)
        if job is not None:
            self.log.info("Autopilot job %s is already %s", job_name, job.describe_state())
            return
        self.defer_job_wait(
            wait, timeout=self.max_wait_seconds, kwargs={"job_name": job_name, "job_arn": arn}
        )

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any] | None = None,
        job_name: str | None = None,
        job_arn: str | None = None,
    ) -> dict[str, Any]:
        """
        Resume after the trigger: the XCom value on a success event, else raise.

        :param event: the trigger event.
        :param job_name: the job name (from ``defer`` kwargs).
        :param job_arn: the job ARN (from ``defer`` kwargs).
        """

        summary = resolve_event(event)
        result = {
            "AutoMLJobName": job_name or summary.get("AutoMLJobName"),
            "AutoMLJobArn": job_arn or summary.get("AutoMLJobArn"),
        }
        return self.finish(context, result, None)

    # --- lineage ----------------------------------------------------------------------------------
    def finish(
        self, context: Context, result: dict[str, Any], request: dict[str, Any] | None
    ) -> dict[str, Any]:
        """
        Record the job's lineage (and its asset event) and return the XCom value.

        :param context: the task context.
        :param result: ``{"AutoMLJobName", "AutoMLJobArn"}``.
        :param request: the CreateAutoMLJob request; ``None`` after a deferral (the rendered fields tell).
        """
        from airflow_autopilot.core.lineage import without_none
        from airflow_autopilot.core.xcom import to_json_safe

        lineage = self.job_lineage(request)
        if lineage is not None:
            output = lineage.outputs[0].uri if lineage.outputs else None
            objective = (request or {}).get("AutoMLJobObjective") or {}
            lineage.asset_uri = output
            lineage.extra = without_none(
                {
                    "job_name": result.get("AutoMLJobName"),
                    "job_arn": result.get("AutoMLJobArn") or None,
                    "s3_output_path": output,
                    "problem_type": (request or {}).get("ProblemType", getattr(self, "problem_type", None)),
                    "objective_metric": objective.get("MetricName", self.objective_metric),
                }
            )
            self.record_lineage(context, lineage)
        return to_json_safe(result)

    def job_lineage(self, request: dict[str, Any] | None = None) -> TaskLineage | None:
        """
        The job's channels (inputs) and ``S3OutputPath`` (output), from ``request`` or else the
        rendered fields; ``None`` when they name no S3 location.

        :param request: the CreateAutoMLJob request, when built.
        """
        from airflow_autopilot.core.lineage import LineageDataset, TaskLineage, request_channels, s3_uri

        try:
            if request is not None:
                channels = request_channels(request)
                output = (request.get("OutputDataConfig") or {}).get("S3OutputPath")
            else:
                channels = self.rendered_channels()
                output = self.s3_output_path
            outputs = [LineageDataset(s3_uri(output))] if isinstance(output, str) else []
            inputs = [LineageDataset(channel.uri) for channel in channels]
        except ValueError:  # a field that does not name an S3 location: validation reports it
            return None
        if not inputs and not outputs:
            return None
        return TaskLineage(inputs=inputs, outputs=outputs)

    def rendered_channels(self) -> list[Channel]:
        """The channels the rendered fields describe (``input_data_config``, or the two URIs)."""
        from airflow_autopilot.core.lineage import Channel, request_channels, s3_uri

        if self.input_data_config is not None:
            return request_channels({"InputDataConfig": self.input_data_config})
        entries = [
            ("training", self.s3_input_uri),
            ("validation", self.validation_s3_input_uri),
        ]
        return [
            Channel(
                uri=s3_uri(uri),
                channel_type=kind,
                s3_data_type=self.s3_data_type or "S3Prefix",
                content_type=self.content_type,
                target=getattr(self, "target_attribute_name", None),
                compression=self.compression_type,
            )
            for kind, uri in entries
            if isinstance(uri, str) and uri.startswith("s3://")
        ]

    def planned_lineage(self) -> TaskLineage | None:
        return self.job_lineage()

    def completed_lineage(self) -> TaskLineage | None:
        """The job's lineage, with each CSV channel's columns read from its first file's header."""
        from airflow_autopilot.core.lineage import LineageDataset, TaskLineage

        lineage = self.recorded_lineage or self.job_lineage()
        if lineage is None:
            return None
        kinds = {channel.uri: channel for channel in self.rendered_channels()}
        inputs = []
        for item in lineage.inputs:
            channel = kinds.get(item.uri)
            fields = self.channel_columns(channel) if channel is not None and channel.is_csv_prefix else None
            inputs.append(LineageDataset(item.uri, tuple(fields) if fields else None))
        return TaskLineage(
            inputs=inputs, outputs=lineage.outputs, asset_uri=lineage.asset_uri, extra=lineage.extra
        )

    def channel_columns(self, channel: Channel) -> list[str] | None:
        """
        The columns of a CSV channel: the header of its first object (one listing and one ranged
        read); ``None`` when it cannot be read or has no header.

        :param channel: the channel.
        """
        from airflow_autopilot.core.lineage import csv_header, split_s3_uri

        try:
            bucket, key = split_s3_uri(channel.uri)
            s3 = self.hook.s3
            listing = s3.list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=50)
            objects = [item["Key"] for item in listing.get("Contents", []) if not item["Key"].endswith("/")]
            if not objects:
                return None
            body = s3.get_object(Bucket=bucket, Key=objects[0], Range="bytes=0-65535")["Body"].read()
        except Exception as err:  # lineage must never fail the task
            self.log.info("No schema for %s: %s", channel.uri, describe_error(err))
            return None
        return csv_header(body)

    def on_kill(self) -> None:
        """
        Stop the job this try created or re-attached to, unless it has already ended. The job is
        first tagged ``airflow-autopilot:stopped-by``, so the next try starts a new job rather than
        re-attaching to the one stopped here (a job stopped by anyone else still fails the wait).
        """
        from airflow_autopilot.core.naming import STOPPED_BY_TAG_KEY

        name = self.resolved_job_name
        if not name:
            return
        try:
            if self.hook.stop_auto_ml_job(
                name, tags=[{"Key": STOPPED_BY_TAG_KEY, "Value": self.stop_marker}]
            ):
                self.log.info("Task killed: requested stop of Autopilot job %s", name)
        except Exception as err:
            scrub(err)  # before its traceback is logged
            self.log.exception("Task killed, but stopping Autopilot job %s failed", name)

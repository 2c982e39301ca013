"""AutopilotBatchTransformOperator: score S3 data with an Autopilot candidate in a SageMaker batch transform job."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import conf

from airflow_autopilot.core.fields.model import MODEL, MODEL_DEFAULTS
from airflow_autopilot.core.fields.spec import RequestTables
from airflow_autopilot.core.fields.transform import TRANSFORM_DEFAULTS, TRANSFORM_JOB
from airflow_autopilot.core.lineage_names import BATCH_TRANSFORM_OUTPUT_ALIAS
from airflow_autopilot.core.redaction import scrub
from airflow_autopilot.exceptions import AutopilotError, AutopilotJobNameConflict
from airflow_autopilot.operators._tables import RequestTablesMixin
from airflow_autopilot.operators.base import (
    AutopilotBaseOperator,
    resolve_resource_event,
)
from airflow_autopilot.operators.lineage import AutopilotLineageMixin

# The domain core (naming, promotion rules, the transform request and wait) is imported where the
# task runs: DAG files import this module, and parsing them needs none of it. The request tables
# (core.fields, standard library only) give the operator's request parameters at class creation.
if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_autopilot.core.lineage import TaskLineage
    from airflow_autopilot.core.naming import TryChain

#: The operator's request tables (CreateTransformJob and CreateModel) and defaults.
TRANSFORM_TABLES = RequestTables(TRANSFORM_JOB, MODEL, defaults={**MODEL_DEFAULTS, **TRANSFORM_DEFAULTS})


class AutopilotBatchTransformOperator(RequestTablesMixin, AutopilotLineageMixin, AutopilotBaseOperator):
    """
    Score the data under an S3 prefix with an Autopilot candidate, as SageMaker does for Autopilot
    models: a model holding every inference container of the candidate (a serial inference
    pipeline), ``SAGEMAKER_INFERENCE_OUTPUT`` set to the requested response keys (checked against the
    containers' ``SAGEMAKER_INFERENCE_SUPPORTED``), then CreateTransformJob, and a wait until it ends.

    The candidate comes from one of: ``job_name`` (its BestCandidate, or ``candidate_name`` from its
    leaderboard), ``best_candidate`` (a candidate dict, e.g. the BestCandidate XCom), or
    ``model_package_group_name`` (the newest Approved version of the group: "the current approved model").

    Retry-safe: the transform job is named per try chain like the create operator's jobs
    (``<prefix>-<12 hex>``, tagged with the chain's owner token), so a retry re-attaches to the job
    an earlier try started; after this task's ``on_kill`` stopped it, the retry starts the chain's
    next job. The model name is derived from the candidate and its containers (reused when it exists).

    Returns (XCom, JSON-safe) ``{"TransformJobName", "TransformJobArn", "TransformJobStatus",
    "ModelName", "CandidateName", "InputS3Uri", "OutputS3Uri", "TransformJob": <DescribeTransformJob>}``.
    After ``execute``, :attr:`resolved_model_name` and :attr:`resolved_transform_job_name` hold the names.

    :param job_name: the AutoMLJobName whose candidate scores (templated).
    :param candidate_name: a candidate of ``job_name`` other than the best (templated).
    :param best_candidate: a candidate dict instead of ``job_name`` (templated).
    :param model_package_group_name: score with this group's newest Approved version (templated).
    :param inference_response_keys: e.g. ``["predicted_label", "probability"]`` (templated).
    :param transform_job_name_prefix: readable start of the job name (default the task id).
    :param check_input: list the input prefix first and refuse an empty one (default True).
    :param wait_for_completion: wait until the job ends (default True).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between checks.
    :param max_wait_seconds: give up waiting after this long.
    :param emit_asset_events: add the AssetAlias ``autopilot-batch-transform-output`` to ``outlets``
        and, once the job completed, an event for the asset ``s3_output_path`` with
        ``transform_job_name``, ``transform_job_arn``, ``model_name``, ``candidate_name``,
        ``job_name``, ``input_s3_uri`` and ``output_s3_path`` in its extra (docs/lineage.md).

    The CreateTransformJob and CreateModel parameters (from their tables,
    :mod:`airflow_autopilot.core.fields.transform` and :mod:`~airflow_autopilot.core.fields.model`):

    """

    request_tables = TRANSFORM_TABLES
    other_template_fields = (
        "job_name",
        "candidate_name",
        "best_candidate",
        "model_package_group_name",
        "inference_response_keys",
        "transform_job_name_prefix",
    )
    ui_color = "#d9ead3"
    asset_alias_name = BATCH_TRANSFORM_OUTPUT_ALIAS

    def __init__(
        self,
        *,
        job_name: str | None = None,
        candidate_name: str | None = None,
        best_candidate: Any = None,
        model_package_group_name: str | None = None,
        inference_response_keys: Sequence[str] | str | None = None,
        transform_job_name_prefix: str | None = None,
        check_input: bool = True,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 30.0,
        max_wait_seconds: float = 6 * 3600.0,
        emit_asset_events: bool = False,
        **kwargs: Any,
    ) -> None:
        request = self.take_request_parameters(kwargs)
        super().__init__(**kwargs)
        self.init_lineage(emit_asset_events)
        self.assign_request_parameters(request)
        self.job_name = job_name
        self.candidate_name = candidate_name
        self.best_candidate = best_candidate
        self.model_package_group_name = model_package_group_name
        self.inference_response_keys = inference_response_keys
        self.transform_job_name_prefix = transform_job_name_prefix
        self.check_input = check_input
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.max_wait_seconds = max_wait_seconds
        #: Set in ``execute``: the model and the transform job this try uses.
        self.resolved_model_name: str | None = None
        self.resolved_transform_job_name: str | None = None
        self.stop_marker = "on_kill"

    # --- inputs -----------------------------------------------------------------------------------
    def validate(self, chain: TryChain | None = None) -> None:
        """
        Check every input that needs no AWS call: the candidate's source, the wait settings, and
        the CreateModel and CreateTransformJob requests as far as they are known (every problem at
        once, each naming the request field, the rule and the parameter).

        :param chain: the try chain whose tags the transform job gets (counted against the limit).
        """
        from airflow_autopilot.core.fields.model import model_request
        from airflow_autopilot.core.promotion import (
            PromotionInputError,
            inference_containers,
            parse_mapping,
            parse_string_list,
            refuse,
            request_errors,
            validate_resource_name,
            with_response_keys,
        )
        from airflow_autopilot.core.transform import CANDIDATE_TAG_KEY, transform_request
        from airflow_autopilot.core.validation import seconds_errors, validate_job_name
        from airflow_autopilot.core.waits.pace import poll_interval_errors

        sources = [
            name
            for name in ("job_name", "best_candidate", "model_package_group_name")
            if getattr(self, name) not in (None, "")
        ]
        if len(sources) != 1:
            raise PromotionInputError(
                "job_name, best_candidate, model_package_group_name: give exactly one source of the "
                f"candidate (got {sources or 'none'})"
            )
        if self.candidate_name and self.job_name is None:
            raise PromotionInputError("candidate_name: only with job_name (a candidate of that job)")
        if self.job_name is not None:
            validate_job_name(self.job_name, "job_name")
        if self.model_package_group_name is not None:
            validate_resource_name(self.model_package_group_name, "model_package_group_name")
        self._keys = parse_string_list(self.inference_response_keys, "inference_response_keys")
        containers = None
        if self.best_candidate is not None:
            best = parse_mapping(self.best_candidate, "best_candidate")
            containers = with_response_keys(inference_containers(best), self._keys)
        params = self.request_parameters()
        model_spec, job_spec = self.request_tables.get(MODEL), self.request_tables.get(TRANSFORM_JOB)
        # The model's name is derived from the candidate unless given, its containers known once the
        # candidate is; the job's name comes from the try chain: all valid by construction.
        model = model_request(
            params, model_name=params["model_name"] or None, containers=containers, spec=model_spec
        )
        own_tags = [{"Key": CANDIDATE_TAG_KEY, "Value": ""}, *([chain.owner_tag] if chain else [])]
        job = transform_request(params, job_name="", model_name="", own_tags=own_tags, spec=job_spec)
        refuse(
            [
                *poll_interval_errors(self.poll_interval),
                *seconds_errors(self.max_wait_seconds, "max_wait_seconds"),
                *request_errors(model_spec, model, derived=frozenset({"ModelName", "Containers"})),
                *request_errors(job_spec, job, derived=frozenset({"TransformJobName", "ModelName"})),
            ]
        )
        self._input_uri = job[0]["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]

    def resolve_candidate(self) -> tuple[str, list[dict[str, Any]]]:
        """The candidate's name and containers (with the response keys), from the chosen source."""
        from airflow_autopilot.core.promotion import (
            META_CANDIDATE_NAME,
            PromotionInputError,
            inference_containers,
            parse_mapping,
            with_response_keys,
        )

        if self.best_candidate is not None:
            best = parse_mapping(self.best_candidate, "best_candidate")
            name = str(best.get("CandidateName") or "candidate")
            return name, with_response_keys(inference_containers(best), self._keys)
        if self.model_package_group_name is not None:
            package = self.model_hook.latest_approved_version(self.model_package_group_name)
            if package is None:
                raise AutopilotError(
                    f"model_package_group_name: {self.model_package_group_name!r} has no Approved version to score with"
                )
            spec = package.get("InferenceSpecification") or {}
            meta = package.get("CustomerMetadataProperties") or {}
            name = str(meta.get(META_CANDIDATE_NAME) or package["ModelPackageArn"].rsplit("/", 1)[-1])
            self.log.info(
                "Scoring with version %s of %s (%s)",
                package.get("ModelPackageVersion"),
                self.model_package_group_name,
                name,
            )
            containers = inference_containers(
                {"InferenceContainers": spec.get("Containers")}, "model package"
            )
            return name, with_response_keys(containers, self._keys)
        assert self.job_name is not None
        if self.candidate_name:
            found = [
                c
                for c in self.hook.list_candidates(self.job_name)
                if c.get("CandidateName") == self.candidate_name
            ]
            if not found:
                raise PromotionInputError(
                    f"candidate_name: {self.candidate_name!r} is not a candidate of Autopilot job {self.job_name!r}"
                )
            candidate = found[0]
        else:
            job = self.hook.get_job(self.job_name)
            candidate = job.raw.get("BestCandidate") or {}
            if not candidate:
                raise AutopilotError(
                    f"Autopilot job {self.job_name!r} ({job.describe_state()}) has no BestCandidate"
                )
        name = str(candidate.get("CandidateName"))
        return name, with_response_keys(inference_containers(candidate, "candidate"), self._keys)

    def require_input(self) -> None:
        """Refuse an input prefix with no object (before any SageMaker call)."""
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from airflow_autopilot.core.errors import error_code
        from airflow_autopilot.core.promotion import PromotionInputError

        bucket, prefix = S3Hook.parse_s3_url(self._input_uri)
        try:
            # A denied listing raises, explained (the hook's S3 client); only a missing bucket or
            # an empty prefix means there is nothing to score.
            listing = self.model_hook.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1)
        except Exception as err:
            if error_code(err) != "NoSuchBucket":
                raise
            listing = {}
        if not listing.get("KeyCount") and not listing.get("Contents"):
            raise PromotionInputError(f"s3_input_uri: no object under {self._input_uri}; nothing to score")

    # --- create or re-attach ----------------------------------------------------------------------
    def create_or_reattach(self, request: dict[str, Any], chain: TryChain) -> dict[str, Any]:
        """Create the transform job, or find the one an earlier try of this chain created."""
        from airflow_autopilot.core.naming import (
            MAX_GENERATIONS,
            STOPPED_BY_TAG_KEY,
            deterministic_job_name,
            existing_job_action,
        )

        hook = self.model_hook
        for generation in range(MAX_GENERATIONS):
            name = deterministic_job_name(chain, self.transform_job_name_prefix, generation)
            self.resolved_transform_job_name = name
            existing = hook.describe_transform_job_or_none(name)
            if existing is None:
                try:
                    hook.client.create_transform_job(**dict(request, TransformJobName=name))
                    self.log.info("Created transform job %s with model %s", name, request["ModelName"])
                    return hook.describe_transform_job_or_none(name) or {"TransformJobName": name}
                except Exception as err:
                    from airflow_autopilot.core.errors import already_exists

                    if not already_exists(err):
                        raise
                    existing = hook.describe_transform_job_or_none(name)
                    if existing is None:
                        raise
            tags = hook.client.list_tags(ResourceArn=existing["TransformJobArn"]).get("Tags", [])
            action = existing_job_action(existing.get("TransformJobStatus"), tags, chain)
            if action == "conflict":
                raise AutopilotJobNameConflict(
                    f"Transform job {name!r} exists and was not created by this task's try chain; "
                    "set transform_job_name_prefix to another value"
                )
            if action == "next":
                self.log.info(
                    "Transform job %s was stopped by an earlier try (on_kill); starting a new one", name
                )
                continue
            if action == "reattach-unmark":
                hook.client.delete_tags(ResourceArn=existing["TransformJobArn"], TagKeys=[STOPPED_BY_TAG_KEY])
            self.log.info(
                "Re-attaching to transform job %s (%s), started by an earlier try",
                name,
                existing.get("TransformJobStatus"),
            )
            return existing
        raise AutopilotJobNameConflict(f"This task stopped {MAX_GENERATIONS} transform jobs in one try chain")

    # --- execute ----------------------------------------------------------------------------------
    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_autopilot.core.fields.model import model_request
        from airflow_autopilot.core.naming import TryChain
        from airflow_autopilot.core.promotion import safe_resource_name
        from airflow_autopilot.core.transform import CANDIDATE_TAG_KEY, transform_request, transform_result
        from airflow_autopilot.core.waits.transform import TransformJobWait

        chain = TryChain.from_context(context)
        self.validate(chain)
        self.stop_marker = f"on_kill of try {getattr(context['ti'], 'try_number', '?')}"
        if self.check_input:
            self.require_input()
        candidate, containers = self.resolve_candidate()
        params = self.request_parameters()
        model_name = params["model_name"] or safe_resource_name(candidate, containers)
        self.resolved_model_name = model_name
        model, _ = model_request(
            params, model_name=model_name, containers=containers, spec=self.request_tables.get(MODEL)
        )
        # A refused transform job leaves no model this try created (docs/security.md).
        with self.model_hook.undo_if_refused() as undo:
            created = self.model_hook.ensure_model(
                model_name,
                model["ExecutionRoleArn"],
                containers,
                model.get("Tags", []),
                params=params,
                tables=self.request_tables,
            )
            if created:
                undo.add("model", model_name)
            self.log.info(
                "%s model %s: candidate %s, %d containers (a serial inference pipeline)",
                "Created" if created else "Reusing",
                model_name,
                candidate,
                len(containers),
            )
            candidate_tag = {"Key": CANDIDATE_TAG_KEY, "Value": candidate}
            request, _ = transform_request(
                params,
                job_name="",
                model_name=model_name,
                own_tags=[chain.owner_tag, candidate_tag],
                spec=self.request_tables.get(TRANSFORM_JOB),
            )
            described = self.create_or_reattach(request, chain)
        name = str(described.get("TransformJobName") or self.resolved_transform_job_name)
        result = transform_result(described, candidate)
        if not self.wait_for_completion:
            self.record_transform(context, result, completed=False)
            return result
        wait = TransformJobWait(
            name, poll_interval=self.poll_interval, timeout=self.max_wait_seconds, log=self.log
        )
        if self.deferrable:
            done = self.check_resource_once(wait, "transform-job", name)
            if done is None:
                self.defer_resource_wait(
                    "transform-job",
                    name,
                    poll_interval=wait.poll_interval,
                    timeout=self.max_wait_seconds,
                    kwargs={"candidate": candidate},
                )
        else:
            done = self.model_hook.wait_for_resource(
                "transform-job", name, poll_interval=self.poll_interval, timeout=self.max_wait_seconds
            )
        assert done is not None
        return self.record_transform(context, self.finish(done, candidate))

    def finish(self, described: Mapping[str, Any], candidate: str) -> dict[str, Any]:
        """The XCom value of a completed job, logged with its output location."""
        from airflow_autopilot.core.transform import transform_result

        result = transform_result(described, candidate)
        self.log.info(
            "Transform job %s is Completed; predictions under %s",
            result["TransformJobName"],
            result["OutputS3Uri"],
        )
        return result

    def execute_complete(
        self, context: Context, event: dict[str, Any] | None = None, candidate: str = ""
    ) -> dict[str, Any]:
        """Resume after :class:`~airflow_autopilot.triggers.AutopilotResourceTrigger`: the result, or raise."""
        from airflow_autopilot.core.naming import tag_value
        from airflow_autopilot.core.transform import CANDIDATE_TAG_KEY

        described = resolve_resource_event(event)
        if not candidate and described.get("TransformJobArn"):
            # dag.test() resumes without the defer kwargs: the job's own tag names the candidate.
            tags = self.model_hook.client.list_tags(ResourceArn=described["TransformJobArn"]).get("Tags", [])
            candidate = tag_value(tags, CANDIDATE_TAG_KEY) or ""
        return self.record_transform(context, self.finish(described, candidate))

    def record_transform(
        self, context: Context, result: dict[str, Any], *, completed: bool = True
    ) -> dict[str, Any]:
        """
        Record the job's lineage (and, once it completed, its asset event); return ``result``.

        :param context: the task context.
        :param result: the task's XCom value.
        :param completed: the job has completed (False when not waiting for it).
        """
        from airflow_autopilot.core.lineage import transform_lineage

        job = self.job_name if isinstance(self.job_name, str) else None
        self.record_lineage(context, transform_lineage(result, job_name=job, completed=completed))
        return result

    def planned_lineage(self) -> TaskLineage | None:
        """The input prefix and the output path, from the rendered fields."""
        from airflow_autopilot.core.lineage import transform_lineage

        params = self.request_parameters()
        return transform_lineage(
            {"InputS3Uri": params["s3_input_uri"], "OutputS3Uri": params["s3_output_path"]},
            completed=False,
        )

    def on_kill(self) -> None:
        """Tag the transform job this try started as stopped by it, then stop it (a retry starts a new one)."""
        from airflow_autopilot.core.naming import STOPPED_BY_TAG_KEY

        name = self.resolved_transform_job_name
        if not name:
            return
        try:
            hook = self.model_hook
            job = hook.describe_transform_job_or_none(name)
            if job is None or job.get("TransformJobStatus") != "InProgress":
                return
            hook.client.add_tags(
                ResourceArn=job["TransformJobArn"],
                Tags=[{"Key": STOPPED_BY_TAG_KEY, "Value": self.stop_marker}],
            )
            hook.client.stop_transform_job(TransformJobName=name)
            self.log.info("Task killed: requested stop of transform job %s", name)
        except Exception as err:
            scrub(err)  # before its traceback is logged
            self.log.exception("Task killed, but stopping transform job %s failed", name)

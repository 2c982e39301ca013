"""Emulated batch transform jobs: read the input objects, score every row with the model's candidate
(deterministic predictions) and write one output object per input, on the emulator clock; and
CreateTransformJob's ValidationExceptions (from the table the operator builds it with).
"""

from __future__ import annotations

import csv
import io
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
from moto.sagemaker.utils import arn_formatter

from airflow_autopilot.core.fields.spec import RequestSpec
from airflow_autopilot.core.fields.transform import TRANSFORM_JOB
from airflow_autopilot.emulator import data, settings
from airflow_autopilot.emulator.candidates import seeded_unit

#: Statuses after which a transform job no longer changes.
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
# Jobs live in moto's own ``transform_jobs`` dict (so ListTags finds them); one lock serialises
# creating and refreshing them (a threaded server answers requests concurrently).
_LOCK = threading.RLock()
_OUTPUT_ENV = "SAGEMAKER_INFERENCE_OUTPUT"
#: CreateTransformJob is validated against the rules of the table the operator builds it with.
REQUEST_TABLES: dict[str, RequestSpec] = {TRANSFORM_JOB.operation: TRANSFORM_JOB}


@dataclass
class ModelFacts:
    """What scoring needs to know about a model made from an emulated Autopilot candidate."""

    candidate: str
    problem_type: str
    features: list[str]
    target: str
    labels: list[str] = field(default_factory=list)
    low: float = 0.0
    high: float = 1.0
    keys: list[str] = field(default_factory=lambda: ["predicted_label"])


def _candidate_of(containers: list[dict[str, Any]]) -> tuple[str | None, str | None]:
    """The candidate name and the job prefix (``<output>/<job>``) from the containers' ModelDataUrl."""
    for container in containers:
        url = str(container.get("ModelDataUrl") or "")
        if "/tuning/" in url and url.endswith("/output/model.tar.gz"):
            base, _, rest = url.partition("/tuning/")
            return rest.split("/")[1], base
    return None, None


def model_facts(backend: Any, model_name: str) -> ModelFacts:
    """
    Read the model, find the emulated Autopilot job its candidate comes from and read the job's
    training data header and target values.

    :raises ValidationError: when the model does not exist or is not an Autopilot candidate's.
    """
    model: Any = backend._models.get(model_name)
    if model is None:
        raise ValidationError(message=f'Could not find model "{model_name}".')
    containers = [dict(c) for c in (model.containers or [])] or (
        [dict(model.primary_container)] if model.primary_container else []
    )
    candidate, base = _candidate_of(containers)
    job = None
    for stored in list(backend.auto_ml_jobs.values()):
        prefix = f"{getattr(stored, 'output_path', '')}/{getattr(stored, 'auto_ml_job_name', '')}"
        if base is not None and prefix == base:
            job = stored
    if candidate is None or job is None or getattr(job, "problem_type", None) is None:
        raise ValidationError(
            message=f"The emulator can run transform jobs only with models of emulated Autopilot candidates; "
            f"model {model_name} has no such container."
        )
    channel = job.training_channel
    target = job.target
    header: list[str] = []
    values: list[str] = []
    for key in data.input_objects(
        channel["DataSource"]["S3DataSource"]["S3Uri"], job.account_id, job.region_name
    ):
        lines = data.text_lines(
            data.csv_chunks(data.object_chunks(key), channel.get("CompressionType")), [data.MAX_INPUT_BYTES]
        )
        rows = csv.reader(lines)
        first = [h.strip() for h in next(rows, [])]
        header = header or first
        index = first.index(target) if target in first else -1
        values += [row[index].strip() for row in rows if 0 <= index < len(row) and row[index].strip()]
    keys = ["predicted_label"]
    for container in containers:
        output = (container.get("Environment") or {}).get(_OUTPUT_ENV)
        if output:
            keys = [k.strip() for k in output.split(",") if k.strip()]
    facts = ModelFacts(
        candidate=candidate,
        problem_type=job.problem_type,
        features=[h for h in header if h != target],
        target=target,
        keys=keys,
    )
    if job.problem_type == "Regression":
        numbers = [float(v) for v in values]
        facts.low, facts.high = (min(numbers), max(numbers)) if numbers else (0.0, 1.0)
    else:
        facts.labels = sorted(set(values))
    return facts


def predict(facts: ModelFacts, record: str) -> dict[str, Any]:
    """The candidate's deterministic prediction for one record, in every supported key."""
    if facts.problem_type == "Regression":
        value = facts.low + (facts.high - facts.low) * seeded_unit(facts.candidate, record)
        return {"predicted_label": round(value, 6)}
    weights = [0.05 + seeded_unit(facts.candidate, record, label) for label in facts.labels]
    total = sum(weights)
    probabilities = [round(w / total, 6) for w in weights]
    best = max(range(len(probabilities)), key=probabilities.__getitem__)
    return {
        "predicted_label": facts.labels[best],
        "probability": probabilities[best],
        "probabilities": probabilities,
        "labels": list(facts.labels),
    }


class RowError(ValueError):
    """A record the model cannot score; the message (``is a header row; ...``, ``has 3 columns; ...``)
    follows the record's place (``Line 2 of key``)."""


def score_record(facts: ModelFacts, record: str) -> tuple[list[str], dict[str, Any]]:
    """Score one CSV record (no line ending) as the candidate's containers do: its fields and the
    prediction in every supported key. Batch transform and InvokeEndpoint both score through here,
    so a row scored by either gets the same answer.

    :param facts: the model's facts (:func:`model_facts`).
    :param record: one headerless CSV record with the training columns but the target.
    :raises RowError: for a header row or a record with the wrong number of columns.
    """
    fields = next(csv.reader([record]), [])
    if [f.strip() for f in fields] == facts.features:
        raise RowError(
            "is a header row; the model takes headerless CSV with the training columns but the target."
        )
    if len(fields) != len(facts.features):
        raise RowError(
            f"has {len(fields)} columns; the model expects {len(facts.features)} "
            f"({', '.join(facts.features)}: the training columns without the target '{facts.target}')."
        )
    return fields, predict(facts, record)


def format_prediction(
    facts: ModelFacts, prediction: dict[str, Any], accept: str, fields: list[str] | None = None
) -> str:
    """One output line of a prediction in the model's inference response keys: a JSON object for a
    JSON ``accept``, else a CSV record.

    :param facts: the model's facts (its response keys).
    :param prediction: :func:`predict`'s answer.
    :param accept: the output content type.
    :param fields: the input fields to join to the output (batch transform's ``JoinSource``), if any.
    """
    keys = [k for k in facts.keys if k in prediction]
    if "json" in accept:
        values = {k: prediction[k] for k in keys}
        if fields is not None:
            return json.dumps({"SageMakerInput": fields, "SageMakerOutput": values})
        return json.dumps(values)
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(
        [*(fields or []), *(_csv_value(prediction[k]) for k in keys)]
    )
    return buffer.getvalue()


def _csv_value(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list) else str(value)


class EmulatedTransformJob:
    """
    A transform job: ``InProgress`` for one stage, then scored (``Completed``) or ``Failed`` with a
    FailureReason; StopTransformJob makes it ``Stopping``, then ``Stopped``.

    :param params: the CreateTransformJob parameters.
    :param backend: moto's SageMaker backend.
    """

    def __init__(self, params: dict[str, Any], backend: Any) -> None:
        self.params = params
        self.backend = backend
        self.name: str = params["TransformJobName"]
        self.arn = arn_formatter("transform-job", self.name, backend.account_id, backend.region_name)
        self.tags: list[dict[str, str]] = list(params.get("Tags") or [])
        self.created = settings.now()
        self.stage = settings.stage_seconds()
        self.status = "InProgress"
        self.failure_reason: str | None = None
        self.ended: float | None = None
        self.stop_requested: float | None = None

    def refresh(self) -> None:
        """Bring the job up to the emulator clock (scoring happens once, when its stage ends)."""
        with _LOCK:
            if self.status in TERMINAL:
                return
            now = settings.now()
            if self.stop_requested is not None:
                if now - self.stop_requested >= self.stage:
                    self.status, self.ended = "Stopped", self.stop_requested + self.stage
                return
            if now - self.created < self.stage:
                return
            self.ended = self.created + self.stage
            try:
                self._score()
                self.status = "Completed"
            except _Failure as failure:
                self.status, self.failure_reason = "Failed", str(failure)[:1024]
            except Exception as err:  # noqa: BLE001 - whatever the input does, the job must end
                self.status = "Failed"
                self.failure_reason = f"InternalServerError: {type(err).__name__}: {err}"[:1024]

    def stop(self) -> None:
        """StopTransformJob."""
        self.refresh()
        if self.status == "InProgress":
            self.status, self.stop_requested = "Stopping", settings.now()

    def _score(self) -> None:
        try:
            facts = model_facts(self.backend, self.params["ModelName"])
        except ValidationError as err:
            raise _Failure(f"ClientError: {err.message}") from err
        source = self.params["TransformInput"]["DataSource"]["S3DataSource"]
        uri = source["S3Uri"]
        account, region = self.backend.account_id, self.backend.region_name
        if not data.bucket_exists(uri, account, region):
            raise _Failure(f"ClientError: The input S3 bucket '{data.split_s3_uri(uri)[0]}' does not exist.")
        objects = data.input_objects(uri, account, region)
        if not objects:
            raise _Failure(f"ClientError: No input data found under S3 prefix {uri}.")
        output = self.params["TransformOutput"]
        out_path = output["S3OutputPath"].rstrip("/")
        if not data.bucket_exists(out_path, account, region):
            raise _Failure(
                f"ClientError: The S3OutputPath bucket '{data.split_s3_uri(out_path)[0]}' does not exist."
            )
        accept = output.get("Accept") or "text/csv"
        join = (self.params.get("DataProcessing") or {}).get("JoinSource") == "Input"
        _, in_key = data.split_s3_uri(uri)
        written: dict[str, bytes] = {}
        for obj in objects:
            lines = data.text_lines(
                data.csv_chunks(
                    data.object_chunks(obj), self.params["TransformInput"].get("CompressionType")
                ),
                [data.MAX_INPUT_BYTES],
            )
            rows = [line.rstrip("\r\n") for line in lines if line.strip()]
            out_lines = [
                self._score_row(facts, row, n + 1, obj.name, accept, join) for n, row in enumerate(rows)
            ]
            relative = obj.name[len(in_key) :].lstrip("/") if obj.name.startswith(in_key) else obj.name
            relative = relative or obj.name.rsplit("/", 1)[-1]
            written[f"{out_path}/{relative}.out"] = ("\n".join(out_lines) + "\n").encode()
        data.put_objects(written, account, region)

    def _score_row(self, facts: ModelFacts, row: str, number: int, key: str, accept: str, join: bool) -> str:
        try:
            fields, prediction = score_record(facts, row)
        except RowError as err:
            raise _Failure(f"ClientError: Line {number} of {key} {err}") from err
        return format_prediction(facts, prediction, accept, fields if join else None)

    def describe(self) -> dict[str, Any]:
        """DescribeTransformJob."""
        self.refresh()
        answer: dict[str, Any] = {
            "TransformJobName": self.name,
            "TransformJobArn": self.arn,
            "TransformJobStatus": self.status,
            "ModelName": self.params["ModelName"],
            "TransformInput": self.params["TransformInput"],
            "TransformOutput": self.params["TransformOutput"],
            "TransformResources": self.params["TransformResources"],
            "CreationTime": settings.to_datetime(self.created),
            "TransformStartTime": settings.to_datetime(self.created),
        }
        for key in (
            "MaxConcurrentTransforms",
            "MaxPayloadInMB",
            "BatchStrategy",
            "Environment",
            "DataProcessing",
        ):
            if self.params.get(key) is not None:
                answer[key] = self.params[key]
        if self.failure_reason:
            answer["FailureReason"] = self.failure_reason
        if self.ended is not None and self.status in TERMINAL:
            answer["TransformEndTime"] = settings.to_datetime(self.ended)
        return answer


class _Failure(Exception):
    """The job fails with this message as its FailureReason."""


def create_transform_job(backend: Any, params: dict[str, Any]) -> str:
    """
    Store a new transform job; return its ARN.

    :raises ResourceInUseException: when the name is taken.
    :raises ValidationError: when the model does not exist.
    """
    name = params["TransformJobName"]
    with _LOCK:
        if name in backend.transform_jobs:
            raise ResourceInUseException(
                message=f"Job with name {name} already exists. Choose a different name."
            )
        if params.get("ModelName") not in backend._models:
            raise ValidationError(message=f'Could not find model "{params.get("ModelName")}".')
        job = EmulatedTransformJob(params, backend)
        backend.transform_jobs[name] = job
        return job.arn


def is_step_job(backend: Any, name: Any) -> bool:
    """Whether ``name`` is one of moto's own transform jobs (a candidate's step job), not one we score."""
    job = backend.transform_jobs.get(name) if isinstance(name, str) else None
    return job is not None and not isinstance(job, EmulatedTransformJob)


def transform_job(backend: Any, name: Any) -> EmulatedTransformJob:
    """The stored emulated job of that name.

    :raises ResourceNotFound: when there is none.
    """
    job = backend.transform_jobs.get(name) if isinstance(name, str) else None
    if not isinstance(job, EmulatedTransformJob):
        # SageMaker answers a ValidationException for an unknown transform job.
        raise ValidationError(message=f"Could not find requested job with name {name}")
    return job

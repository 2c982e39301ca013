"""How emulated jobs read their input from moto's S3 and judge it against their problem type (the
job's FailureReason, or its inferred problem type), and write their artifacts back."""

from __future__ import annotations

import codecs
import csv
import statistics
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

#: Uncompressed bytes of input the analysis reads at most (all objects together); more fails the job.
MAX_INPUT_BYTES = 64 * 1024 * 1024
#: Longest line of input, in characters; a longer one fails the job (memory stays bounded).
MAX_LINE_CHARS = 1024 * 1024
#: Bytes read (and decompressed) at a time.
CHUNK_BYTES = 1024 * 1024
#: Distinct numeric values above which a numeric target is treated as regression.
REGRESSION_MIN_DISTINCT = 10
#: Data rows per object the checks of the problem types beyond tabular read at most (the emulator is
#: about shapes, not statistics, and a time series keeps every timestamp in memory).
MAX_ROWS = 100_000
#: Columns a text-generation (fine-tuning) dataset must have.
TEXT_GENERATION_COLUMNS = ("input", "output")
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS
#: Seconds one step of each ForecastFrequency unit lasts, with the tolerance of a calendar unit.
_FREQUENCY_SECONDS = {
    "min": 60,
    "H": 3600,
    "D": 86400,
    "W": 7 * 86400,
    "M": 30.44 * 86400,
    "Y": 365.25 * 86400,
}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: S3 data types whose objects list the data rather than hold it; the emulator does not follow them.
_MANIFESTS = ("ManifestFile", "AugmentedManifestFile")


class InputDataError(Exception):
    """The input data cannot be used; the message is the job's ``FailureReason``."""


def split_s3_uri(uri: str) -> tuple[str, str]:
    """Split ``s3://bucket/key`` (or an https S3 URL) into bucket and key.

    :param uri: the S3 URI.
    """
    rest = uri.split("://", 1)[1] if "://" in uri else uri
    bucket, _, key = rest.partition("/")
    return bucket, key


def _backend(bucket: str, account_id: str, region: str) -> Any:
    # moto records bucket owners as {bucket: (partition, account_id)}.
    owner = s3_backends.bucket_accounts.get(bucket)
    if isinstance(owner, tuple) and len(owner) == 2:
        return s3_backends[owner[1]][owner[0]]
    return s3_backends[account_id][get_partition(region)]


def bucket_exists(uri: str, account_id: str, region: str) -> bool:
    """Return whether the bucket of ``uri`` exists in moto S3.

    :param uri: any S3 URI in the bucket.
    :param account_id: the caller's account.
    :param region: the caller's region.
    """
    bucket, _ = split_s3_uri(uri)
    return bucket in _backend(bucket, account_id, region).buckets


def input_objects(uri: str, account_id: str, region: str) -> list[Any]:
    """Return the non-empty objects (moto keys) under an S3 prefix, in key order.

    :param uri: the S3 prefix.
    :param account_id: the caller's account.
    :param region: the caller's region.
    """
    bucket_name, prefix = split_s3_uri(uri)
    backend = _backend(bucket_name, account_id, region)
    bucket = backend.buckets.get(bucket_name)
    if bucket is None:
        return []
    found = []
    for key_name in sorted(k for k in bucket.keys.keys() if k.startswith(prefix)):
        if key_name.endswith("/"):
            continue
        key = bucket.keys.get(key_name)
        if key is not None and key.size:
            found.append(key)
    return found


def object_chunks(key: Any) -> Iterator[bytes]:
    """Yield a moto object's content :data:`CHUNK_BYTES` at a time, never the whole object at once.

    :param key: a moto S3 key.
    """
    buffer, lock = getattr(key, "_value_buffer", None), getattr(key, "lock", None)
    if buffer is None or lock is None:  # another moto layout: fall back to the public (copying) API
        value = key.value
        yield from (value[i : i + CHUNK_BYTES] for i in range(0, len(value), CHUNK_BYTES))
        return
    offset = 0
    while True:
        with lock:
            buffer.seek(offset)
            chunk = buffer.read(CHUNK_BYTES)
        if not chunk:
            return
        offset += len(chunk)
        yield chunk


def gunzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress gzip data (one or more members) as a stream, at most :data:`CHUNK_BYTES` per piece.

    :param chunks: the compressed bytes.
    :raises InputDataError: when the data is not valid gzip or ends early.
    """
    invalid = "ClientError: The input data is not valid Gzip (CompressionType is Gzip)."
    decompressor = zlib.decompressobj(_GZIP_WBITS)
    fed = False
    try:
        for chunk in chunks:
            data = chunk
            while data:
                fed = True
                out = decompressor.decompress(data, CHUNK_BYTES)
                if out:
                    yield out
                if decompressor.eof:
                    data = decompressor.unused_data
                    if data and not data.startswith(GZIP_MAGIC[: len(data)]):
                        raise InputDataError(invalid + " Unexpected bytes follow the compressed data.")
                    decompressor, fed = zlib.decompressobj(_GZIP_WBITS), False
                    continue
                data = decompressor.unconsumed_tail
                while not data and len(out) == CHUNK_BYTES:  # output was cut: drain what is buffered
                    out = decompressor.decompress(b"", CHUNK_BYTES)
                    if out:
                        yield out
        if fed and not decompressor.eof:
            raise InputDataError(invalid + " The compressed data ends early.")
    except zlib.error as err:
        raise InputDataError(f"{invalid} {err}.") from err


def text_lines(chunks: Iterable[bytes], budget: list[int]) -> Iterator[str]:
    """Split bytes into UTF-8 lines (line endings kept), bounding line length and total size.

    :param chunks: the uncompressed bytes.
    :param budget: ``[bytes left]`` shared by every object of the channel; decremented as read.
    :raises InputDataError: for a line over :data:`MAX_LINE_CHARS` or input over :data:`MAX_INPUT_BYTES`.
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending = ""
    for chunk in chunks:
        budget[0] -= len(chunk)
        if budget[0] < 0:
            raise InputDataError(
                f"ClientError: The input data is larger than the emulator reads "
                f"({MAX_INPUT_BYTES // (1024 * 1024)} MiB uncompressed); use a smaller sample."
            )
        parts = (pending + decoder.decode(chunk)).split("\n")
        pending = parts.pop()
        for line in [*parts, pending]:
            if len(line) > MAX_LINE_CHARS:
                raise InputDataError(
                    f"ClientError: A line of the input data is longer than {MAX_LINE_CHARS} characters."
                )
        for line in parts:
            yield line + "\n"
    pending += decoder.decode(b"", final=True)
    if pending:
        yield pending


def put_objects(
    objects: dict[str, bytes], account_id: str, region: str, kms_key_id: str | None = None
) -> None:
    """Write objects to moto S3, skipping those whose bucket does not exist.

    :param objects: the content of each object, by S3 URI.
    :param account_id: the caller's account.
    :param region: the caller's region.
    :param kms_key_id: encrypt them with this KMS key (SSE-KMS), if given.
    """
    encryption = {"encryption": "aws:kms", "kms_key_id": kms_key_id} if kms_key_id else {}
    for uri, body in objects.items():
        bucket_name, key = split_s3_uri(uri)
        backend = _backend(bucket_name, account_id, region)
        if bucket_name in backend.buckets:
            backend.put_object(bucket_name, key, body, **encryption)


@dataclass(frozen=True)
class DataAnalysis:
    """What the emulator learned from the input data: why the job fails, or the inferred problem type.

    Both are ``None`` for input it does not inspect (manifest files, Parquet) and for problem types
    with nothing to infer.
    """

    failure_reason: str | None = None
    problem_type: str | None = None


@dataclass
class TargetValues:
    """What the problem-type inference needs from a target column, in bounded memory.

    Up to ``REGRESSION_MIN_DISTINCT + 1`` distinct values are kept; whether every value is numeric
    and whether any has a decimal point is tracked over all of them.
    """

    count: int = 0
    distinct: set[str] = field(default_factory=set)
    numeric: bool = True
    decimals: bool = False

    def add(self, value: str) -> None:
        self.count += 1
        if len(self.distinct) <= REGRESSION_MIN_DISTINCT:
            self.distinct.add(value)
        if self.numeric:
            try:
                float(value)
            except ValueError:
                self.numeric = False
            else:
                self.decimals = self.decimals or "." in value

    def problem_type(self) -> str:
        """The inferred problem type.

        Two distinct values are binary classification; numeric values with many distinct values
        (or decimals) are regression; anything else is multiclass classification.
        """
        if len(self.distinct) <= 2:
            return "BinaryClassification"
        if not self.numeric:
            return "MulticlassClassification"
        if len(self.distinct) > REGRESSION_MIN_DISTINCT or self.decimals:
            return "Regression"
        return "MulticlassClassification"


def csv_chunks(chunks: Iterable[bytes], compression: str | None) -> Iterator[bytes]:
    """The uncompressed bytes of one object, per its channel's ``CompressionType``.

    :raises InputDataError: for gzip data in a channel without ``CompressionType: Gzip``.
    """
    if compression == "Gzip":
        yield from gunzip(chunks)
        return
    first = True
    for chunk in chunks:
        if first and chunk.startswith(GZIP_MAGIC):
            raise InputDataError(
                "ClientError: The input data is Gzip-compressed, but the channel's CompressionType is "
                f"{compression or 'None'}. Set CompressionType to Gzip."
            )
        first = False
        yield chunk


@dataclass
class CsvObject:
    """One CSV object of a channel: its header and an iterator over its data rows."""

    #: `` (key)`` when the channel has several objects, else empty: for messages.
    where: str
    header: list[str]
    rows: Iterator[list[str]]


def csv_objects(
    channel: dict[str, Any], objects: list[Any], max_rows: int | None = None
) -> Iterator[CsvObject]:
    """Read a channel's objects as CSV with a header row, streamed in bounded memory.

    Every object counts against one :data:`MAX_INPUT_BYTES` budget.

    :param channel: the channel (its ``CompressionType``).
    :param objects: its moto keys, from :func:`input_objects`.
    :param max_rows: data rows read per object at most (``None``: all).
    :raises InputDataError: for an empty object or data that is not CSV (also while iterating rows).
    """
    budget = [MAX_INPUT_BYTES]
    for key in objects:
        where = f" ({key.name})" if len(objects) > 1 else ""
        lines = text_lines(csv_chunks(object_chunks(key), channel.get("CompressionType")), budget)
        rows = _csv_rows(csv.reader(lines, strict=True), where, max_rows)
        header = next(rows, None)
        if not header:
            raise InputDataError(f"ClientError: The input data file{where} is empty.")
        yield CsvObject(where, [h.strip() for h in header], rows)


def _csv_rows(reader: Any, where: str, max_rows: int | None) -> Iterator[list[str]]:
    """The header row, then up to ``max_rows`` data rows; a parse error becomes the job's reason."""
    try:
        for number, row in enumerate(reader):
            if max_rows is not None and number > max_rows:
                return
            yield row
    except csv.Error as err:
        raise InputDataError(
            f"ClientError: Could not parse the input data{where} as CSV (line {reader.line_num}): {err}."
        ) from err


def _require_columns(table: CsvObject, columns: list[str], what: str) -> None:
    missing = [c for c in columns if c not in table.header]
    if missing:
        raise InputDataError(
            f"ClientError: Could not find the {what} column(s) {missing} in the header of the input "
            f"data{table.where}. Columns found: {', '.join(table.header)}."
        )


def _tabular(config: dict[str, Any], channel: dict[str, Any], objects: list[Any]) -> DataAnalysis:
    target = config["TargetAttributeName"]
    values = TargetValues()
    for table in csv_objects(channel, objects):
        if target not in table.header:
            raise InputDataError(
                f"ClientError: Could not find the target column '{target}' in the header of the "
                f"input data{table.where}. Columns found: {', '.join(table.header)}."
            )
        index = table.header.index(target)
        for row in table.rows:
            if len(row) > index and row[index].strip():
                values.add(row[index].strip())
    if not values.count:
        return DataAnalysis(failure_reason=f"ClientError: The target column '{target}' has no values.")
    if len(values.distinct) < 2:
        return DataAnalysis(
            failure_reason=f"ClientError: The target column '{target}' has only one distinct value."
        )
    return DataAnalysis(problem_type=values.problem_type())


def frequency_seconds(frequency: str) -> float:
    """The length of one step of a ``ForecastFrequency`` such as ``W``, ``2D`` or ``15min``, in seconds.

    :param frequency: a valid ForecastFrequency.
    """
    unit = "min" if frequency.endswith("min") else frequency[-1]
    count = frequency[: -len(unit)] or "1"
    return int(count) * _FREQUENCY_SECONDS[unit]


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("/", "-"))


def _time_series(config: dict[str, Any], channel: dict[str, Any], objects: list[Any]) -> DataAnalysis:
    ts = config["TimeSeriesConfig"]
    target, stamp, item = (
        ts["TargetAttributeName"],
        ts["TimestampAttributeName"],
        ts["ItemIdentifierAttributeName"],
    )
    series: dict[str, list[datetime]] = {}
    for table in csv_objects(channel, objects, MAX_ROWS):
        _require_columns(
            table, [target, stamp, item, *(ts.get("GroupingAttributeNames") or [])], "time-series"
        )
        for row in table.rows:
            values = dict(zip(table.header, row, strict=False))
            if not values.get(item, "").strip():
                continue
            raw_target = values.get(target, "").strip()
            if raw_target:
                try:
                    float(raw_target)
                except ValueError:
                    raise InputDataError(
                        f"ClientError: The target column '{target}' must be numeric; found "
                        f"{raw_target!r}{table.where}."
                    ) from None
            try:
                when = _parse_time(values.get(stamp, ""))
            except ValueError:
                raise InputDataError(
                    f"ClientError: The timestamp column '{stamp}' holds {values.get(stamp)!r}{table.where}, "
                    "which is not a timestamp (use yyyy-MM-dd or yyyy-MM-dd HH:mm:ss)."
                ) from None
            series.setdefault(values[item], []).append(when)
    if not series:
        raise InputDataError(f"ClientError: The item identifier column '{item}' has no values.")
    frequency = config["ForecastFrequency"]
    expected = frequency_seconds(frequency)
    gaps = []
    for stamps in series.values():
        ordered = sorted(set(stamps))
        gaps += [(b - a).total_seconds() for a, b in zip(ordered, ordered[1:], strict=False)]
    if gaps:
        typical = statistics.median(gaps)
        if not 0.9 * expected <= typical <= 1.1 * expected:
            raise InputDataError(
                f"ClientError: ForecastFrequency {frequency} does not match the data: its timestamps are "
                f"typically {typical / 86400:g} days apart, where {frequency} means {expected / 86400:g} days."
            )
    longest = max(len(set(s)) for s in series.values())
    horizon = int(config["ForecastHorizon"])
    if longest < 2 * horizon:
        raise InputDataError(
            f"ClientError: ForecastHorizon {horizon} is too long for the data: the longest series has "
            f"{longest} time steps; it needs at least twice the horizon."
        )
    return DataAnalysis()


def _labelled_text(config: dict[str, Any], channel: dict[str, Any], objects: list[Any]) -> DataAnalysis:
    content, label = config["ContentColumn"], config["TargetLabelColumn"]
    labels: set[str] = set()
    for table in csv_objects(channel, objects, MAX_ROWS):
        _require_columns(table, [content, label], "text classification")
        for row in table.rows:
            value = dict(zip(table.header, row, strict=False)).get(label, "").strip()
            if value:
                labels.add(value)
    if len(labels) < 2:
        raise InputDataError(f"ClientError: The label column '{label}' needs at least two distinct labels.")
    return DataAnalysis()


def _images(config: dict[str, Any], channel: dict[str, Any], objects: list[Any]) -> DataAnalysis:
    uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
    _, prefix = split_s3_uri(uri)
    labels = set()
    for key in objects:
        relative = key.name[len(prefix) :].lstrip("/")
        if "/" in relative and relative.lower().endswith(_IMAGE_SUFFIXES):
            labels.add(relative.split("/", 1)[0])
    if len(labels) < 2:
        raise InputDataError(
            f"ClientError: Image classification with S3Prefix input needs images in one folder per label "
            f"({uri}<label>/<image>.jpg|png), at least two labels; found {sorted(labels) or 'none'}."
        )
    return DataAnalysis()


def _text_generation(config: dict[str, Any], channel: dict[str, Any], objects: list[Any]) -> DataAnalysis:
    rows = 0
    for table in csv_objects(channel, objects, MAX_ROWS):
        _require_columns(table, list(TEXT_GENERATION_COLUMNS), "fine-tuning")
        rows += sum(1 for _ in table.rows)
    if not rows:
        raise InputDataError("ClientError: The fine-tuning dataset has no rows.")
    return DataAnalysis()


#: The input check of each ``AutoMLProblemTypeConfig`` member.
_CHECKS = {
    "TabularJobConfig": _tabular,
    "TimeSeriesForecastingJobConfig": _time_series,
    "TextClassificationJobConfig": _labelled_text,
    "ImageClassificationJobConfig": _images,
    "TextGenerationJobConfig": _text_generation,
}


def analyze_input(
    config_key: str,
    config: dict[str, Any],
    channel: dict[str, Any],
    account_id: str,
    region: str,
    channels_member: str = "AutoMLJobInputDataConfig",
) -> DataAnalysis:
    """Analyse a job's training channel against its problem type.

    Every object under an ``S3Prefix`` is read in key order, streamed in bounded memory (at most
    :data:`MAX_INPUT_BYTES` uncompressed). Manifest files and Parquet are not inspected. Tabular
    input yields the inferred problem type; bad data of any problem type a ``failure_reason``.

    :param config_key: the job's ``AutoMLProblemTypeConfig`` member (``TabularJobConfig`` for V1).
    :param config: its value (its ``TargetAttributeName`` for tabular jobs).
    :param channel: the training channel, in ``AutoMLJobInputDataConfig`` shape.
    :param account_id: the caller's account.
    :param region: the caller's region.
    :param channels_member: the request member that holds the channel, for messages.
    """
    source = channel["DataSource"]["S3DataSource"]
    uri = source["S3Uri"]
    if not bucket_exists(uri, account_id, region):
        bucket, _ = split_s3_uri(uri)
        return DataAnalysis(failure_reason=f"ClientError: The input S3 bucket '{bucket}' does not exist.")
    objects = input_objects(uri, account_id, region)
    if not objects:
        return DataAnalysis(
            failure_reason=f"ClientError: No input data found under S3 prefix {uri}. Check the S3Uri of {channels_member}."
        )
    if source.get("S3DataType") in _MANIFESTS or "parquet" in (channel.get("ContentType") or ""):
        return DataAnalysis()
    try:
        return _CHECKS[config_key](config, channel, objects)
    except InputDataError as err:
        return DataAnalysis(failure_reason=str(err))

"""Reading training data from and writing artifacts to moto's in-memory S3."""

from __future__ import annotations

import codecs
import csv
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
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
GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS


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


def put_objects(objects: dict[str, bytes], account_id: str, region: str) -> None:
    """Write objects to moto S3, skipping those whose bucket does not exist.

    :param objects: the content of each object, by S3 URI.
    :param account_id: the caller's account.
    :param region: the caller's region.
    """
    for uri, body in objects.items():
        bucket_name, key = split_s3_uri(uri)
        backend = _backend(bucket_name, account_id, region)
        if bucket_name in backend.buckets:
            backend.put_object(bucket_name, key, body)


@dataclass(frozen=True)
class DataAnalysis:
    """What the emulator learned from the input data: why the job fails, or the inferred problem type.

    Both are ``None`` for input it does not inspect (manifest files, Parquet).
    """

    failure_reason: str | None = None
    problem_type: str | None = None


def infer_problem_type(values: list[str]) -> str:
    """Infer the problem type from target column values.

    Two distinct values are binary classification; numeric values with many distinct values are
    regression; anything else is multiclass classification.

    :param values: the non-empty target values.
    """
    seen = TargetValues()
    for value in values:
        seen.add(value)
    return seen.problem_type()


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
        """The inferred problem type, as :func:`infer_problem_type` decides it."""
        if len(self.distinct) <= 2:
            return "BinaryClassification"
        if not self.numeric:
            return "MulticlassClassification"
        if len(self.distinct) > REGRESSION_MIN_DISTINCT or self.decimals:
            return "Regression"
        return "MulticlassClassification"


def read_target(lines: Iterable[str], target: str, values: TargetValues, where: str = "") -> None:
    """Read one CSV (header row first) and add its target column's values to ``values``.

    :param lines: the CSV's lines.
    :param target: ``TargetAttributeName``.
    :param values: the values seen so far.
    :param where: the object, for messages.
    :raises InputDataError: when the CSV cannot be parsed or has no target column.
    """
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
        if not header:
            raise InputDataError(f"ClientError: The input data file{where} is empty.")
        header = [h.strip() for h in header]
        if target not in header:
            raise InputDataError(
                f"ClientError: Could not find the target column '{target}' in the header of the "
                f"input data{where}. Columns found: {', '.join(header)}."
            )
        index = header.index(target)
        for row in reader:
            if len(row) > index and row[index].strip():
                values.add(row[index].strip())
    except csv.Error as err:
        raise InputDataError(
            f"ClientError: Could not parse the input data{where} as CSV (line {reader.line_num}): {err}."
        ) from err


def target_verdict(values: TargetValues, target: str) -> DataAnalysis:
    """The analysis of a target column once every row was read."""
    if not values.count:
        return DataAnalysis(failure_reason=f"ClientError: The target column '{target}' has no values.")
    if len(values.distinct) < 2:
        return DataAnalysis(
            failure_reason=f"ClientError: The target column '{target}' has only one distinct value."
        )
    return DataAnalysis(problem_type=values.problem_type())


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


def analyze_input(channel: dict[str, Any], account_id: str, region: str) -> DataAnalysis:
    """Analyse the training channel of a job.

    ``S3Prefix`` CSV input is read in full, every object under the prefix in key order, streamed in
    bounded memory (at most :data:`MAX_INPUT_BYTES` uncompressed); manifest files and Parquet are not
    inspected and yield an analysis without a problem type. Bad data gives a ``failure_reason``.

    :param channel: the training ``AutoMLChannel``.
    :param account_id: the caller's account.
    :param region: the caller's region.
    """
    source = channel["DataSource"]["S3DataSource"]
    uri = source["S3Uri"]
    if not bucket_exists(uri, account_id, region):
        bucket, _ = split_s3_uri(uri)
        return DataAnalysis(failure_reason=f"ClientError: The input S3 bucket '{bucket}' does not exist.")
    if source.get("S3DataType") == "ManifestFile":
        return DataAnalysis()
    objects = input_objects(uri, account_id, region)
    if not objects:
        return DataAnalysis(
            failure_reason=f"ClientError: No input data found under S3 prefix {uri}. Check the S3Uri of InputDataConfig."
        )
    content_type = channel.get("ContentType") or "text/csv;header=present"
    if "parquet" in content_type:
        return DataAnalysis()
    target, compression = channel["TargetAttributeName"], channel.get("CompressionType")
    values, budget = TargetValues(), [MAX_INPUT_BYTES]
    try:
        for key in objects:
            where = f" ({key.name})" if len(objects) > 1 else ""
            lines = text_lines(csv_chunks(object_chunks(key), compression), budget)
            read_target(lines, target, values, where)
    except InputDataError as err:
        return DataAnalysis(failure_reason=str(err))
    return target_verdict(values, target)

"""Reading training data from and writing artifacts to moto's in-memory S3."""

from __future__ import annotations

import csv
import gzip
import io
from dataclasses import dataclass
from typing import Any

from moto.s3.models import s3_backends
from moto.utilities.utils import get_partition

#: Bytes of the first input object read for analysis.
MAX_READ_BYTES = 8 * 1024 * 1024
#: Distinct numeric values above which a numeric target is treated as regression.
REGRESSION_MIN_DISTINCT = 10


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


def first_object(uri: str, account_id: str, region: str) -> bytes | None:
    """Return the start (up to :data:`MAX_READ_BYTES`) of the first non-empty object under an S3
    prefix, in key order, or ``None``.

    :param uri: the S3 prefix.
    :param account_id: the caller's account.
    :param region: the caller's region.
    """
    bucket_name, prefix = split_s3_uri(uri)
    backend = _backend(bucket_name, account_id, region)
    bucket = backend.buckets.get(bucket_name)
    if bucket is None:
        return None
    for key_name in sorted(k for k in bucket.keys.keys() if k.startswith(prefix)):
        if key_name.endswith("/"):
            continue
        key = bucket.keys.get(key_name)
        if key is None:
            continue
        body = key.value[:MAX_READ_BYTES]
        if body:
            return body
    return None


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
    distinct = set(values)
    if len(distinct) <= 2:
        return "BinaryClassification"
    try:
        [float(v) for v in distinct]
    except ValueError:
        return "MulticlassClassification"
    if len(distinct) > REGRESSION_MIN_DISTINCT or any("." in v for v in distinct):
        return "Regression"
    return "MulticlassClassification"


def analyze_csv(body: bytes, target: str, compression: str | None) -> DataAnalysis:
    """Read a CSV with a header row and look at the target column.

    :param body: the object content.
    :param target: ``TargetAttributeName``.
    :param compression: ``CompressionType`` of the channel.
    """
    if compression == "Gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError):
            return DataAnalysis(failure_reason="ClientError: The input data is not valid Gzip.")
    text = body.decode("utf-8", errors="replace")
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return DataAnalysis(failure_reason="ClientError: The input data file is empty.")
    header = [h.strip() for h in header]
    if target not in header:
        return DataAnalysis(
            failure_reason=(
                f"ClientError: Could not find the target column '{target}' in the header of the "
                f"input data. Columns found: {', '.join(header)}."
            )
        )
    index = header.index(target)
    values = [row[index].strip() for row in reader if len(row) > index and row[index].strip()]
    if not values:
        return DataAnalysis(failure_reason=f"ClientError: The target column '{target}' has no values.")
    if len(set(values)) < 2:
        return DataAnalysis(
            failure_reason=f"ClientError: The target column '{target}' has only one distinct value."
        )
    return DataAnalysis(problem_type=infer_problem_type(values))


def analyze_input(channel: dict[str, Any], account_id: str, region: str) -> DataAnalysis:
    """Analyse the training channel of a job.

    ``S3Prefix`` CSV input is read (the first object under the prefix); manifest files and Parquet
    are not inspected and yield an analysis without a problem type.

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
    body = first_object(uri, account_id, region)
    if body is None:
        return DataAnalysis(
            failure_reason=f"ClientError: No input data found under S3 prefix {uri}. Check the S3Uri of InputDataConfig."
        )
    content_type = channel.get("ContentType") or "text/csv;header=present"
    if "parquet" in content_type:
        return DataAnalysis()
    return analyze_csv(body, channel["TargetAttributeName"], channel.get("CompressionType"))

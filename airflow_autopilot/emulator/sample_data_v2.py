"""Synthetic data sets of the V2 problem types: weekly demand (forecasting), reviews (text),
labelled images and a fine-tuning set (text generation), as S3 objects by key."""

from __future__ import annotations

import random
import struct
import zlib
from datetime import date, timedelta

#: Weekly demand columns: item id, week start, units sold.
DEMAND_COLUMNS = ("item_id", "week", "demand")


def weekly_demand_csv(items: int = 3, weeks: int = 52, seed: int = 11) -> str:
    """Weekly unit sales of a few products (seasonal, with noise), one row per item and week.

    :param items: number of products.
    :param weeks: weeks of history per product.
    :param seed: random seed (same seed, same data).
    """
    rng = random.Random(seed)
    start = date(2025, 1, 6)  # a Monday
    lines = [",".join(DEMAND_COLUMNS)]
    for item in range(items):
        base = rng.uniform(40, 200)
        for week in range(weeks):
            season = 1 + 0.3 * ((week % 13) / 13)
            units = max(0, round(base * season + rng.gauss(0, base * 0.1)))
            lines.append(f"sku-{item + 1:03d},{start + timedelta(weeks=week)},{units}")
    return "\n".join(lines) + "\n"


def reviews_csv(rows: int = 60, seed: int = 5) -> str:
    """Short product reviews labelled ``positive``/``negative`` (columns ``review``, ``sentiment``).

    :param rows: number of rows.
    :param seed: random seed.
    """
    rng = random.Random(seed)
    good, bad = ("great", "love it", "works well", "excellent"), ("broken", "awful", "returned it", "poor")
    lines = ["review,sentiment"]
    for _ in range(rows):
        positive = rng.random() < 0.5
        lines.append(
            f"{rng.choice(good if positive else bad)} product,{'positive' if positive else 'negative'}"
        )
    return "\n".join(lines) + "\n"


def fine_tuning_csv(rows: int = 20) -> str:
    """Instruction/response pairs (columns ``input``, ``output``) for text generation.

    :param rows: number of rows.
    """
    lines = ["input,output"]
    lines += [f"What is {i} plus {i}?,{2 * i}" for i in range(rows)]
    return "\n".join(lines) + "\n"


def tiny_png(shade: int) -> bytes:
    """A valid 1x1 grey PNG.

    :param shade: grey level 0 to 255.
    """

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    pixels = zlib.compress(bytes([0, shade % 256]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def labelled_images(per_label: int = 3) -> dict[str, bytes]:
    """Images in one folder per label (``cat/``, ``dog/``), keys relative to the channel prefix.

    :param per_label: images per label.
    """
    return {
        f"{label}/{label}-{i}.png": tiny_png(i * 40 + n)
        for n, label in enumerate(("cat", "dog"))
        for i in range(per_label)
    }


def sample_objects() -> dict[str, bytes]:
    """Every V2 sample set by S3 key: ``demand/``, ``reviews/``, ``images/``, ``fine-tuning/``."""
    objects = {
        "demand/weekly_demand.csv": weekly_demand_csv().encode(),
        "reviews/reviews.csv": reviews_csv().encode(),
        "fine-tuning/pairs.csv": fine_tuning_csv().encode(),
    }
    objects.update({f"images/{key}": body for key, body in labelled_images().items()})
    return objects


def upload_v2_samples(bucket: str, aws_conn_id: str | None = "aws_default") -> str:
    """Write :func:`sample_objects` to ``bucket`` (created when missing); return ``s3://<bucket>/``.

    :param bucket: the bucket.
    :param aws_conn_id: the Airflow AWS connection.
    """
    # Here, not at the top: the example DAGs import this module when they are parsed.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=aws_conn_id)
    if not hook.check_for_bucket(bucket):
        hook.create_bucket(bucket_name=bucket)
    for key, body in sample_objects().items():
        hook.load_bytes(body, key=key, bucket_name=bucket, replace=True)
    return f"s3://{bucket}/"


def upload_weekly_demand(
    bucket: str, prefix: str = "demand/train", aws_conn_id: str | None = "aws_default"
) -> str:
    """Write :func:`weekly_demand_csv` to ``s3://<bucket>/<prefix>/weekly_demand.csv`` (bucket created
    when missing); return the S3 prefix URI to give Autopilot.

    :param bucket: the bucket.
    :param prefix: key prefix.
    :param aws_conn_id: the Airflow AWS connection.
    """
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=aws_conn_id)
    if not hook.check_for_bucket(bucket):
        hook.create_bucket(bucket_name=bucket)
    prefix = prefix.strip("/")
    hook.load_string(weekly_demand_csv(), key=f"{prefix}/weekly_demand.csv", bucket_name=bucket, replace=True)
    return f"s3://{bucket}/{prefix}/"

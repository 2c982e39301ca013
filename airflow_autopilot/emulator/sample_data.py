"""Synthetic training data, generated in code, for jobs of every problem type: what the example
DAGs, ``make demo`` and the tests upload to S3 so a job has data to run on without any download."""

from __future__ import annotations

import random
import struct
import zlib
from datetime import date, timedelta

#: The target column.
TARGET = "churn"
#: Column order of the CSV (target last).
COLUMNS = ("age", "tenure_months", "monthly_charges", "support_calls", "contract", TARGET)


def churn_rows(rows: int = 300, seed: int = 7) -> list[dict[str, object]]:
    """
    Synthetic customers: churn is likelier with short tenure, many support calls and a monthly contract.

    :param rows: number of rows.
    :param seed: random seed (same seed, same data).
    """
    rng = random.Random(seed)
    out = []
    for _ in range(rows):
        tenure = rng.randint(1, 72)
        calls = rng.randint(0, 9)
        contract = rng.choice(("month", "year", "two-year"))
        charges = round(rng.uniform(20, 120), 2)
        risk = 0.5 * (calls / 9) + 0.3 * (1 - tenure / 72) + (0.2 if contract == "month" else 0.0)
        out.append(
            {
                "age": rng.randint(18, 80),
                "tenure_months": tenure,
                "monthly_charges": charges,
                "support_calls": calls,
                "contract": contract,
                TARGET: "yes" if risk + rng.uniform(-0.15, 0.15) > 0.45 else "no",
            }
        )
    return out


def churn_csv(rows: int = 300, seed: int = 7) -> str:
    """The data set as CSV text with a header (``text/csv;header=present``).

    :param rows: number of rows.
    :param seed: random seed (same seed, same data).
    """
    lines = [",".join(COLUMNS)]
    lines += [",".join(str(row[c]) for c in COLUMNS) for row in churn_rows(rows, seed)]
    return "\n".join(lines) + "\n"


def feature_line(row: int = 0, seed: int = 7) -> str:
    """One row's features as a headerless CSV line (what an Autopilot endpoint takes).

    :param row: index of the row, from 0.
    :param seed: random seed of the data set.
    """
    record = churn_rows(row + 1, seed)[row]
    return ",".join(str(record[c]) for c in COLUMNS if c != TARGET)


def upload_sample_data(
    bucket: str, prefix: str = "churn/train", aws_conn_id: str | None = "aws_default", rows: int = 300
) -> str:
    """
    Write the CSV to ``s3://<bucket>/<prefix>/churn.csv``, creating the bucket when missing.

    :param bucket: the bucket.
    :param prefix: key prefix (no trailing slash needed).
    :param aws_conn_id: the Airflow AWS connection.
    :param rows: number of rows.
    :return: the S3 prefix URI to give Autopilot (``s3://<bucket>/<prefix>/``).
    """
    return upload(bucket, prefix, {"churn.csv": churn_csv(rows).encode()}, aws_conn_id)


def scoring_csv(rows: int = 20, seed: int = 11) -> str:
    """New customers to score: headerless CSV of the feature columns (no target), as batch transform takes.

    :param rows: number of rows.
    :param seed: random seed (another seed than the training data's gives other customers).
    """
    return "".join(",".join(str(r[c]) for c in COLUMNS if c != TARGET) + "\n" for r in churn_rows(rows, seed))


def upload_scoring_data(
    bucket: str, prefix: str, aws_conn_id: str | None = "aws_default", rows: int = 20, seed: int = 11
) -> str:
    """
    Write :func:`scoring_csv` to ``s3://<bucket>/<prefix>/customers.csv``, creating the bucket when missing.

    :return: the S3 prefix to score (``s3://<bucket>/<prefix>/``).
    """
    return upload(bucket, prefix, {"customers.csv": scoring_csv(rows, seed).encode()}, aws_conn_id)


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


def upload_weekly_demand(
    bucket: str, prefix: str = "demand/train", aws_conn_id: str | None = "aws_default"
) -> str:
    """Write :func:`weekly_demand_csv` to ``s3://<bucket>/<prefix>/weekly_demand.csv`` (bucket created
    when missing); return the S3 prefix URI to give Autopilot.

    :param bucket: the bucket.
    :param prefix: key prefix.
    :param aws_conn_id: the Airflow AWS connection.
    """
    return upload(bucket, prefix, {"weekly_demand.csv": weekly_demand_csv().encode()}, aws_conn_id)


def upload(
    bucket: str, prefix: str, objects: dict[str, bytes], aws_conn_id: str | None = "aws_default"
) -> str:
    """Write ``objects`` (by key below ``prefix``) to ``bucket``, created when missing.

    :param bucket: the bucket.
    :param prefix: key prefix (no trailing slash needed; empty for the bucket's top).
    :param objects: the content of each object, by key relative to ``prefix``.
    :param aws_conn_id: the Airflow AWS connection.
    :return: the S3 prefix URI (``s3://<bucket>/<prefix>/``).
    """
    # Here, not at the top: the example DAGs import this module when they are parsed.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=aws_conn_id)
    if not hook.check_for_bucket(bucket):
        hook.create_bucket(bucket_name=bucket)
    prefix = prefix.strip("/")
    for key, body in objects.items():
        hook.load_bytes(body, key=f"{prefix}/{key}" if prefix else key, bucket_name=bucket, replace=True)
    return f"s3://{bucket}/{prefix}/" if prefix else f"s3://{bucket}/"

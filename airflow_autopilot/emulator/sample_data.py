"""A synthetic churn data set (binary target ``churn``) for the example DAGs and ``make demo``."""

from __future__ import annotations

import random

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
    # Here, not at the top: the example DAGs import this module when they are parsed.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=aws_conn_id)
    if not hook.check_for_bucket(bucket):
        hook.create_bucket(bucket_name=bucket)
    prefix = prefix.strip("/")
    hook.load_string(churn_csv(rows), key=f"{prefix}/churn.csv", bucket_name=bucket, replace=True)
    return f"s3://{bucket}/{prefix}/"


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
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=aws_conn_id)
    if not hook.check_for_bucket(bucket):
        hook.create_bucket(bucket_name=bucket)
    prefix = prefix.strip("/")
    hook.load_string(scoring_csv(rows, seed), key=f"{prefix}/customers.csv", bucket_name=bucket, replace=True)
    return f"s3://{bucket}/{prefix}/"

"""Input checks of the V2-only problem types against the data in moto's S3 (time series, text,
images, text generation); each returns the job's ``FailureReason`` or ``None``."""

from __future__ import annotations

import csv
import statistics
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from airflow_autopilot.emulator import data

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
#: Columns a text-generation (fine-tuning) dataset must have.
TEXT_GENERATION_COLUMNS = ("input", "output")
#: Rows of a CSV the checks read at most (the emulator is about shapes, not statistics).
MAX_ROWS = 100_000


def bucket_ok(uri: str, account_id: str, region: str) -> bool:
    """Whether the bucket of ``uri`` exists.

    :param uri: any S3 URI.
    :param account_id: the caller's account.
    :param region: the caller's region.
    """
    return data.bucket_exists(uri, account_id, region)


def frequency_seconds(frequency: str) -> float:
    """The length of one step of a ``ForecastFrequency`` such as ``W``, ``2D`` or ``15min``, in seconds.

    :param frequency: a valid ForecastFrequency.
    """
    unit = "min" if frequency.endswith("min") else frequency[-1]
    count = frequency[: -len(unit)] or "1"
    return int(count) * _FREQUENCY_SECONDS[unit]


def _rows(
    channel: dict[str, Any], account_id: str, region: str
) -> Iterator[tuple[list[str], list[str], str]]:
    """Yield ``(header, row, where)`` of every CSV object of the channel."""
    uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
    objects = data.input_objects(uri, account_id, region)
    if not objects:
        raise data.InputDataError(f"ClientError: No input data found under S3 prefix {uri}.")
    budget = [data.MAX_INPUT_BYTES]
    for key in objects:
        where = f" ({key.name})" if len(objects) > 1 else ""
        lines = data.text_lines(
            data.csv_chunks(data.object_chunks(key), channel.get("CompressionType")), budget
        )
        reader = csv.reader(lines, strict=True)
        try:
            header = [h.strip() for h in next(reader, [])]
            if not header:
                raise data.InputDataError(f"ClientError: The input data file{where} is empty.")
            for number, row in enumerate(reader):
                if number >= MAX_ROWS:
                    break
                yield header, row, where
        except csv.Error as err:
            raise data.InputDataError(
                f"ClientError: Could not parse the input data{where} as CSV: {err}."
            ) from err


def _require_columns(header: list[str], columns: list[str], where: str, what: str) -> None:
    missing = [c for c in columns if c not in header]
    if missing:
        raise data.InputDataError(
            f"ClientError: Could not find the {what} column(s) {missing} in the header of the input data{where}. "
            f"Columns found: {', '.join(header)}."
        )


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("/", "-"))


def _time_series(config: dict[str, Any], channel: dict[str, Any], account_id: str, region: str) -> None:
    ts = config["TimeSeriesConfig"]
    target, stamp, item = (
        ts["TargetAttributeName"],
        ts["TimestampAttributeName"],
        ts["ItemIdentifierAttributeName"],
    )
    columns = [target, stamp, item, *(ts.get("GroupingAttributeNames") or [])]
    series: dict[str, list[datetime]] = {}
    checked: set[str] = set()
    for header, row, where in _rows(channel, account_id, region):
        if where not in checked:
            _require_columns(header, columns, where, "time-series")
            checked.add(where)
        values = dict(zip(header, row, strict=False))
        if not values.get(item, "").strip():
            continue
        raw_target = values.get(target, "").strip()
        if raw_target:
            try:
                float(raw_target)
            except ValueError:
                raise data.InputDataError(
                    f"ClientError: The target column '{target}' must be numeric; found {raw_target!r}{where}."
                ) from None
        try:
            when = _parse_time(values.get(stamp, ""))
        except ValueError:
            raise data.InputDataError(
                f"ClientError: The timestamp column '{stamp}' holds {values.get(stamp)!r}{where}, "
                "which is not a timestamp (use yyyy-MM-dd or yyyy-MM-dd HH:mm:ss)."
            ) from None
        series.setdefault(values[item], []).append(when)
    if not series:
        raise data.InputDataError(f"ClientError: The item identifier column '{item}' has no values.")
    frequency = config["ForecastFrequency"]
    expected = frequency_seconds(frequency)
    gaps = []
    for stamps in series.values():
        ordered = sorted(set(stamps))
        gaps += [(b - a).total_seconds() for a, b in zip(ordered, ordered[1:], strict=False)]
    if gaps:
        typical = statistics.median(gaps)
        if not 0.9 * expected <= typical <= 1.1 * expected:
            raise data.InputDataError(
                f"ClientError: ForecastFrequency {frequency} does not match the data: its timestamps are "
                f"typically {typical / 86400:g} days apart, where {frequency} means {expected / 86400:g} days."
            )
    longest = max(len(set(s)) for s in series.values())
    horizon = int(config["ForecastHorizon"])
    if longest < 2 * horizon:
        raise data.InputDataError(
            f"ClientError: ForecastHorizon {horizon} is too long for the data: the longest series has "
            f"{longest} time steps; it needs at least twice the horizon."
        )


def _labelled_text(config: dict[str, Any], channel: dict[str, Any], account_id: str, region: str) -> None:
    content, label = config["ContentColumn"], config["TargetLabelColumn"]
    labels: set[str] = set()
    checked: set[str] = set()
    for header, row, where in _rows(channel, account_id, region):
        if where not in checked:
            _require_columns(header, [content, label], where, "text classification")
            checked.add(where)
        value = dict(zip(header, row, strict=False)).get(label, "").strip()
        if value:
            labels.add(value)
    if len(labels) < 2:
        raise data.InputDataError(
            f"ClientError: The label column '{label}' needs at least two distinct labels."
        )


def _images(channel: dict[str, Any], account_id: str, region: str) -> None:
    source = channel["DataSource"]["S3DataSource"]
    uri = source["S3Uri"]
    objects = data.input_objects(uri, account_id, region)
    if not objects:
        raise data.InputDataError(f"ClientError: No input data found under S3 prefix {uri}.")
    if source.get("S3DataType") in ("ManifestFile", "AugmentedManifestFile"):
        return  # a manifest lists images and labels itself
    _, prefix = data.split_s3_uri(uri)
    labels = set()
    for key in objects:
        relative = key.name[len(prefix) :].lstrip("/")
        if "/" in relative and relative.lower().endswith(_IMAGE_SUFFIXES):
            labels.add(relative.split("/", 1)[0])
    if len(labels) < 2:
        raise data.InputDataError(
            f"ClientError: Image classification with S3Prefix input needs images in one folder per label "
            f"({uri}<label>/<image>.jpg|png), at least two labels; found {sorted(labels) or 'none'}."
        )


def _text_generation(channel: dict[str, Any], account_id: str, region: str) -> None:
    checked: set[str] = set()
    rows = 0
    for header, _row, where in _rows(channel, account_id, region):
        if where not in checked:
            _require_columns(header, list(TEXT_GENERATION_COLUMNS), where, "fine-tuning")
            checked.add(where)
        rows += 1
    if not rows:
        raise data.InputDataError("ClientError: The fine-tuning dataset has no rows.")


def check_input(
    config_key: str, config: dict[str, Any], channel: dict[str, Any], account_id: str, region: str
) -> str | None:
    """Check a V2 job's training channel against its problem type; return the FailureReason, if any.

    Parquet input is not inspected.

    :param config_key: the ``AutoMLProblemTypeConfig`` member.
    :param config: its value.
    :param channel: the training channel.
    :param account_id: the caller's account.
    :param region: the caller's region.
    """
    uri = channel["DataSource"]["S3DataSource"]["S3Uri"]
    if not data.bucket_exists(uri, account_id, region):
        bucket, _ = data.split_s3_uri(uri)
        return f"ClientError: The input S3 bucket '{bucket}' does not exist."
    if "parquet" in (channel.get("ContentType") or ""):
        return None
    try:
        if config_key == "TimeSeriesForecastingJobConfig":
            _time_series(config, channel, account_id, region)
        elif config_key == "TextClassificationJobConfig":
            _labelled_text(config, channel, account_id, region)
        elif config_key == "ImageClassificationJobConfig":
            _images(channel, account_id, region)
        elif config_key == "TextGenerationJobConfig":
            _text_generation(channel, account_id, region)
    except data.InputDataError as err:
        return str(err)
    return None

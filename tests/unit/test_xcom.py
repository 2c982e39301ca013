from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from airflow_autopilot.core.job import AutopilotJob
from airflow_autopilot.core.xcom import job_summary, to_json_safe


def test_datetimes_become_iso_strings_with_timezone():
    aware = datetime(2024, 5, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
    naive = datetime(2024, 5, 1, 12, 30)
    out = to_json_safe({"A": aware, "B": naive, "C": [naive]})
    assert out == {
        "A": "2024-05-01T12:30:00+02:00",
        "B": "2024-05-01T12:30:00+00:00",
        "C": ["2024-05-01T12:30:00+00:00"],
    }
    assert datetime.fromisoformat(out["B"]).tzinfo is not None


def test_numbers_stay_numbers_and_metadata_dropped():
    out = to_json_safe(
        {
            "ResponseMetadata": {"RequestId": "x"},
            "Value": Decimal("0.5"),
            "Count": Decimal("3"),
            "Flag": True,
            "F": 1.5,
        }
    )
    assert out == {"Value": 0.5, "Count": 3, "Flag": True, "F": 1.5}
    assert isinstance(out["Count"], int)
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("bad", [b"bytes", object(), {1, 2}, float("nan"), Decimal("Infinity")])
def test_non_json_values_raise_instead_of_repr(bad):
    with pytest.raises(TypeError, match=r"\$\.X"):
        to_json_safe({"X": bad})


def test_job_summary_is_json_safe_and_keyed_like_sagemaker():
    end = datetime(2024, 1, 2, tzinfo=timezone.utc)
    job = AutopilotJob.from_describe(
        {
            "AutoMLJobName": "j1",
            "AutoMLJobArn": "arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1",
            "AutoMLJobStatus": "Completed",
            "AutoMLJobSecondaryStatus": "MaxCandidatesReached",
            "EndTime": end,
            "PartialFailureReasons": [{"PartialFailureMessage": "one candidate failed"}],
            "BestCandidate": {
                "CandidateName": "c-1",
                "FinalAutoMLJobObjectiveMetric": {"MetricName": "F1", "Value": 0.9, "Type": "Maximize"},
            },
            "ResponseMetadata": {},
        }
    )
    summary = job_summary(job)
    assert summary == {
        "AutoMLJobName": "j1",
        "AutoMLJobArn": "arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1",
        "AutoMLJobStatus": "Completed",
        "AutoMLJobSecondaryStatus": "MaxCandidatesReached",
        "EndTime": "2024-01-02T00:00:00+00:00",
        "FailureReason": None,
        "PartialFailureReasons": ["one candidate failed"],
        "BestCandidateName": "c-1",
        "BestCandidateObjectiveMetric": {"MetricName": "F1", "Value": 0.9, "Type": "Maximize"},
        "AutoMLProblemTypeConfigName": None,
    }
    assert json.loads(json.dumps(summary)) == summary


def test_a_summary_from_less_than_a_describe_shows_only_what_its_source_showed():
    from airflow_autopilot.core.waits.job import from_hand_off, hand_off

    row = {
        "AutoMLJobName": "j1",
        "AutoMLJobArn": "arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1",
        "AutoMLJobStatus": "Completed",
        "AutoMLJobSecondaryStatus": "Completed",
        "CreationTime": datetime(2024, 1, 1, tzinfo=timezone.utc),
        "LastModifiedTime": datetime(2024, 1, 2, tzinfo=timezone.utc),
        "EndTime": datetime(2024, 1, 2, tzinfo=timezone.utc),
    }
    listed = job_summary(AutopilotJob.from_list_summary(row))
    assert listed == {
        "AutoMLJobName": "j1",
        "AutoMLJobArn": "arn:aws:sagemaker:us-east-1:123456789012:automl-job/j1",
        "AutoMLJobStatus": "Completed",
        "AutoMLJobSecondaryStatus": "Completed",
        "EndTime": "2024-01-02T00:00:00+00:00",
        "FailureReason": None,
        "PartialFailureReasons": [],
        "ObservedIn": "ListAutoMLJobs",
    }
    described = AutopilotJob.from_describe({**row, "BestCandidate": {"CandidateName": "c-1"}}, "v2")
    handed = job_summary(from_hand_off(json.loads(json.dumps(hand_off(described)))))
    assert handed["ObservedIn"] == "hand-off" and handed["AutoMLJobStatus"] == "Completed"
    assert "BestCandidateName" not in handed  # the hand-off carries no BestCandidate
    assert "ObservedIn" not in job_summary(described) and job_summary(described)["BestCandidateName"] == "c-1"


# --- bounds: deep or huge values fail clearly, not with RecursionError or MemoryError -------------
@pytest.mark.parametrize(
    "text",
    [
        "[" * 100_000 + "]" * 100_000,
        '{"a": ' * 50_000 + "1" + "}" * 50_000,
        "(" * 100_000 + "1" + ")" * 100_000,
        "[" * 100_000,  # unbalanced, still too deep
    ],
    ids=["json-lists", "json-dicts", "python-parentheses", "unclosed"],
)
def test_deeply_nested_text_is_refused_with_a_clear_error(text):
    from airflow_autopilot.core.xcom import MAX_XCOM_DEPTH, XComTextError, parse_xcom_text

    with pytest.raises(XComTextError, match=f"best_candidate: nested more than {MAX_XCOM_DEPTH} levels deep"):
        parse_xcom_text(text, "best_candidate")


def test_brackets_inside_strings_do_not_count_as_nesting():
    from airflow_autopilot.core.xcom import parse_xcom_text

    text = json.dumps({"note": "[" * 1000, "escaped": 'a \\" [[[ "', "ok": [[1]]})
    assert parse_xcom_text(text, "f")["ok"] == [[1]]
    assert parse_xcom_text(repr({"k": "{{{" * 100, "q": "it's ["}), "f")["q"] == "it's ["


def test_oversized_text_is_refused_before_parsing():
    from airflow_autopilot.core.xcom import MAX_XCOM_TEXT_CHARS, XComTextError, parse_xcom_text

    with pytest.raises(XComTextError, match="characters of text; at most"):
        parse_xcom_text("[" + "1," * MAX_XCOM_TEXT_CHARS + "1]", "best_candidate")


def test_parse_mapping_turns_bound_errors_into_input_errors():
    from airflow_autopilot.core.promotion import PromotionInputError, parse_mapping

    with pytest.raises(PromotionInputError, match="best_candidate: not a dict.*nested more than"):
        parse_mapping("[" * 100_000 + "]" * 100_000, "best_candidate")


def test_to_json_safe_refuses_cycles_and_extreme_depth_by_path():
    from airflow_autopilot.core.xcom import MAX_XCOM_DEPTH

    cycle: dict = {"a": 1}
    cycle["self"] = cycle
    with pytest.raises(TypeError, match=r"\$\.self\.self.*nested more than"):
        to_json_safe(cycle)
    deep: list = []
    node = deep
    for _ in range(10_000):
        node.append([])
        node = node[0]
    with pytest.raises(TypeError, match="nested more than"):
        to_json_safe(deep)
    ok: list = []
    node = ok
    for _ in range(MAX_XCOM_DEPTH - 1):
        node.append([])
        node = node[0]
    assert to_json_safe(ok) == ok

"""Smoke tests without AWS: validating the parameters, choosing rows, serialising them, reading and
checking the answers, and the JSON-safe result."""

from __future__ import annotations

import json

import pytest

from airflow_autopilot.core.clock import ManualClock
from airflow_autopilot.core.promotion import PromotionInputError
from airflow_autopilot.core.smoke import (
    CSV,
    JSON_LINES,
    MAX_ROWS,
    InvocationError,
    check_answer,
    for_model,
    parse_answer,
    request_body,
    response_keys_of,
    rows_from_text,
    run_smoke_test,
    smoke_test_from,
)

KEYS = ["predicted_label", "probability"]


def spec(**changes):
    params = {
        "rows": [["1", "2.5", "a"]],
        "response_keys": KEYS,
        "labels": ["no", "yes"],
        "accept": JSON_LINES,
    }
    params.update(changes)
    return smoke_test_from(**params)


# --- parameters ----------------------------------------------------------------------------------
def test_inline_rows_from_lists_csv_lines_and_rendered_text():
    assert spec(rows=[[1, 2.5, "a"], '3,4,"b,c"']).rows == (("1", "2.5", "a"), ("3", "4", "b,c"))
    assert spec(rows='[["1", "2"]]').rows == (("1", "2"),)  # a template rendered the list
    assert spec(rows=[["1"], ["2"], ["3"]], row_count=2).rows == (("1",), ("2",))
    assert spec(rows=[["1"]] * 7).row_count == 7  # inline rows: all of them by default


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"row_count": 0}, "row_count: 0 must be a whole number of rows from 1 to 100"),
        ({"row_count": MAX_ROWS + 1}, "row_count: 101 must be a whole number"),
        ({"row_count": 2.5}, "row_count: 2.5 must be a whole number"),
        ({"row_count": "inf"}, "row_count: 'inf' must be a whole number"),
        ({"max_latency_ms": 0}, "max_latency_ms: 0 must be a number of milliseconds greater than 0"),
        ({"max_latency_ms": "fast"}, "max_latency_ms: 'fast' must be a number of milliseconds"),
        ({"content_type": "application/json"}, "content_type: 'application/json' must be one of text/csv"),
        ({"accept": "text/plain"}, "accept: 'text/plain' must be one of"),
        ({"rows": []}, "rows: an empty list sends nothing"),
        ({"rows": [["1"]] * (MAX_ROWS + 1)}, "rows: 101 rows; a smoke test sends at most 100"),
        ({"rows": [[]]}, "rows[0]: [] must be a CSV line or a non-empty list"),
        ({"rows": [["1", True]]}, "rows[0]: ['1', True] must be a CSV line"),
        ({"rows": None}, "give exactly one: inline rows, or an S3 object"),
        ({"source_uri": "s3://b/k"}, "give exactly one"),
        ({"rows": None, "source_uri": "b/k"}, "rows_s3_uri: 'b/k' must be an s3://bucket/key URI"),
        ({"response_keys": [""]}, "expected_response_keys: [''] must be a list of non-empty strings"),
        ({"labels": [1]}, "expected_labels: [1] must be a list of non-empty strings"),
    ],
)
def test_bad_parameters_named_with_their_rule(changes, message):
    with pytest.raises(PromotionInputError) as caught:
        spec(**changes)
    assert message in str(caught.value)


def test_every_problem_reported_at_once_with_a_prefix():
    with pytest.raises(PromotionInputError) as caught:
        smoke_test_from(rows=[], row_count=0, max_latency_ms=-1, prefix="smoke_test.")
    assert len(caught.value.errors) == 3
    assert all(e.startswith("smoke_test.") for e in caught.value.errors)


def test_defaults():
    test = smoke_test_from(source_uri="s3://bucket/validation.csv", target_attribute_name="churn")
    assert (test.row_count, test.content_type, test.accept) == (5, CSV, None)
    assert test.response_keys is None and test.labels is None
    assert test.max_latency_ms is None and test.rows is None


def test_the_served_model_gives_the_keys_their_order_and_the_default_accept():
    containers = [
        {"Environment": {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "application/x-recordio-protobuf"}},
        {"Environment": {"SAGEMAKER_INFERENCE_OUTPUT": "probability,predicted_label"}},
    ]
    test = for_model(spec(response_keys=None, accept=None), containers)
    assert test.response_keys == test.answer_keys == ("probability", "predicted_label")
    assert test.accept == CSV  # a content type the smoke test cannot read falls back to CSV
    assert parse_answer("0.7,yes", CSV, test.keys_listed())[0] == {
        "probability": "0.7",
        "predicted_label": "yes",
    }
    containers[0]["Environment"]["SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"] = JSON_LINES
    assert for_model(spec(response_keys=None, accept=None), containers).accept == JSON_LINES
    given = for_model(spec(response_keys=["predicted_label"], accept=CSV), containers)
    assert (given.response_keys, given.accept) == (("predicted_label",), CSV)
    bare = for_model(spec(response_keys=None), [{"Image": "x"}])
    assert bare.response_keys == ("predicted_label",) and bare.answer_keys is None


def test_response_keys_come_from_the_last_container_that_sets_them():
    containers = [
        {"Environment": {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label"}},
        {"Environment": {"SAGEMAKER_INFERENCE_OUTPUT": "predicted_label, probability"}},
        {"Image": "x"},
    ]
    assert response_keys_of(containers) == KEYS
    assert response_keys_of([{"Image": "x"}]) is None


# --- rows ----------------------------------------------------------------------------------------
def test_rows_from_text_drop_the_target_and_take_the_first_rows():
    text = "age,churn,plan\n30,yes,basic\n41,no,pro\n52,no,basic\n"
    rows = rows_from_text(text, count=2, target_attribute_name="churn")
    assert rows == [("30", "basic"), ("41", "pro")]
    assert rows_from_text("1,2\n3,4\n", count=5, target_attribute_name=None) == [("1", "2"), ("3", "4")]


def test_a_truncated_head_drops_its_partial_last_line():
    assert rows_from_text("a,t\n1,x\n2,y\n3,", count=9, target_attribute_name="t", truncated=True) == [
        ("1",),
        ("2",),
    ]


def test_rows_from_text_errors_name_the_source():
    with pytest.raises(PromotionInputError, match="'churn' is not a column of the header of s3://b/k"):
        rows_from_text("a,b\n1,2\n", count=1, target_attribute_name="churn", source="s3://b/k")
    with pytest.raises(PromotionInputError, match="s3://b/k has no data rows"):
        rows_from_text("a,churn\n", count=1, target_attribute_name="churn", source="s3://b/k")


def test_request_bodies_in_each_content_type():
    row = ("1", "b,c", 'say "hi"')
    assert request_body(row, CSV) == '1,"b,c","say ""hi"""'
    assert json.loads(request_body(row, JSON_LINES)) == {"features": list(row)}


# --- answers -------------------------------------------------------------------------------------
def test_answers_read_from_json_lines_and_csv():
    assert parse_answer('{"predicted_label": "yes", "probability": 0.8}\n', JSON_LINES, KEYS) == (
        {"predicted_label": "yes", "probability": 0.8},
        [],
    )
    keys = [*KEYS, "probabilities", "labels"]
    answer, problems = parse_answer("yes,0.8,\"[0.2, 0.8]\",\"['no', 'yes']\"", CSV, keys)
    assert problems == [] and answer == {
        "predicted_label": "yes",
        "probability": "0.8",
        "probabilities": [0.2, 0.8],
        "labels": ["no", "yes"],
    }


@pytest.mark.parametrize(
    ("body", "accept", "problem"),
    [
        ("", JSON_LINES, "empty answer"),
        ("not json", JSON_LINES, "answer is not JSON Lines"),
        ('{"probability": NaN}', JSON_LINES, "answer is not JSON Lines"),
        ("[1, 2]", JSON_LINES, "answer is not a JSON object"),
        ("yes", CSV, "answer has 1 CSV values, expected 2 (predicted_label, probability)"),
    ],
)
def test_unreadable_answers(body, accept, problem):
    answer, problems = parse_answer(body, accept, KEYS)
    assert answer is None and len(problems) == 1 and problems[0].startswith(problem)


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"probability": 0.5}, "response key 'predicted_label' missing"),
        ({"predicted_label": "maybe", "probability": 0.5}, "predicted_label 'maybe' is not one of"),
        ({"predicted_label": "yes", "probability": 1.5}, "probability 1.5 is not a number in [0, 1]"),
        ({"predicted_label": "yes", "probability": "x"}, "probability 'x' is not a number in [0, 1]"),
        ({"predicted_label": "yes", "probability": 1, "probabilities": [0.5, -1]}, "probabilities [0.5, -1]"),
        (
            {"predicted_label": "yes", "probability": 1, "probabilities": [1.0]},
            "1 values for 2 known classes",
        ),
        (
            {"predicted_label": "yes", "probability": 1, "labels": ["no", "cat"]},
            "labels ['no', 'cat'] are not",
        ),
    ],
)
def test_answer_checks(answer, problem):
    problems = check_answer(answer, spec())
    assert len(problems) == 1 and problem in problems[0]


def test_a_good_answer_passes_and_labels_are_unchecked_without_known_classes():
    good = {
        "predicted_label": "yes",
        "probability": 0.9,
        "probabilities": [0.1, 0.9],
        "labels": ["no", "yes"],
    }
    assert check_answer(good, spec()) == []
    assert check_answer({"predicted_label": "maybe", "probability": 0.1}, spec(labels=None)) == []


# --- the run -------------------------------------------------------------------------------------
def test_run_records_answers_failures_and_latency():
    clock = ManualClock()
    replies = iter(
        [
            (0.010, '{"predicted_label": "yes", "probability": 0.9}'),
            (0.030, '{"predicted_label": "yes", "probability": 2}'),
            (0.020, InvocationError("Received client error (400): boom")),
        ]
    )
    sent = []

    def invoke(body):
        sent.append(body)
        seconds, reply = next(replies)
        clock.advance(seconds)
        if isinstance(reply, Exception):
            raise reply
        return reply

    seen = []
    test = spec(rows=[["1", "a"], ["2", "b"], ["3", "c"]], max_latency_ms=25)
    result = run_smoke_test(
        test, test.rows, invoke, endpoint_name="ep", clock=clock, on_answer=lambda i, e: seen.append(i)
    )
    assert sent == ["1,a", "2,b", "3,c"] and seen == [0, 1, 2]
    assert not result.passed
    out = result.to_dict()
    json.dumps(out)  # JSON-safe
    assert out["rows_sent"] == 3 and out["failures"] == 2
    assert out["latency_ms"] == {"p50": 20.0, "max": 30.0}
    assert [f["index"] for f in out["failed_rows"]] == [1, 2]
    assert out["answers"][0]["problems"] == []
    assert out["failed_rows"][0]["problems"] == [
        "probability 2 is not a number in [0, 1]",
        "took 30 ms, over max_latency_ms 25",
    ]
    assert out["failed_rows"][1]["answer"] is None
    assert out["failed_rows"][1]["problems"] == ["the model answered with an error"]
    assert out["failed_rows"][1]["raw"] == "error: Received client error (400): boom"
    report = result.failure_report()
    assert "row 1: 2,b -> " in report and "row 2: 3,c -> error: Received client error" in report
    assert result.summary().startswith("1/3 rows answered as expected by ep (latency p50 20.0 ms")


def test_all_good_answers_pass_and_other_errors_propagate():
    test = spec(rows=[["1"]])
    result = run_smoke_test(
        test, test.rows, lambda body: '{"predicted_label": "no", "probability": 0.6}', endpoint_name="ep"
    )
    assert result.passed and result.to_dict()["failed_rows"] == []

    def broken(body):
        raise ConnectionError("network down")

    with pytest.raises(ConnectionError):  # a transient fault is not the model's failure
        run_smoke_test(test, test.rows, broken, endpoint_name="ep")


def test_a_failure_report_is_bounded():
    test = spec(rows=[["1"]] * 8)
    result = run_smoke_test(test, test.rows, lambda body: "{}", endpoint_name="ep")
    assert result.failure_report(limit=5).endswith("... and 3 more (see the XCom smoke_test result)")
    assert run_smoke_test(test, [], lambda b: "", endpoint_name="ep").passed is False

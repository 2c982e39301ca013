from __future__ import annotations

import pytest

from airflow_autopilot.core.job import (
    ALL_SECONDARY_STATUSES,
    ALL_STATUSES,
    FAILURE_STATUSES,
    TERMINAL_STATUSES,
    AutopilotJob,
    WaitCriteria,
    metric_direction,
)


def job(status, secondary, **extra):
    return AutopilotJob.from_describe(
        {"AutoMLJobName": "j", "AutoMLJobStatus": status, "AutoMLJobSecondaryStatus": secondary, **extra}
    )


def test_status_sets():
    assert TERMINAL_STATUSES == {"Completed", "Failed", "Stopped"}
    assert "Stopped" in FAILURE_STATUSES
    assert len(ALL_SECONDARY_STATUSES) == 19


@pytest.mark.parametrize(
    ("status", "secondary", "extra", "expected"),
    [
        ("InProgress", "ModelTuning", {}, "waiting"),
        ("Stopping", "Stopping", {}, "waiting"),
        ("Completed", "Completed", {"BestCandidate": {"CandidateName": "c"}}, "success"),
        ("Completed", "MaxAutoMLJobRuntimeReached", {"BestCandidate": {"CandidateName": "c"}}, "success"),
        ("Completed", "MaxAutoMLJobRuntimeReached", {}, "failure"),  # no model came out of it
        ("Stopped", "Stopped", {}, "failure"),
        ("Failed", "Failed", {}, "failure"),
        (
            "Completed",
            "ModelDeploymentError",
            {"ModelDeployConfig": {"AutoGenerateEndpointName": True}},
            "failure",
        ),
        ("Completed", "ModelDeploymentError", {"BestCandidate": {"CandidateName": "c"}}, "success"),
    ],
)
def test_default_verdicts(status, secondary, extra, expected):
    assert WaitCriteria().verdict(job(status, secondary, **extra)) == expected


def test_target_secondary_ends_early_and_failure_secondary_fails():
    crit = WaitCriteria.build(target_secondary_statuses=["CandidateDefinitionsGenerated", "ModelTuning"])
    assert crit.verdict(job("InProgress", "ModelTuning")) == "success"
    assert crit.verdict(job("InProgress", "AnalyzingData")) == "waiting"
    crit = WaitCriteria.build(failure_secondary_statuses=["ExplainabilityError"])
    assert crit.verdict(job("Completed", "ExplainabilityError")) == "failure"


def test_terminal_status_outside_both_sets_is_failure():
    crit = WaitCriteria.build(failure_statuses=["Failed"])
    assert crit.verdict(job("Stopped", "Stopped")) == "failure"


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"success_statuses": ["Done"]}, "success_statuses: unknown"),
        ({"target_secondary_statuses": ["Training"]}, "target_secondary_statuses: unknown"),
        ({"success_statuses": ["Completed"], "failure_statuses": ["Completed"]}, "overlap"),
        ({"success_statuses": []}, "success_statuses: must not be empty"),
    ],
)
def test_criteria_errors_name_the_parameter(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        WaitCriteria.build(**kwargs)


def test_criteria_round_trip():
    crit = WaitCriteria.build(target_secondary_statuses=["ModelTuning"])
    assert WaitCriteria.from_dict(crit.to_dict()) == crit


def test_failure_message_holds_every_reason():
    j = job(
        "Failed",
        "Failed",
        FailureReason="ClientError: target column 'y' not found",
        PartialFailureReasons=[{"PartialFailureMessage": "p1"}, {"PartialFailureMessage": "p2"}],
    )
    msg = j.failure_message()
    assert "'j'" in msg and "Failed/Failed" in msg
    assert "target column 'y' not found" in msg and "p1" in msg and "p2" in msg


def test_v1_and_v2_views():
    v1 = AutopilotJob.from_describe(
        {
            "AutoMLJobName": "a",
            "AutoMLJobStatus": "InProgress",
            "AutoMLJobConfig": {"CompletionCriteria": {"MaxCandidates": 7}},
            "ResolvedAttributes": {"ProblemType": "Regression", "AutoMLJobObjective": {"MetricName": "MSE"}},
        }
    )
    assert (v1.problem_type, v1.objective_metric, v1.objective_direction, v1.max_candidates) == (
        "Regression",
        "MSE",
        "Minimize",
        7,
    )
    v2 = AutopilotJob.from_describe(
        {
            "AutoMLJobName": "b",
            "AutoMLJobStatus": "InProgress",
            "AutoMLJobObjective": {"MetricName": "AUC"},
            "AutoMLProblemTypeConfig": {
                "TabularJobConfig": {
                    "ProblemType": "BinaryClassification",
                    "CompletionCriteria": {"MaxCandidates": 3},
                }
            },
        },
        "v2",
    )
    assert (v2.problem_type, v2.objective_direction, v2.max_candidates, v2.api_version) == (
        "BinaryClassification",
        "Maximize",
        3,
        "v2",
    )


def test_metric_direction():
    assert metric_direction("RMSE") == "Minimize"
    assert metric_direction("F1") == "Maximize"


@pytest.mark.parametrize("status", sorted(ALL_STATUSES))
@pytest.mark.parametrize("secondary", sorted(ALL_SECONDARY_STATUSES))
@pytest.mark.parametrize("deploy", [False, True], ids=["no-deploy", "deploy"])
def test_every_status_combination_is_classified(status, secondary, deploy):
    """All 5 x 19 x 2 combinations, with a best candidate present: the default verdict follows the rules."""
    extra = {"BestCandidate": {"CandidateName": "c"}}
    if deploy:
        extra["ModelDeployConfig"] = {"AutoGenerateEndpointName": True}
    verdict = WaitCriteria().verdict(job(status, secondary, **extra))
    if status in FAILURE_STATUSES or (secondary == "ModelDeploymentError" and deploy):
        expected = "failure"
    elif status == "Completed":
        expected = "success"
    else:  # InProgress and Stopping never end a default wait, whatever the secondary status says
        expected = "waiting"
    assert verdict == expected
    # A terminal job is never left waiting, under any criteria.
    if status in TERMINAL_STATUSES:
        assert WaitCriteria.build(success_statuses=["Completed"], failure_statuses=["Failed"]).verdict(
            job(status, secondary, **extra)
        ) in ("success", "failure")


def test_a_status_given_as_one_string_is_one_status_not_its_characters():
    crit = WaitCriteria.build(success_statuses="Completed", target_secondary_statuses="ModelTuning")
    assert crit.success_statuses == frozenset({"Completed"})
    assert crit.target_secondary_statuses == frozenset({"ModelTuning"})
    with pytest.raises(ValueError, match=r"success_statuses: unknown status\(es\) \['Complete'\]"):
        WaitCriteria.build(success_statuses="Complete")

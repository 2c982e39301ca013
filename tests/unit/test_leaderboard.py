"""The Candidates operator's leaderboard table (pure formatting)."""

from __future__ import annotations

from airflow_autopilot.operators import format_leaderboard


def test_leaderboard_table_layout():
    table = format_leaderboard(
        [
            {
                "CandidateName": "c-best",
                "FinalAutoMLJobObjectiveMetric": {"MetricName": "F1", "Value": 0.9123456},
                "CandidateStatus": "Completed",
                "CreationTime": "2024-01-01T00:00:00+00:00",
                "EndTime": "2024-01-01T01:02:03+00:00",
            },
            {"CandidateName": "c-two", "CandidateStatus": "Failed"},
        ]
    ).splitlines()
    assert table[0].split() == ["#", "CandidateName", "Metric", "Value", "Status", "Training", "time"]
    assert table[2].split() == ["1", "c-best", "F1", "0.912346", "Completed", "1h02m03s"]
    assert table[3].split() == ["2", "c-two", "-", "-", "Failed", "-"]

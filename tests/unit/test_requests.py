"""Building the CreateAutoMLJob request's tags from ``tags``, ``extras["Tags"]`` and ours (pure, no AWS)."""

from __future__ import annotations

from airflow_autopilot.core.fields.automl import CREATE_AUTOML_JOB
from airflow_autopilot.core.naming import OWNER_TAG_KEY, TryChain
from airflow_autopilot.core.requests import merge_tags

OWNER = TryChain("d", "t", "r").owner_tag


def request_tags(**params):
    request, errors = CREATE_AUTOML_JOB.build({"job_name": "j", "owner_tag": OWNER, **params})
    return request.get("Tags"), errors


def test_merge_keeps_first_position_and_last_value():
    merged = merge_tags(
        [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "1"}],
        None,
        [{"Key": "b", "Value": "2"}, {"Key": "c", "Value": "2"}],
    )
    assert merged == [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}, {"Key": "c", "Value": "2"}]


def test_extras_tags_merge_with_the_parameter_and_ours_come_last():
    tags, errors = request_tags(
        tags={"team": "ml", "env": "dev"},
        extras={"Tags": [{"Key": "env", "Value": "prod"}], "AutoMLJobConfig": {"Mode": "ENSEMBLING"}},
    )
    assert errors == []
    assert tags == [{"Key": "team", "Value": "ml"}, {"Key": "env", "Value": "prod"}, OWNER]


def test_extras_tags_alone_keep_the_owner_tag():
    request, errors = CREATE_AUTOML_JOB.build(
        {"job_name": "j", "owner_tag": OWNER, "extras": {"Tags": {"team": "ml"}}}
    )
    assert errors == [] and request["Tags"] == [{"Key": "team", "Value": "ml"}, OWNER]


def test_reserved_keys_are_errors_in_both_places():
    _, errors = request_tags(
        tags={OWNER_TAG_KEY: "x"}, extras={"Tags": [{"Key": "airflow-autopilot:stopped-by", "Value": "y"}]}
    )
    assert len(errors) == 2
    assert errors[0].startswith("tags: the key 'airflow-autopilot:owner' is reserved")
    assert errors[1].startswith("extras['Tags']: the key 'airflow-autopilot:stopped-by' is reserved")

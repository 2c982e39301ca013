"""Deterministic job names and try chains (pure, no AWS)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_autopilot.core.naming import (
    MAX_NAME_PREFIX_LENGTH,
    OWNER_TAG_KEY,
    STOPPED_BY_TAG_KEY,
    TryChain,
    deterministic_job_name,
    existing_job_action,
    fixed_job_name,
    name_prefix_from,
    owner_token_of,
)
from airflow_autopilot.core.validation import job_name_errors

STARTED = datetime(2024, 1, 1, 0, 5, tzinfo=timezone.utc)


def context(
    *, max_tries, retries, map_index=-1, run_id="scheduled__2024-01-01T00:00:00+00:00", started=STARTED
):
    task = SimpleNamespace(retries=retries)
    ti = SimpleNamespace(
        dag_id="d", task_id="t", run_id=run_id, map_index=map_index, max_tries=max_tries, task=task
    )
    return {"ti": ti, "dag_run": SimpleNamespace(run_id=run_id, start_date=started, run_after=STARTED)}


def test_retries_share_a_chain_and_a_clear_starts_a_new_one():
    # first run: max_tries == retries; every retry of it keeps max_tries
    first = TryChain.from_context(context(max_tries=3, retries=3))
    # the DAG file's retries edited between tries: Airflow keeps the task instance's max_tries
    assert TryChain.from_context(context(max_tries=3, retries=1)) == first
    # cleared after try 2: Airflow sets max_tries = try_number + retries = 5
    cleared = TryChain.from_context(context(max_tries=5, retries=3))
    assert first.owner_token != cleared.owner_token
    assert deterministic_job_name(first) != deterministic_job_name(cleared)


def test_another_run_instance_with_the_same_run_id_is_another_chain():
    first = TryChain.from_context(context(max_tries=1, retries=1))
    again = TryChain.from_context(context(max_tries=1, retries=1, started=STARTED + timedelta(days=3)))
    assert first.run_started == "2024-01-01T00:05:00+00:00"
    assert again.run_id == first.run_id and again.owner_token != first.owner_token
    # the same instant in another time zone, or naive (UTC), is the same run instance
    local = STARTED.astimezone(timezone(timedelta(hours=2)))
    assert TryChain.from_context(context(max_tries=1, retries=1, started=local)) == first
    naive = STARTED.replace(tzinfo=None)
    assert TryChain.from_context(context(max_tries=1, retries=1, started=naive)) == first
    # without a start date the run's run_after identifies it
    assert TryChain.from_context(context(max_tries=1, retries=1, started=None)).run_started == (
        STARTED.isoformat()
    )


def test_generations_get_new_valid_names():
    chain = TryChain("d", "train", "r", run_started="x", max_tries=2)
    names = [deterministic_job_name(chain, generation=n) for n in range(4)]
    assert names[0] == deterministic_job_name(chain) and len(set(names)) == 4
    assert all(n.startswith("train-") and job_name_errors(n) == [] for n in names)
    assert fixed_job_name("churn-job", 0) == "churn-job"
    assert fixed_job_name("churn-job", 2) == "churn-job-r2"
    assert fixed_job_name("a" * 31 + "-b", 12) == "a" * 28 + "-r12"  # cut, no double hyphen


@given(
    name=st.from_regex(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}", fullmatch=True).filter(lambda n: len(n) <= 32),
    generation=st.integers(0, 99),
)
def test_fixed_names_of_any_generation_stay_valid(name, generation):
    assert job_name_errors(fixed_job_name(name, generation)) == []


CHAIN = TryChain("d", "t", "r", run_started="s", max_tries=1)
OURS = CHAIN.owner_tag
MARK = {"Key": STOPPED_BY_TAG_KEY, "Value": "on_kill of try 1"}
OTHER = TryChain("d", "t", "r", run_started="another", max_tries=1).owner_tag


@pytest.mark.parametrize(
    ("status", "tags", "action"),
    [
        ("InProgress", [OURS], "reattach"),
        ("Stopped", [OURS], "reattach"),  # stopped by someone else: the wait fails, as it should
        ("Stopped", [OURS, MARK], "next"),  # stopped by our on_kill: a new job
        ("Stopping", [MARK, OURS], "next"),
        ("InProgress", [OURS, MARK], "reattach-unmark"),  # the stop never got through
        ("Completed", [OURS, MARK], "reattach-unmark"),
        ("Failed", [OURS, MARK], "reattach-unmark"),
        ("Stopped", [OTHER, MARK], "conflict"),
        ("InProgress", [], "conflict"),
    ],
)
def test_existing_job_action(status, tags, action):
    assert existing_job_action(status, tags, CHAIN) == action


def test_unmapped_map_index_none_is_minus_one():
    assert TryChain.from_context(context(max_tries=0, retries=0, map_index=None)).map_index == -1


def test_name_shape():
    chain = TryChain("dag", "Train_Churn.Model", "run")
    name = deterministic_job_name(chain)
    assert name.startswith("train-churn-model-") and len(name) == len("train-churn-model-") + 12
    assert deterministic_job_name(chain) == name  # stable
    assert deterministic_job_name(chain, "emu-success").startswith("emu-success-")
    assert owner_token_of([{"Key": "x", "Value": "1"}, chain.owner_tag]) == chain.owner_token
    assert owner_token_of([]) is None and chain.owner_tag["Key"] == OWNER_TAG_KEY


@given(
    dag_id=st.text(min_size=1, max_size=250),
    task_id=st.text(min_size=1, max_size=250),
    run_id=st.text(min_size=1, max_size=250),
    map_index=st.integers(-1, 10_000),
    max_tries=st.integers(0, 1000),
    generation=st.integers(0, 100),
    prefix=st.one_of(st.none(), st.text(max_size=60)),
)
def test_generated_names_are_always_valid(dag_id, task_id, run_id, map_index, max_tries, generation, prefix):
    chain = TryChain(dag_id, task_id, run_id, map_index, "2024-01-01T00:00:00+00:00", max_tries)
    name = deterministic_job_name(chain, prefix, generation)
    assert job_name_errors(name) == []
    assert len(name_prefix_from(prefix or task_id)) <= MAX_NAME_PREFIX_LENGTH


@given(
    st.lists(
        st.tuples(st.text(max_size=5), st.text(max_size=5), st.integers(-1, 3)),
        min_size=2,
        max_size=2,
        unique=True,
    )
)
def test_different_identities_get_different_names(identities):
    names = {deterministic_job_name(TryChain("d", task, run, idx)) for task, run, idx in identities}
    assert len(names) == 2

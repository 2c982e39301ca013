"""Deterministic job names and try chains (pure, no AWS)."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given
from hypothesis import strategies as st

from airflow_autopilot.core.naming import (
    MAX_NAME_PREFIX_LENGTH,
    OWNER_TAG_KEY,
    TryChain,
    deterministic_job_name,
    name_prefix_from,
    owner_token_of,
)
from airflow_autopilot.core.validation import job_name_errors


def context(*, max_tries, retries, map_index=-1, run_id="scheduled__2024-01-01T00:00:00+00:00"):
    task = SimpleNamespace(retries=retries)
    ti = SimpleNamespace(
        dag_id="d", task_id="t", run_id=run_id, map_index=map_index, max_tries=max_tries, task=task
    )
    return {"ti": ti}


def test_retries_share_a_chain_and_a_clear_starts_a_new_one():
    # first run: max_tries == retries; every retry of it keeps max_tries
    first = TryChain.from_context(context(max_tries=3, retries=3))
    assert first.first_try_number == 1
    # cleared after try 2: Airflow sets max_tries = try_number + retries = 5, next try is 3
    cleared = TryChain.from_context(context(max_tries=5, retries=3))
    assert cleared.first_try_number == 3
    assert first.owner_token != cleared.owner_token
    assert deterministic_job_name(first) != deterministic_job_name(cleared)


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
    first_try=st.integers(1, 1000),
    prefix=st.one_of(st.none(), st.text(max_size=60)),
)
def test_generated_names_are_always_valid(dag_id, task_id, run_id, map_index, first_try, prefix):
    name = deterministic_job_name(TryChain(dag_id, task_id, run_id, map_index, first_try), prefix)
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

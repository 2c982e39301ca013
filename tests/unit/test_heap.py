"""The triggerer's heap freeze: which processes freeze, that it happens once, and what it moves."""

from __future__ import annotations

import gc
import threading

import pytest

from airflow_autopilot.aio.heap import FREEZE_ENV, HeapFreezer, in_triggerer


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/opt/airflow/bin/airflow", "triggerer", "--skip-serve-logs"], True),
        (["/usr/lib/python3/site-packages/airflow/__main__.py", "triggerer"], True),
        (["airflow", "celery", "worker"], False),
        (["airflow", "scheduler"], False),
        (["pytest", "tests/", "-k", "triggerer"], False),
        (["airflow"], False),
        ([], False),
    ],
)
def test_only_an_airflow_triggerer_command_line_counts_as_a_triggerer(argv, expected):
    assert in_triggerer(argv) is expected


def recording_freezer(argv, environ) -> tuple[HeapFreezer, list[str]]:
    calls: list[str] = []
    return HeapFreezer(argv=argv, environ=environ, freeze=lambda: calls.append("freeze")), calls


@pytest.mark.parametrize(
    ("argv", "setting", "froze"),
    [
        (["airflow", "triggerer"], None, True),
        (["airflow", "triggerer"], "false", False),
        (["airflow", "triggerer"], " OFF ", False),
        (["airflow", "triggerer"], "0", False),
        (["airflow", "celery", "worker"], None, False),
        (["airflow", "celery", "worker"], "true", True),
        (["python", "my_runner.py"], "1", True),
        # Anything else falls back to the default: freeze in a triggerer only.
        (["python", "my_runner.py"], "sometimes", False),
        (["airflow", "triggerer"], "sometimes", True),
    ],
)
def test_the_setting_overrides_the_triggerer_default(argv, setting, froze):
    environ = {} if setting is None else {FREEZE_ENV: setting}
    freezer, calls = recording_freezer(argv, environ)
    assert freezer.freeze_once() is froze
    assert calls == (["freeze"] if froze else [])
    assert freezer.frozen is froze


def test_a_process_freezes_once_however_many_threads_ask():
    freezer, calls = recording_freezer(["airflow", "triggerer"], {})
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        freezer.freeze_once()

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["freeze"]
    assert freezer.freeze_once() is False and calls == ["freeze"]


def test_the_real_freeze_moves_the_live_heap_out_of_every_later_collection():
    long_lived = [{"key": [i]} for i in range(5000)]  # 10,000 tracked objects
    before = gc.get_freeze_count()
    try:
        assert HeapFreezer(argv=["airflow", "triggerer"], environ={}).freeze_once()
        frozen = gc.get_freeze_count() - before
        assert frozen >= 2 * len(long_lived)
        # A full collection no longer walks them: they are not in any generation.
        tracked = {id(o) for o in gc.get_objects()}
        assert id(long_lived[0]) not in tracked and id(long_lived[-1]["key"]) not in tracked
        made_after = {"key": ["later"]}
        assert id(made_after) in {id(o) for o in gc.get_objects()}
    finally:
        gc.unfreeze()  # the test process goes back to collecting everything
    assert id(long_lived[0]) in {id(o) for o in gc.get_objects()}

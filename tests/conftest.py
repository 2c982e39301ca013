"""
Shared test set-up: an isolated Airflow home and SQLite database per test process, the fixtures and
constants the unit, integration and system tests share, and the hypothesis profiles (see
docs/development.md). Builders that are not fixtures live in ``tests/helpers.py``.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import gc
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_HOME = tempfile.mkdtemp(prefix="autopilot-airflow-home-")
# Each test process's Airflow home (its SQLite database, task logs) goes when the process ends.
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
if "PYTEST_XDIST_WORKER" in os.environ:
    # A parallel worker inherits the controller's environment: each gets its own home (task logs,
    # airflow.cfg) as it gets its own database below.
    os.environ["AIRFLOW_HOME"] = _HOME
else:
    os.environ.setdefault("AIRFLOW_HOME", _HOME)
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# The hooks' boto3 sessions share one botocore data loader, so SageMaker's service model is parsed
# once per process rather than once per hook (the Amazon provider's documented session-factory
# setting, read when the provider is first imported; see airflow_autopilot/hooks/sessions.py).
os.environ["AIRFLOW__AWS__SESSION_FACTORY"] = "airflow_autopilot.hooks.sessions.SharedLoaderSessionFactory"


import pytest  # noqa: E402

# The Amazon provider names a hook's caller in each new client's user agent by walking the stack
# (inspect.stack()), which scans every loaded module for each frame whose file no module claims:
# tens of milliseconds a client, and the tests create hundreds. A pytest-xdist worker runs its test
# loop from xdist/remote.py, executed as a script; imported here as a module too, its frames are
# matched at once (a third of the walk's cost). Nothing is patched.
with contextlib.suppress(ImportError):
    import xdist.remote  # noqa: E402, F401

from airflow_autopilot.demo.airflow_versions import allow_sqlite_in_unit_test_mode  # noqa: E402
from airflow_autopilot.demo.examples import example_dags_folder  # noqa: E402

allow_sqlite_in_unit_test_mode()

# Each test process holds millions of long-lived objects (Airflow, moto, botocore's service models),
# which the cyclic garbage collector would otherwise walk again at every full collection, and
# collect young objects every 700 allocations. Collections here are rarer and skip what exists
# once the tests are collected (gc.freeze, in pytest_collection_finish below): a fifth less CPU.
gc.set_threshold(50_000, 20, 20)


def pytest_collection_finish(session):
    """Move everything loaded so far (the test modules included) out of the collector's sight."""
    gc.collect()
    gc.freeze()


def pytest_sessionfinish(session):
    """
    Freeze again once the tests have run: pytest's last check for unraisable exceptions starts
    with a full collection (two, in a worker), which would otherwise walk everything the tests left
    behind (Airflow's, moto's and botocore's caches), a second or more of CPU a process at the end
    of the run. Each test's own check, after its setup, call and teardown, is unchanged.
    """
    gc.freeze()


# `make test` runs hypothesis' default profile; `make test-all` passes --hypothesis-profile=full: the
# fault suites at full size (tests/system/test_fault_suite.py) and 1,000 examples for every @given.
# (scripts/test-wheel.sh runs a few test files with this conftest and without hypothesis.)
try:
    from hypothesis import settings
except ImportError:
    pass
else:
    settings.register_profile("full", max_examples=1000)


def pytest_asyncio_loop_factories(config, item):
    """Tests marked ``emulated_time`` run on the emulator's clock (tests/emulated_time.py)."""
    if item.get_closest_marker("emulated_time"):
        from tests.emulated_time import EmulatedTimeLoop

        return {"emulated_time": EmulatedTimeLoop}
    return {"asyncio": asyncio.new_event_loop}


@contextmanager
def _loggers_kept(loggers: list[logging.Logger]) -> Iterator[None]:
    """Give ``loggers`` back their handlers, level, propagation and disabled flag afterwards."""
    saved = [(log, list(log.handlers), log.level, log.propagate, log.disabled) for log in loggers]
    try:
        yield
    finally:
        for log, handlers, level, propagate, disabled in saved:
            log.handlers[:] = handlers
            log.setLevel(level)
            log.propagate, log.disabled = propagate, disabled


@pytest.fixture(autouse=True)
def restore_airflow_task_logger() -> Iterator[None]:
    """
    Each test starts with the ``airflow.task`` logger as it was: Airflow 2's ``dag.test()`` stops
    its propagation (so the operators' lines no longer reach the console handler) and adds a
    handler writing to the ``sys.stdout`` of its moment, a test's capture, for the rest of the
    process.
    """
    with _loggers_kept([logging.getLogger("airflow.task")]):
        yield


@pytest.fixture(scope="session")
def airflow_db() -> str:
    """An initialised Airflow metadata database (SQLite), for ``dag.test()`` runs."""
    from airflow.utils.db import initdb

    # Alembic's logging set-up (a fileConfig) replaces the root logger's handlers and level: on
    # Airflow 2 the operators' lines would then miss the console for the rest of the process.
    with _loggers_kept([logging.getLogger(), *map(logging.getLogger, list(logging.root.manager.loggerDict))]):
        initdb()
    _share_in_process_execution_api()
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


def _share_in_process_execution_api() -> None:
    """
    One in-process execution API for every ``dag.test()`` task of the process, as Airflow 3.3 keeps
    (``functools.lru_cache`` on ``in_process_api_server``): Airflow 3.0 to 3.2 build a new one for
    each task, and its versioned routes take seconds of CPU to build each time.
    """
    try:
        from airflow.sdk.execution_time import supervisor
    except ImportError:  # Airflow 2: no in-process execution API
        return
    server = getattr(supervisor, "in_process_api_server", None)
    if server is not None and not hasattr(server, "cache_info"):
        supervisor.in_process_api_server = functools.lru_cache(maxsize=1)(server)


@pytest.fixture(scope="session")
def run_dag(airflow_db):
    """
    Run a DAG object with the real ``dag.test()`` and return ``(dag_run, xcoms)``: see
    :func:`airflow_autopilot.demo.runner.run_dag`.
    """
    from airflow_autopilot.demo.runner import run_dag

    return run_dag


ROOT = Path(__file__).resolve().parents[1]
#: The installed package's example DAGs: dags/ in an editable install, site-packages from a wheel.
DAGS = example_dags_folder()
#: botocore config with its retries off, so that this package's own retry logic is what is tested
ONE_ATTEMPT = {"retries": {"total_max_attempts": 1, "mode": "standard"}}
TRAINING_CSV = "age,income,churn\n" + "".join(
    f"{20 + i % 50},{1000 + 37 * i},{'yes' if i % 3 else 'no'}\n" for i in range(60)
)
DATA_BUCKET = "autopilot-test-data"
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerAutopilot"


def job_request(name: str, *, target: str = "churn", tags: dict[str, str] | None = None, **overrides):
    """A valid CreateAutoMLJob request over the data ``make_job`` uploads."""
    request = {
        "AutoMLJobName": name,
        "InputDataConfig": [
            {
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{DATA_BUCKET}/train/"}
                },
                "TargetAttributeName": target,
            }
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{DATA_BUCKET}/output"},
        "RoleArn": ROLE_ARN,
    }
    if tags:
        request["Tags"] = [{"Key": k, "Value": v} for k, v in tags.items()]
    request.update(overrides)
    return request


def emulator_client(service: str, endpoint_url: str | None = None) -> Any:
    """
    A plain boto3 client for the tests' own calls to the emulator: in-process (moto intercepts every
    botocore client while a mock is active), or the server at ``endpoint_url`` (or
    ``AWS_ENDPOINT_URL``). One per service and endpoint for the test process, as building a client
    costs tens of milliseconds and the tests create hundreds of jobs.
    """
    return _emulator_client(service, endpoint_url or os.environ.get("AWS_ENDPOINT_URL"))


@functools.cache
def _emulator_client(service: str, endpoint_url: str | None) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def upload_training_data(endpoint_url: str | None = None, s3: Any = None) -> None:
    """Upload the training CSV to ``s3://DATA_BUCKET/train/`` (in-process, or on ``endpoint_url``)."""
    s3 = s3 or emulator_client("s3", endpoint_url)
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_object(Bucket=DATA_BUCKET, Key="train/data.csv", Body=TRAINING_CSV.encode())


@pytest.fixture(scope="module")
def shared_hook_clients() -> Iterator[None]:
    """
    For a test file that opts in (``pytestmark = pytest.mark.usefixtures("shared_hook_clients")``):
    its hooks reuse one boto3 client per connection, region, botocore config, caller and AWS
    environment (:func:`airflow_autopilot.hooks.sessions.shared_clients`, the hooks' client-factory
    seam) instead of building one per hook. Only for files whose tests register no event handler on
    a hook's client, read no user agent and talk to no network-fault server.
    """
    from airflow_autopilot.hooks.sessions import shared_clients

    with shared_clients():
        yield


@pytest.fixture
def instant_aws_retries(monkeypatch):
    """botocore's standard-mode retries without their backoff sleeps (up to seconds each): tests check
    that botocore retries, not how long it waits."""
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0.0)


@pytest.fixture
def emulated_clock():
    """
    The emulator's clock as the package's default clock for the test
    (:data:`airflow_autopilot.emulator.settings.CLOCK`): every wait built during it (the hooks'
    blocking waits, so the operators' and sensors' too) sleeps by moving that clock instead of
    waiting, and reads its deadlines, grace periods and candidate-count pacing from it.
    """
    from airflow_autopilot.core.clock import clock_in_use
    from airflow_autopilot.emulator import settings

    with clock_in_use(settings.CLOCK):
        yield settings.CLOCK


@pytest.fixture
def make_job(request):
    """
    Create a V1 job on the active emulator (in-process, or the server when the test uses
    ``autopilot_emulator_server``) through real boto3.

    Uploads a small binary-classification CSV first. ``make_job(name, outcome=..., **request_overrides)``
    returns the request used.
    """
    endpoint = None
    if "autopilot_emulator_server" in request.fixturenames:
        endpoint = request.getfixturevalue("autopilot_emulator_server").endpoint_url

    def _make(name: str, *, outcome: str | None = None, tags: dict[str, str] | None = None, **overrides):
        upload_training_data(endpoint)
        tags = dict(tags or {})
        if outcome:
            tags["autopilot-emulator:outcome"] = outcome
        request = job_request(name, tags=tags, **overrides)
        emulator_client("sagemaker", endpoint).create_auto_ml_job(**request)
        return request

    return _make


@pytest.fixture
def server(autopilot_emulator_server, monkeypatch):
    """
    The emulator server with fast stages (0.1 s) and the training CSV uploaded, with plain boto3
    (``make_job``) pointed at it too.
    """
    monkeypatch.setenv("AWS_ENDPOINT_URL", autopilot_emulator_server.endpoint_url)
    autopilot_emulator_server.configure(stage_seconds=0.1)
    upload_training_data(autopilot_emulator_server.endpoint_url)
    return autopilot_emulator_server

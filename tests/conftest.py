"""
Shared test set-up: an isolated Airflow home on SQLite, created once per session; the fixtures and
constants the unit, integration and system tests share, and what keeps the suite fast (one botocore
loader, the emulator's clock, the hypothesis profiles, one interpreter for the import checks; see
docs/development.md). Builders that are not fixtures live in ``tests/helpers.py``.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
import types
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_HOME = tempfile.mkdtemp(prefix="autopilot-airflow-home-")
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

import botocore.client  # noqa: E402
import botocore.hooks  # noqa: E402
import botocore.loaders  # noqa: E402
import botocore.regions  # noqa: E402
import botocore.session  # noqa: E402
import pytest  # noqa: E402
from airflow.providers.amazon.aws.hooks import base_aws  # noqa: E402

from airflow_autopilot._compat import allow_sqlite_in_unit_test_mode  # noqa: E402
from airflow_autopilot.demo.examples import example_dags_folder  # noqa: E402

allow_sqlite_in_unit_test_mode()


class _UniquePaths(list):
    """A loader's search paths: boto3 appends its data folder to each new session's loader."""

    def append(self, path: str) -> None:
        if path not in self:
            super().append(path)


_LOADERS: dict[str | None, botocore.loaders.Loader] = {}


def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    """
    One botocore loader per ``AWS_DATA_PATH`` value for the whole test process, so its instance
    cache keeps the parsed service models: every new boto3/botocore/aiobotocore session (the hooks
    make one each) would otherwise parse SageMaker's model again, most of the suite's CPU time.
    """
    loader = _LOADERS.get(search_path_string)
    if loader is None:
        paths = [
            os.path.expanduser(os.path.expandvars(p)) for p in (search_path_string or "").split(os.pathsep)
        ]
        loader = botocore.loaders.Loader(extra_search_paths=_UniquePaths(p for p in paths if p))
        loader = _LOADERS.setdefault(search_path_string, loader)
    return loader


botocore.session.create_loader = _shared_loader

# What a new client builds from its (shared, unchanging) service data, built once per kind of client:
# its API methods (one per operation, each with a lazy docstring object) and its endpoint-ruleset
# provider (the ruleset parsed into objects). A client class still gets its own dict of them, and
# every session and client its own event handlers, credentials and config.
_METHODS: dict[tuple[Any, ...], dict[str, Any]] = {}
_create_methods = botocore.client.ClientCreator._create_methods


def _shared_methods(self: botocore.client.ClientCreator, service_model: Any) -> dict[str, Any]:
    # Keyed by creator class (botocore's or aiobotocore's async methods) and loader (AWS_DATA_PATH).
    key = (type(self), id(self._loader), service_model.service_name, service_model.api_version)
    if key not in _METHODS:
        _METHODS[key] = _create_methods(self, service_model)
    return dict(_METHODS[key])


botocore.client.ClientCreator._create_methods = _shared_methods  # type: ignore[method-assign]

_PROVIDERS: dict[tuple[Any, ...], tuple[Any, Any, Any]] = {}
_EndpointProvider = botocore.regions.EndpointProvider


def _shared_endpoint_provider(ruleset_data: Any, partition_data: Any, excluded_params: Any = None) -> Any:
    key = (id(ruleset_data), id(partition_data), frozenset(excluded_params or ()))
    hit = _PROVIDERS.get(key)
    if hit is None or hit[0] is not ruleset_data or hit[1] is not partition_data:
        # Older botocore (the floors leg's 1.37) has no excluded_params: pass it only when given.
        extra = {"excluded_params": excluded_params} if excluded_params is not None else {}
        provider = _EndpointProvider(ruleset_data=ruleset_data, partition_data=partition_data, **extra)
        hit = _PROVIDERS[key] = (ruleset_data, partition_data, provider)
    return hit[2]


botocore.regions.EndpointProvider = _shared_endpoint_provider  # type: ignore[misc,assignment]

# Every new session registers a few hundred built-in event handlers, and for each one botocore
# inspects the handler's signature and expands the event name's aliases: both depend only on the
# handler's function and the name, so they are remembered across sessions.
_ACCEPTS_KWARGS: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()
_accepts_kwargs = botocore.hooks.accepts_kwargs


def _remembered_accepts_kwargs(func: Any) -> bool:
    target = getattr(func, "__func__", func)
    if not isinstance(target, types.FunctionType):
        return _accepts_kwargs(func)
    if target not in _ACCEPTS_KWARGS:
        _ACCEPTS_KWARGS[target] = bool(_accepts_kwargs(func))
    return _ACCEPTS_KWARGS[target]


botocore.hooks.accepts_kwargs = _remembered_accepts_kwargs
_DEFAULT_ALIAS_NAMES: dict[str, str] = {}
_aliaser_init = botocore.hooks.EventAliaser.__init__


def _aliaser_with_shared_names(self: Any, event_emitter: Any, event_aliases: Any = None) -> None:
    _aliaser_init(self, event_emitter, event_aliases)
    if event_aliases is None:  # botocore's own aliases: the same expansion in every session
        self._alias_name_cache = _DEFAULT_ALIAS_NAMES


botocore.hooks.EventAliaser.__init__ = _aliaser_with_shared_names  # type: ignore[method-assign]


def _share_aiobotocore_ssl_contexts() -> None:
    """
    aiobotocore builds an SSL context (loading the whole CA bundle) for every new async client; one
    per verify setting is enough here (only for sessions without a client certificate or proxy, the
    cases where the context is not changed after it is built).
    """
    try:
        from aiobotocore.httpsession import AIOHTTPSession
    except ImportError:
        return
    build = getattr(AIOHTTPSession, "_build_ssl_contexts", None)
    if build is None:  # another aiobotocore version: left as it is
        return
    contexts: dict[Any, tuple[Any, Any]] = {}

    def shared(self: Any, proxy_url: Any) -> tuple[Any, Any]:
        if proxy_url or getattr(self, "_cert_file", None) or not isinstance(self._verify, (bool, str)):
            return build(self, proxy_url)
        if self._verify not in contexts:
            contexts[self._verify] = build(self, proxy_url)
        return contexts[self._verify]

    AIOHTTPSession._build_ssl_contexts = shared


_share_aiobotocore_ssl_contexts()


def _frames_only_stack(context: int = 1) -> list[inspect.FrameInfo]:
    """``inspect.stack()`` without the source lines it reads for every frame (none are used below)."""
    frame, frames = sys._getframe(1), []
    while frame is not None:
        code = frame.f_code
        frames.append(inspect.FrameInfo(frame, code.co_filename, frame.f_lineno, code.co_name, None, None))
        frame = frame.f_back
    return frames


# AwsBaseHook names the operator or executor that called it in botocore's user agent by walking
# inspect.stack(), which reads the source of every frame: tens of milliseconds per client under
# pytest's deep stacks and this process's thousands of modules. Same frames, same names, no source.
base_aws.inspect = types.SimpleNamespace(stack=_frames_only_stack, isclass=inspect.isclass)

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


# pytest-xdist work units (``make test`` runs two workers): whole test files, as ``--dist loadfile``,
# except that the files using a fixture whose set-up costs seconds once per process share one unit.
_SHARED_SETUP = {
    "run_dag": "dag.test",  # the first dag.test() warms Airflow's in-process execution API
    "airflow_db": "dag.test",
    "airflow_checks": "airflow-checks",  # an interpreter past ``import airflow``
}


@functools.cache
def _work_unit(path: Path) -> str:
    """The work unit of a test file: its shared set-up's group when its source names the fixture."""
    try:
        source = path.read_text()
    except OSError:
        return str(path)
    for fixture, group in _SHARED_SETUP.items():
        if re.search(rf"\b{fixture}\b", source):
            return group
    return str(path)


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, which a venv may lack
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the work units of :func:`_work_unit` (xdist's own ``loadgroup`` does
    not group on pytest 9.2, whose node ids it can no longer rename)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return _work_unit(config.rootpath / nodeid.split("::", 1)[0])

    return WorkUnits(config, log)


def pytest_collection_modifyitems(config, items):
    """On an xdist worker, the ``dag.test()`` files first: with ``--no-loadscope-reorder`` their
    unit, the longest, is handed out first, and the other worker takes the files in order."""
    if "PYTEST_XDIST_WORKER" in os.environ:
        items.sort(key=lambda item: _work_unit(item.path) != "dag.test")  # stable


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
def _task_logger() -> Iterator[None]:
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

    def run_dag_with_short_idle_sleeps(dag, **test_kwargs):
        # dag.test() sleeps a whole second whenever no task is ready (a sensor rescheduled, a task
        # up for retry): re-check every 0.05 s instead; the run's steps and outcome are the same.
        module = sys.modules[type(dag).test.__module__]
        real = getattr(module, "time", None)
        if real is not time:
            return run_dag(dag, **test_kwargs)
        module.time = types.SimpleNamespace(  # type: ignore[attr-defined]
            **{name: getattr(time, name) for name in dir(time) if not name.startswith("_")}
        )
        module.time.sleep = lambda seconds: time.sleep(min(seconds, 0.05))
        try:
            return run_dag(dag, **test_kwargs)
        finally:
            module.time = time  # type: ignore[attr-defined]

    return run_dag_with_short_idle_sleeps


# One interpreter that has imported ``airflow`` (seconds of CPU) forks a fresh child for each check:
# the child starts where a fresh ``python -c CODE`` would be once it imported airflow, which every
# check run through it does first anyway. Protocol: a JSON job per line on stdin; the child's pid,
# then its exit code, one per line on the pipe named by argv[1] (Airflow logs to stdout).
_FORK_SERVER = r"""
import json, os, sys, traceback

import airflow  # noqa: F401

replies = os.fdopen(int(sys.argv[1]), "w")
for line in sys.stdin:
    job = json.loads(line)
    pid = os.fork()
    if pid == 0:
        for fd, path in ((1, job["stdout"]), (2, job["stderr"])):
            os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        os.environ.update(job["env"])
        sys.argv = ["-c", *job["args"]]
        status = 0
        try:
            exec(compile(job["code"], "<string>", "exec"), {"__name__": "__main__"})
        except SystemExit as exit:
            status = exit.code if isinstance(exit.code, int) else int(exit.code is not None)
        except BaseException:
            traceback.print_exc()
            status = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    print(pid, file=replies, flush=True)
    print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), file=replies, flush=True)
os._exit(0)  # stdin closed: done, without Airflow's exit handlers
"""


class AirflowChecks:
    """Runs Python code as ``python -c CODE ARGS`` would, in a child of one interpreter that has
    already imported ``airflow`` (see ``_FORK_SERVER``); ``env`` is applied after that import."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._jobs = 0
        self._buffer = b""
        self._replies, replies = os.pipe()
        with open(folder / "server.log", "wb") as log:  # the server's own output (each child has files)
            self._server = subprocess.Popen(
                [sys.executable, "-c", _FORK_SERVER, str(replies)],
                stdin=subprocess.PIPE,
                stdout=log,
                stderr=log,
                cwd=ROOT,
                pass_fds=(replies,),
            )
        os.close(replies)

    def _line(self, deadline: float, code: str) -> str:
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._replies], [], [], max(0.0, deadline - time.monotonic()))
            chunk = os.read(self._replies, 4096) if ready else b""
            if not chunk:
                raise (
                    subprocess.TimeoutExpired(code, 0) if not ready else RuntimeError("the fork server died")
                )
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def run(
        self,
        code: str,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 120,
        check: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        self._jobs += 1
        out, err = self._folder / f"{self._jobs}.out", self._folder / f"{self._jobs}.err"
        job = {"code": code, "args": list(args), "env": env or {}, "stdout": str(out), "stderr": str(err)}
        assert self._server.stdin is not None
        self._server.stdin.write(json.dumps(job).encode() + b"\n")
        self._server.stdin.flush()
        deadline = time.monotonic() + timeout
        pid = int(self._line(deadline, code))
        try:
            returncode = int(self._line(deadline, code))
        except subprocess.TimeoutExpired:
            os.kill(pid, signal.SIGKILL)
            raise
        result = subprocess.CompletedProcess(
            ["python", "-c", code, *args], returncode, out.read_text(), err.read_text()
        )
        if check:
            result.check_returncode()
        return result

    def close(self) -> None:
        assert self._server.stdin is not None
        self._server.stdin.close()
        self._server.wait(timeout=30)
        os.close(self._replies)


@pytest.fixture(scope="session")
def airflow_checks(tmp_path_factory) -> Iterator[AirflowChecks]:
    """Fresh interpreters past ``import airflow`` for the import-lightness and DAG-parse checks."""
    checks = AirflowChecks(tmp_path_factory.mktemp("airflow-checks"))
    try:
        yield checks
    finally:
        checks.close()


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


def upload_training_data(endpoint_url: str | None = None, s3: Any = None) -> None:
    """Upload the training CSV to ``s3://DATA_BUCKET/train/`` (in-process, or on ``endpoint_url``)."""
    import boto3

    s3 = s3 or boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint_url)
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_object(Bucket=DATA_BUCKET, Key="train/data.csv", Body=TRAINING_CSV.encode())


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
    import boto3

    endpoint = None
    if "autopilot_emulator_server" in request.fixturenames:
        endpoint = request.getfixturevalue("autopilot_emulator_server").endpoint_url
    clients: dict[str, Any] = {}

    def client(service: str) -> Any:  # one per service for the test: tests create dozens of jobs
        if service not in clients:
            clients[service] = boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)
        return clients[service]

    def _make(name: str, *, outcome: str | None = None, tags: dict[str, str] | None = None, **overrides):
        upload_training_data(endpoint, s3=client("s3"))
        tags = dict(tags or {})
        if outcome:
            tags["autopilot-emulator:outcome"] = outcome
        request = job_request(name, tags=tags, **overrides)
        client("sagemaker").create_auto_ml_job(**request)
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

"""
The system test's deployment: PostgreSQL, the Autopilot emulator and Airflow's own components, each a
separate process on 127.0.0.1, started in a process group of its own, recorded by process id and
stopped (SIGTERM, then SIGKILL) when the test ends, however it ends.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, Protocol

LOOPBACK = "127.0.0.1"
#: Marks every process of one run in its environment, so a leftover can be found by process id.
RUN_MARKER = "AUTOPILOT_SYSTEM_TEST_RUN"
#: The temporary folder of a run starts with this.
TEMP_PREFIX = "autopilot-system-test."


class DeploymentError(RuntimeError):
    """A component could not be installed, started or reached."""


def log(message: str) -> None:
    """Print a progress line with the time since the run began."""
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


STARTED = time.monotonic()


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_until(
    what: str,
    check: Callable[[], Any],
    timeout: float,
    interval: float = 0.5,
    alive: Callable[[], None] | None = None,
) -> Any:
    """
    Call ``check`` until it returns a truthy value and return that value.

    :param what: what is awaited, for the error message.
    :param check: returns a falsy value (or raises) while not ready.
    :param timeout: seconds before :class:`DeploymentError`.
    :param interval: seconds between calls.
    :param alive: raises when a process the wait depends on has died.
    """
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        if alive is not None:
            alive()
        try:
            value = check()
        except Exception as error:  # not ready yet
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise DeploymentError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)


# --- processes -----------------------------------------------------------------------------------
@dataclass
class Started:
    """One process this run started: the leader of a process group of its own."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    stop_signal: int = signal.SIGTERM
    log_file: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None


@dataclass
class Processes:
    """Every process the run starts, by process id; :meth:`stop_all` ends them in reverse order."""

    marker: str
    #: A file listing every process group started (``<pgid> <name>`` a line), so that a later run can
    #: stop them if this run's driver is killed outright.
    registry: Path | None = None
    started: list[Started] = field(default_factory=list)
    groups: list[int] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_path: Path,
        cwd: Path | None = None,
        user: pwd.struct_passwd | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> Started:
        """
        Start ``argv`` in a new session (its own process group), output to ``log_path``.

        :param name: a short name for messages.
        :param argv: the command.
        :param env: its whole environment (the run marker is added).
        :param log_path: where stdout and stderr go.
        :param cwd: working folder.
        :param user: run as this user (when root).
        :param stop_signal: the first signal :meth:`stop` sends.
        """
        log_file = open(log_path, "ab")
        extra: dict[str, Any] = {}
        if user is not None:
            extra = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
        popen = subprocess.Popen(
            list(argv),
            env={**env, RUN_MARKER: self.marker},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **extra,
        )
        process = Started(name, popen, log_path, stop_signal, log_file)
        self.started.append(process)
        self.groups.append(popen.pid)
        if self.registry is not None:
            with open(self.registry, "a") as registry:
                registry.write(f"{popen.pid} {name}\n")
        log(f"started {name} (pid {popen.pid}); output in {log_path.name}")
        return process

    def stop(self, process: Started, *, kill: bool = False, grace: float = 20.0) -> None:
        """
        Stop one process group: ``stop_signal`` (or SIGKILL with ``kill``), then SIGKILL after ``grace``.

        :param process: what :meth:`start` returned.
        :param kill: send SIGKILL at once (an unclean death, as a crash or OOM kill would be).
        :param grace: seconds to wait for a clean exit.
        """
        group = process.pid
        if process.running():
            _signal_group(group, signal.SIGKILL if kill else process.stop_signal)
            try:
                process.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                log(f"{process.name} (pid {group}) did not stop within {grace:.0f}s: SIGKILL")
                _signal_group(group, signal.SIGKILL)
                process.popen.wait(timeout=10)
        # Children that outlived their leader (task processes, a trigger runner) go too.
        _signal_group(group, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while group_members(group) and time.monotonic() < deadline:
            time.sleep(0.1)
        if process.log_file is not None:
            process.log_file.close()
            process.log_file = None
        if process in self.started:
            self.started.remove(process)

    def stop_all(self) -> None:
        """Stop every process still recorded, newest first, then any straggler carrying the run marker."""
        for process in reversed(list(self.started)):
            try:
                self.stop(process)
                log(f"stopped {process.name} (pid {process.pid})")
            except Exception as error:  # keep stopping the others
                log(f"could not stop {process.name} (pid {process.pid}): {error}")
        for pid in marked_processes(self.marker):
            log(f"process {pid} of this run outlived its group: SIGKILL")
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def leftovers(self) -> list[int]:
        """Live processes of this run after :meth:`stop_all`: in one of its groups or carrying its marker."""
        found = set(marked_processes(self.marker))
        for group in self.groups:
            found.update(group_members(group))
        return sorted(found)


def group_members(group: int) -> list[int]:
    """Live (not zombie) processes of a process group, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After the command name: state, ppid, pgrp, ...
        if len(fields) > 2 and int(fields[2]) == group and fields[0] not in ("Z", "X"):
            members.append(int(entry))
    return members


def _signal_group(group: int, sig: int) -> None:
    try:
        os.killpg(group, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run_marker(folder: Path) -> str:
    """The marker of this run: the driver's process id and its temporary folder."""
    return f"{os.getpid()}:{folder}"


def _markers() -> dict[int, str]:
    """Process id -> ``RUN_MARKER`` value, for every process carrying one (this process excluded)."""
    prefix = f"{RUN_MARKER}=".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as environ:
                for item in environ.read().split(b"\0"):
                    if item.startswith(prefix):
                        found[int(entry)] = item[len(prefix) :].decode(errors="replace")
        except OSError:
            continue
    return found


def marked_processes(marker: str) -> list[int]:
    """Process ids whose environment carries ``RUN_MARKER=marker`` (this process excluded)."""
    return [pid for pid, value in _markers().items() if value == marker]


def reap_orphans() -> None:
    """
    Stop what an earlier run left behind when its driver was killed outright (SIGKILL gives it no
    chance to clean up): the process groups in its registry and the processes carrying its marker
    (a process that rewrites its title, as Airflow's API server does, loses its environment, hence
    both), then its temporary folder. A run whose driver still lives is left alone.
    """
    stale: dict[Path, set[int]] = {}
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*"):
        driver = _read(folder / "driver.pid")
        if driver.isdigit() and not Path(f"/proc/{driver}").exists():
            groups = stale.setdefault(folder, set())
            for line in _read(folder / "processes").splitlines():
                if line.split(" ")[0].isdigit():
                    groups.add(int(line.split(" ")[0]))
    for pid, marker in _markers().items():
        driver, _, folder_name = marker.partition(":")
        if driver.isdigit() and not Path(f"/proc/{driver}").exists():
            log(f"process {pid} of an earlier run (driver {driver} is gone): SIGKILL")
            _kill(pid)
            stale.setdefault(Path(folder_name), set())
    for folder, groups in stale.items():
        for group in sorted(groups):
            members = group_members(group)
            if members:
                log(f"process group {group} of an earlier run ({folder.name}): SIGKILL {members}")
                _signal_group(group, signal.SIGKILL)
        if folder.name.startswith(TEMP_PREFIX) and folder.parent == Path(tempfile.gettempdir()):
            shutil.rmtree(folder, ignore_errors=True)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a file ('' when missing)."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


# --- system packages -----------------------------------------------------------------------------
#: The execution role every system test's jobs name (the emulator does not check it).
ROLE_ARN = "arn:aws:iam::123456789012:role/SageMakerAutopilot"
#: A binary classification on F1: what most watch jobs ask for.
BINARY_F1: dict[str, Any] = {
    "ProblemType": "BinaryClassification",
    "AutoMLJobObjective": {"MetricName": "F1"},
}


def put_training_data(s3: Any, bucket: str, rows: int) -> None:
    """Create ``bucket`` with the emulator's churn sample (``rows`` rows) at ``train/churn.csv``."""
    from airflow_autopilot.emulator.sample_data import churn_csv

    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="train/churn.csv", Body=churn_csv(rows).encode())


def create_watch_job(sagemaker: Any, name: str, bucket: str, stage_seconds: str, **extra: Any) -> None:
    """
    Start an Autopilot job "outside Airflow" on the data :func:`put_training_data` put in ``bucket``.

    :param sagemaker: a boto3 SageMaker client of the emulator.
    :param name: the job name.
    :param bucket: the training data's bucket (output goes to ``s3://BUCKET/output``).
    :param stage_seconds: the emulator's seconds per stage for this job (its tag's value).
    :param extra: further CreateAutoMLJob fields (for example :data:`BINARY_F1`).
    """
    sagemaker.create_auto_ml_job(
        AutoMLJobName=name,
        InputDataConfig=[
            {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{bucket}/train/"}},
                "TargetAttributeName": "churn",
            }
        ],
        OutputDataConfig={"S3OutputPath": f"s3://{bucket}/output"},
        RoleArn=ROLE_ARN,
        Tags=[{"Key": "autopilot-emulator:stage-seconds", "Value": stage_seconds}],
        **extra,
    )


def apt_install(packages: Sequence[str], why: str) -> None:
    """
    Install Debian packages with apt-get (root only); ``apt-get update`` first when the lists are stale.

    :param packages: package names.
    :param why: what needs them, for the error message.
    :raises DeploymentError: when they cannot be installed.
    """
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DeploymentError(
            f"{why} needs the Debian packages {' '.join(packages)}; they are missing and this is not a "
            f"Debian system run as root: install them (apt-get install -y {' '.join(packages)}) and run again"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", *packages]
    log(f"installing {' '.join(packages)} (apt-get) for {why}")
    if subprocess.run(command, env=env, stdout=subprocess.DEVNULL).returncode == 0:
        return
    subprocess.run(["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
    result = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise DeploymentError(
            f"{why}: apt-get install {' '.join(packages)} failed (exit {result.returncode}):\n"
            f"{result.stderr.strip()[-2000:]}"
        )


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and postgres, if any."""
    candidates = []
    for initdb in glob.glob("/usr/lib/postgresql/*/bin/initdb"):
        folder = Path(initdb).parent
        version = folder.parent.name
        if (folder / "postgres").exists() and version.isdigit():
            candidates.append((int(version), folder))
    return max(candidates)[1] if candidates else None


def ensure_postgres() -> Path:
    """The PostgreSQL server binaries, installed from Debian's ``postgresql`` package when missing."""
    folder = postgres_bin_dir()
    if folder is None:
        apt_install(["postgresql"], "the system test's PostgreSQL")
        folder = postgres_bin_dir()
    if folder is None:
        raise DeploymentError(
            "PostgreSQL's server binaries (/usr/lib/postgresql/*/bin/initdb and postgres) are still missing "
            "after installing the postgresql package"
        )
    return folder


CHROMIUM_NAMES = ("chromium", "chromium-browser")


def ensure_chromium() -> str:
    """The path of Debian's Chromium, installed (with fonts for the screenshots) when missing."""
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    apt_install(["chromium", "fonts-liberation"], "the browser check")
    for name in CHROMIUM_NAMES:
        path = shutil.which(name)
        if path:
            return path
    raise DeploymentError("chromium is still missing after installing the chromium package")


# --- PostgreSQL ----------------------------------------------------------------------------------
class Postgres:
    """
    A cluster of its own in ``root``: initdb, then ``postgres`` on 127.0.0.1 and a free port, no Unix
    socket, password (SCRAM) authentication. Run as the ``postgres`` user (or ``nobody``) when root,
    because PostgreSQL refuses to run as root.
    """

    USER = "airflow"
    DATABASE = "airflow"

    def __init__(self, root: Path, processes: Processes, bin_dir: Path) -> None:
        self.root = root
        self.processes = processes
        self.bin_dir = bin_dir
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.process: Started | None = None
        self.owner = _postgres_owner()

    @property
    def sqlalchemy_url(self) -> str:
        return f"postgresql+psycopg2://{self.USER}:{self.password}@{LOOPBACK}:{self.port}/{self.DATABASE}"

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run one SQL statement with psql; return its unaligned, tuples-only output."""
        command = [
            str(self.bin_dir / "psql") if (self.bin_dir / "psql").exists() else "psql",
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", LOOPBACK, "-p", str(self.port), "-U", self.USER, "-d", database or self.DATABASE,
            "-c", sql,
        ]  # fmt: skip
        env = {"PATH": os.environ.get("PATH", ""), "PGPASSWORD": self.password, "PGCONNECT_TIMEOUT": "5"}
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise DeploymentError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def start(self) -> None:
        folder = self.root / "postgres"
        data = folder / "data"
        folder.mkdir()
        password_file = folder / "password"
        password_file.write_text(self.password + "\n")
        user_kwargs: dict[str, Any] = {}
        if self.owner is not None:
            for path in (folder, password_file):
                os.chown(path, self.owner.pw_uid, self.owner.pw_gid)
            user_kwargs = {"user": self.owner.pw_uid, "group": self.owner.pw_gid, "extra_groups": []}
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "UTC"}
        initdb = subprocess.run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                self.USER,
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],  # fmt: skip
            env=env,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=180,
            **user_kwargs,
        )
        password_file.unlink()
        if initdb.returncode != 0:
            raise DeploymentError(
                f"initdb failed (exit {initdb.returncode}):\n{initdb.stdout}\n{initdb.stderr}"
            )
        self._serve(data, env, folder)
        self.psql(f"CREATE DATABASE {self.DATABASE}", "postgres")

    def restart(self) -> float:
        """Stop the server (fast shutdown, every client cut off) and start it again on the same data and
        port; return the seconds it was down."""
        assert self.process is not None
        down = time.monotonic()
        self.processes.stop(self.process)
        env = {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8", "TZ": "UTC"}
        folder = self.root / "postgres"
        self._serve(folder / "data", env, folder)
        return time.monotonic() - down

    def _serve(self, data: Path, env: Mapping[str, str], folder: Path) -> None:
        self.process = self.processes.start(
            "postgresql",
            [
                str(self.bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=200",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ],  # fmt: skip
            env=env,
            cwd=folder,
            log_path=self.root / "logs" / "postgresql.log",
            user=self.owner,
            stop_signal=signal.SIGINT,  # PostgreSQL's fast shutdown
        )
        wait_until(
            "PostgreSQL to accept connections",
            lambda: self.psql("SELECT 1", "postgres"),
            60,
            alive=self.alive,
        )

    def alive(self) -> None:
        if self.process is None or not self.process.running():
            raise DeploymentError(f"PostgreSQL exited:\n{tail(self.root / 'logs' / 'postgresql.log')}")


def _postgres_owner() -> pwd.struct_passwd | None:
    """Who runs the cluster: ``None`` (this user) unless root; then ``postgres``, else ``nobody``."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise DeploymentError(
        "running as root and neither a 'postgres' nor a 'nobody' user exists to run PostgreSQL"
    )


# --- Redis (the Celery broker) --------------------------------------------------------------------
def ensure_redis() -> str:
    """The path of ``redis-server``, installed from Debian's ``redis-server`` package when missing."""
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if path is None:
        apt_install(["redis-server"], "the production-topology test's Celery broker")
        path = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(path).exists():
        raise DeploymentError("redis-server is still missing after installing the redis-server package")
    return path


class Redis:
    """``redis-server`` on 127.0.0.1 and a free port, nothing saved to disk, its own process group."""

    def __init__(self, root: Path, processes: Processes, binary: str) -> None:
        self.root = root
        self.processes = processes
        self.binary = binary
        self.port = free_port()
        self.process: Started | None = None

    @property
    def url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        folder = self.root / "redis"
        folder.mkdir(exist_ok=True)
        self.process = self.processes.start(
            "redis",
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                LOOPBACK,
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(folder),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ],  # fmt: skip
            env={"PATH": os.environ.get("PATH", "")},
            cwd=folder,
            log_path=self.root / "logs" / "redis.log",
        )
        wait_until("Redis to accept connections", self.ping, 30, 0.2, alive=self.alive)

    def ping(self) -> bool:
        try:
            with socket.create_connection((LOOPBACK, self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def alive(self) -> None:
        if self.process is None or not self.process.running():
            raise DeploymentError(f"Redis exited:\n{tail(self.root / 'logs' / 'redis.log')}")


# --- the emulator --------------------------------------------------------------------------------
class Emulator:
    """The ``autopilot-emulator`` console command on 127.0.0.1, a separate process."""

    def __init__(self, root: Path, processes: Processes, venv_bin: Path) -> None:
        self.root = root
        self.processes = processes
        self.venv_bin = venv_bin
        self.port = free_port()
        self.process: Started | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, env: Mapping[str, str]) -> None:
        self.process = self.processes.start(
            "autopilot-emulator",
            [str(self.venv_bin / "autopilot-emulator"), "--host", LOOPBACK, "--port", str(self.port)],
            env=env,
            cwd=self.root,
            log_path=self.root / "logs" / "emulator.log",
        )
        wait_until(
            "the emulator to answer",
            lambda: self.control("GET", "request-counts") is not None,
            60,
            alive=self.alive,
        )

    def alive(self) -> None:
        if self.process is None or not self.process.running():
            raise DeploymentError(f"the emulator exited:\n{tail(self.root / 'logs' / 'emulator.log')}")

    def control(self, method: str, route: str, body: Mapping[str, Any] | None = None) -> Any:
        """Call one of the emulator's ``/moto-api/autopilot-emulator/`` control routes."""
        import httpx

        response = httpx.request(
            method, f"{self.endpoint_url}/moto-api/autopilot-emulator/{route}", json=body, timeout=10
        )
        response.raise_for_status()
        return response.json()


# --- Airflow -------------------------------------------------------------------------------------
@dataclass
class Airflow:
    """Airflow's components as separate processes sharing one environment (see :meth:`environment`)."""

    root: Path
    processes: Processes
    venv_bin: Path
    dags_folder: Path
    database_url: str
    aws_connection: str
    poll_seconds: float
    #: Further example-DAG settings (``AUTOPILOT_EXAMPLE_*``) for the dag-processor and the workers.
    example_env: dict[str, str] = field(default_factory=dict)
    #: Settings on top of (or in place of) :meth:`environment`'s, for every component (the
    #: production-topology test's CeleryExecutor, broker and scale limits).
    extra_env: dict[str, str] = field(default_factory=dict)
    #: Niceness by component name prefix (``{"worker": 10}``): what production runs on machines of
    #: its own yields the shared CPUs to the components a test measures (:meth:`command`).
    niceness: dict[str, int] = field(default_factory=dict)
    api_port: int = field(default_factory=free_port)
    components: dict[str, Started] = field(default_factory=dict)
    fernet_key: str = field(default_factory=lambda: _fernet_key())
    jwt_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    api_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def home(self) -> Path:
        return self.root / "airflow-home"

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    def environment(self) -> dict[str, str]:
        """
        The environment every component gets. The AWS connection reaches the workers (the
        scheduler's LocalExecutor children) and the triggerer; the example DAGs' parse-time setting
        (``AUTOPILOT_EXAMPLE_POLL_SECONDS``) reaches the dag-processor and the workers alike.
        """
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW", "AWS_", "AUTOPILOT_", "PYTHON", "VIRTUAL_ENV"))
        }
        return {
            **base,
            "PATH": f"{self.venv_bin}{os.pathsep}{base.get('PATH', '')}",
            "TZ": "UTC",
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "16",
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            # Retries on by default, so that "no retry is burned" means something.
            "AIRFLOW__CORE__DEFAULT_TASK_RETRIES": "2",
            "AIRFLOW__CORE__DEFAULT_TASK_RETRY_DELAY": "5",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url,
            "AIRFLOW__API__HOST": LOOPBACK,
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": f"{self.api_url}/",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": self.api_secret,
            "AIRFLOW__API_AUTH__JWT_SECRET": self.jwt_secret,
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
            "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__LOGGING__COLORED_CONSOLE_LOG": "False",
            "AIRFLOW_CONN_AWS_DEFAULT": self.aws_connection,
            "AUTOPILOT_EXAMPLE_POLL_SECONDS": f"{self.poll_seconds:g}",
            **self.example_env,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            **self.extra_env,
        }

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` command to completion (``db migrate`` ...)."""
        result = subprocess.run(
            [str(self.venv_bin / "airflow"), *args],
            env={**self.environment(), RUN_MARKER: self.processes.marker},
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise DeploymentError(
                f"airflow {' '.join(args)} failed (exit {result.returncode}):\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result

    def migrate(self) -> None:
        self.home.mkdir(exist_ok=True)
        self.airflow("db", "migrate", timeout=600)

    #: Component name -> ``airflow`` arguments. The log servers are skipped: the API server reads
    #: task and trigger logs from the shared local folder, and Airflow's log servers bind every
    #: interface, not the loopback one only.
    COMMANDS: ClassVar[Mapping[str, Sequence[str]]] = {
        "api-server": ("api-server",),  # host and port from AIRFLOW__API__HOST/PORT
        "scheduler": ("scheduler", "--skip-serve-logs"),
        "dag-processor": ("dag-processor",),
        "triggerer": ("triggerer", "--skip-serve-logs"),
    }

    def start(self, name: str) -> Started:
        """Start (or start again) one component; the triggerer's log name counts its starts."""
        count = sum(1 for path in (self.root / "logs").glob(f"{name}*.log"))
        log_path = self.root / "logs" / (f"{name}.log" if count == 0 else f"{name}-{count + 1}.log")
        process = self.processes.start(
            name,
            self.command(name, self.COMMANDS[name]),
            env=self.environment(),
            cwd=self.root,
            log_path=log_path,
        )
        self.components[name] = process
        return process

    def command(self, name: str, args: Sequence[str]) -> list[str]:
        """``airflow ARGS``, under ``nice`` when :attr:`niceness` names a prefix of ``name`` (``nice``
        execs the command: the process id stays the component's, its children inherit it)."""
        nice = next((n for prefix, n in self.niceness.items() if name.startswith(prefix)), 0)
        prefix = ["nice", "-n", str(nice)] if nice else []
        return [*prefix, str(self.venv_bin / "airflow"), *args]

    def start_named(self, name: str, args: Sequence[str], env: Mapping[str, str] | None = None) -> Started:
        """
        Start one more component under a name of its own (a second triggerer, a Celery worker):
        ``airflow ARGS`` with :meth:`environment` plus ``env``, output to ``logs/<name>.log``.

        :param name: the component's name (unique in this run).
        :param args: the ``airflow`` arguments.
        :param env: settings of this process only (its log server port ...).
        """
        process = self.processes.start(
            name,
            self.command(name, args),
            env={**self.environment(), **(env or {})},
            cwd=self.root,
            log_path=self.root / "logs" / f"{name}.log",
        )
        self.components[name] = process
        return process

    def alive(self) -> None:
        """Raise when a component died on its own."""
        for name, process in self.components.items():
            if not process.running():
                raise DeploymentError(
                    f"Airflow's {name} exited (code {process.popen.returncode}):\n{tail(process.log_path)}"
                )


def _fernet_key() -> str:
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def aws_connection(endpoint_url: str, access_key: str, secret_key: str) -> str:
    """
    ``AIRFLOW_CONN_AWS_DEFAULT`` for the emulator (the package's own ``airflow_conn_value``) with the
    given credentials in place of the emulator's defaults.
    """
    from airflow_autopilot.emulator import airflow_conn_value

    value = json.loads(airflow_conn_value(endpoint_url))
    value["login"], value["password"] = access_key, secret_key
    return json.dumps(value)


class Interrupted(BaseException):
    """SIGINT, SIGTERM, SIGHUP or the overall time limit: stop everything and exit."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class _Closable(Protocol):
    def close(self) -> None: ...


class Scenario(Protocol):
    """What :func:`run_scenario` drives: a test of one deployment and its REST API client, once open."""

    @property
    def api(self) -> _Closable | None: ...

    def run(self) -> int: ...

    def dump_logs(self) -> None: ...


def run_scenario(
    args: Any,
    make: Callable[[Path, Processes], Scenario],
    banner: Callable[[Path], str],
) -> int:
    """
    What every system-test script does around its scenario: a time limit and signals that stop it,
    a temporary folder of its own, then, however it ends, its logs when it failed, every process it
    started stopped by process id, and the folder removed (unless ``args.keep``).

    :param args: the parsed arguments (``time_limit``, ``keep``).
    :param make: builds the scenario from its folder and process registry.
    :param banner: the first log line, from the folder.
    :return: the exit status: 0 passed, 1 a check failed, 2 the deployment could not be set up,
        128 + N for signal N.
    """

    def interrupt(signum: int, frame: Any) -> None:
        if signum == signal.SIGALRM:
            raise Interrupted(f"time limit of {args.time_limit}s reached", 1)
        raise Interrupted(f"{signal.Signals(signum).name} received", 128 + signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGALRM):
        signal.signal(sig, interrupt)
    signal.alarm(args.time_limit)

    reap_orphans()
    root = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
    root.chmod(0o755)  # PostgreSQL runs as another user and must reach its folder inside
    (root / "logs").mkdir()
    (root / "driver.pid").write_text(f"{os.getpid()}\n")
    processes = Processes(marker=run_marker(root), registry=root / "processes")
    test = make(root, processes)
    status = 2
    log(banner(root))
    try:
        status = test.run()
    except Interrupted as stop:
        log(f"interrupted: {stop}")
        status = stop.status
    except DeploymentError as error:
        log(f"deployment failed: {error}")
        status = 2
    except Exception:
        traceback.print_exc()
        status = 1
    finally:
        signal.alarm(0)
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # cleaning up is not interrupted
        if status != 0:
            test.dump_logs()
        if test.api is not None:
            test.api.close()
        log("stopping everything this run started")
        processes.stop_all()
        (root / "driver.pid").unlink(missing_ok=True)  # a finished run: nothing for reap_orphans
        left = processes.leftovers()
        if left:
            log(f"processes of this run still alive: {left}")
            status = status or 1
        if args.keep:
            log(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
            log(f"removed {root}")
    return status

"""The CI matrix: one virtualenv per (Airflow, Python) leg, pinned by constraints/<leg>.txt.

`python scripts/matrix.py compile LEG` regenerates a leg's constraints file (uv's resolver);
`python scripts/matrix.py test LEG [pytest args]` builds the leg's venv under .matrix/ and runs the
fast suite there; `python scripts/matrix.py table` prints the README's support table from the
constraints files. docs/development.md explains the legs.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints"
MATRIX = ROOT / ".matrix"
#: uv itself, installed into .tools/ from the package index (pinned for reproducible resolutions).
UV_VERSION = "0.13.9"
TOOLS = ROOT / ".tools"
#: The extras every leg installs; the main leg adds the release and docs tooling and the OpenLineage
#: provider (its tests skip on the other legs).
LEG_EXTRAS = ("test", "emulator")
MAIN_EXTRAS = ("test", "emulator", "dist", "docs", "openlineage")
#: Tests that only the main leg runs (the large generated fault suites, and what needs the release
#: tooling): selected out on the other legs by marker.
OTHER_LEG_MARKERS = "not slow and not main_leg_only"


@dataclass(frozen=True)
class Leg:
    """One (Airflow, Python) combination that CI tests.

    :param name: the leg's name, also its constraints file's stem.
    :param python: the interpreter's minor version, e.g. "3.11".
    :param airflow: the apache-airflow requirement the resolution starts from; None for the
        floors leg, which pins every direct dependency to its declared floor instead.
    :param main: True for the leg `make test` runs (it also carries the dist and docs tools).
    """

    name: str
    python: str
    airflow: str | None
    main: bool = False
    #: Extra requirements of the resolution: what that Airflow release's own constraints cap.
    pins: tuple[str, ...] = ()

    @property
    def constraints(self) -> Path:
        return CONSTRAINTS / f"{self.name}.txt"

    @property
    def extras(self) -> tuple[str, ...]:
        return MAIN_EXTRAS if self.main else LEG_EXTRAS


LEGS = {
    leg.name: leg
    for leg in (
        # The Celery provider, for the production-topology system test (`make system-test-ha`):
        # celery 5.7 drops a name the provider imports, as Airflow's own constraints know.
        Leg(
            "airflow-3.3",
            "3.11",
            "apache-airflow==3.3.*",
            main=True,
            pins=("apache-airflow-providers-celery", "celery[redis]<5.7"),
        ),
        Leg("airflow-3.3-py3.10", "3.10", "apache-airflow==3.3.*"),
        Leg("airflow-3.3-py3.13", "3.13", "apache-airflow==3.3.*"),
        # Caps that these releases' own constraint files give (newer FastAPI, Starlette, Cadwyn,
        # svcs, AnyIO or SQLAlchemy break their execution API or warn in their models); found by
        # running the suite on each leg.
        Leg(
            "airflow-3.2",
            "3.11",
            "apache-airflow==3.2.*",
            pins=("fastapi<0.137", "cadwyn<8", "svcs<26", "sqlalchemy<2.1"),
        ),
        Leg(
            "airflow-3.1",
            "3.11",
            "apache-airflow==3.1.*",
            pins=("starlette<0.48", "sqlalchemy<2.1", "anyio<4.15", "pytest<9.2"),
        ),
        Leg(
            "airflow-3.0",
            "3.11",
            "apache-airflow==3.0.*",
            pins=("fastapi<0.117", "starlette<0.48", "cadwyn<6", "anyio<4.15", "pytest<9.2"),
        ),
        Leg("airflow-2.11", "3.11", "apache-airflow==2.11.*"),
        Leg("floors", "3.10", None),
    )
}
MAIN_LEG = next(leg for leg in LEGS.values() if leg.main)


def find_python(minor: str) -> str:
    """An interpreter of that minor version: under pyenv's versions folder, else on PATH.

    pyenv's shims are skipped: a shim of a version that is not selected fails when run.

    :param minor: e.g. "3.10".
    """
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob(f"{minor}.*/bin/python{minor}"), key=lambda p: p.parts[-3])
    candidates += [Path(p) for p in [shutil.which(f"python{minor}")] if p and "shims" not in p]
    for candidate in candidates:
        probe = subprocess.run([str(candidate), "-c", "import sys; print(sys.version)"], capture_output=True)
        if probe.returncode == 0:
            return str(candidate)
    raise SystemExit(f"no working Python {minor} interpreter found ({pyenv} or PATH)")


def uv() -> str:
    """The pinned uv, installed on first use into .tools/ (a virtualenv of its own)."""
    exe = TOOLS / "bin" / "uv"
    stamp = TOOLS / f".uv-{UV_VERSION}"
    if not stamp.exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(TOOLS)], check=True)
        pip = [str(TOOLS / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        subprocess.run([*pip, f"uv=={UV_VERSION}"], check=True)
        stamp.touch()
    return str(exe)


def declared_floors() -> list[str]:
    """pyproject's runtime dependencies with every `>=` floor turned into an exact pin."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = []
    for requirement in project["dependencies"]:
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+(?:\[[^\]]+\])?)\s*>=\s*([^,;\s]+)(.*)", requirement)
        if not match:
            raise SystemExit(f"pyproject dependency without a plain >= floor: {requirement!r}")
        pins.append(f"{match[1]}=={match[2]}{match[3]}")
    return pins


def compile_leg(leg: Leg) -> None:
    """Resolve the leg's full pin set into constraints/<leg>.txt."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = Path(tmp) / "leg.txt"
        requirements = [leg.airflow] if leg.airflow else declared_floors()
        extra.write_text("\n".join([*requirements, *leg.pins]) + "\n")
        out = Path(tmp) / "out.txt"
        if leg.constraints.exists():  # the current pins are kept where they still resolve
            shutil.copyfile(leg.constraints, out)
        command = [uv(), "pip", "compile", "-q", "pyproject.toml", str(extra), "--no-header"]
        command += ["--no-annotate", "--python", find_python(leg.python), "-o", str(out)]
        for name in leg.extras:
            command += ["--extra", name]
        subprocess.run(command, check=True, cwd=ROOT)
        what = leg.airflow or "every direct dependency at its declared floor"
        header = (
            f"# Leg {leg.name}: Python {leg.python}, {what}.\n"
            f"# Generated by `python scripts/matrix.py compile {leg.name}` (uv {UV_VERSION}); do not edit.\n"
        )
        CONSTRAINTS.mkdir(exist_ok=True)
        leg.constraints.write_text(header + out.read_text())
    print(f"{leg.constraints.relative_to(ROOT)}: {describe(leg)}")


def pins(leg: Leg) -> dict[str, str]:
    """Package name → version from the leg's constraints file."""
    found = {}
    for line in leg.constraints.read_text().splitlines():
        match = re.match(r"([A-Za-z0-9_.\-]+)==(\S+)", line)
        if match:
            found[match[1].lower()] = match[2]
    return found


#: The direct dependencies whose versions a leg reports.
KEY_PACKAGES = (
    "apache-airflow",
    "apache-airflow-providers-amazon",
    "apache-airflow-providers-common-compat",
    "boto3",
    "aiobotocore",
)


def describe(leg: Leg) -> str:
    versions = pins(leg)
    return ", ".join(f"{name} {versions.get(name, '?')}" for name in KEY_PACKAGES)


def venv(leg: Leg) -> Path:
    """The leg's virtualenv under .matrix/, (re)built when its constraints or pyproject change."""
    home = MATRIX / leg.name
    digest = hashlib.sha256(leg.constraints.read_bytes() + (ROOT / "pyproject.toml").read_bytes())
    stamp = home / f".installed-{digest.hexdigest()[:16]}"
    if not stamp.exists():
        started = time.monotonic()
        if home.exists():
            shutil.rmtree(home)
        subprocess.run(
            [uv(), "venv", "-q", "--seed", "--python", find_python(leg.python), str(home)], check=True
        )
        env = {**os.environ, "VIRTUAL_ENV": str(home)}
        extras = ",".join(leg.extras)
        # Bytecode at install time: with PYTHONDONTWRITEBYTECODE set (as on CI) every test process
        # would otherwise compile Airflow from source again.
        command = [uv(), "pip", "install", "-q", "--compile-bytecode", "-c", str(leg.constraints)]
        command += ["-e", f".[{extras}]"]
        subprocess.run(command, check=True, cwd=ROOT, env=env)
        stamp.touch()
        print(f"== leg {leg.name}: installed in {time.monotonic() - started:.0f} s", flush=True)
    return home


def test_leg(leg: Leg, pytest_args: list[str]) -> int:
    """Run the fast suite in the leg's venv, with an Airflow home of its own."""
    home = venv(leg)
    airflow_home = home / "airflow-home"
    airflow_home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    }
    env.pop("VIRTUAL_ENV", None)
    # Two workers (pytest-xdist), a whole file each, in collection order: as `make test` runs them.
    parallel = ["-n", "2", "--dist", "loadfile", "--no-loadscope-reorder"]
    args = pytest_args or [*parallel, "-m", "not slow" if leg.main else OTHER_LEG_MARKERS]
    command = [str(home / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]
    print(f"== leg {leg.name} (Python {leg.python}; {describe(leg)})", flush=True)
    started = time.monotonic()
    code = subprocess.run(command, cwd=ROOT, env=env).returncode
    print(f"== leg {leg.name}: {'passed' if code == 0 else 'FAILED'} in {time.monotonic() - started:.0f} s")
    return code


#: What CI (.ci/run) runs on each leg, for the README's table.
MAIN_LEG_RUNS = "lint, mypy, fast suite, system test, wheel test, docs"
OTHER_LEG_RUNS = "fast suite minus `main_leg_only`"


def table() -> None:
    """The README's support table: one row per leg, from its constraints file."""
    print("| Leg | Python | Airflow | Amazon provider | common-compat | boto3 | aiobotocore | CI runs |")
    print("|---|---|---|---|---|---|---|---|")
    for leg in LEGS.values():
        v = pins(leg)
        row = [leg.name + (" (main)" if leg.main else ""), leg.python, v.get("apache-airflow", "?")]
        row += [
            v.get(n, "?")
            for n in ("apache-airflow-providers-amazon", "apache-airflow-providers-common-compat")
        ]
        row += [v.get("boto3", "?"), v.get("aiobotocore", "?")]
        row += [MAIN_LEG_RUNS if leg.main else OTHER_LEG_RUNS]
        print("| " + " | ".join(row) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("compile", "test", "venv"):
        p = sub.add_parser(name)
        p.add_argument("leg", choices=[*LEGS, "all", "others"])
        if name == "test":
            p.add_argument("pytest_args", nargs=argparse.REMAINDER)
    sub.add_parser("table")
    sub.add_parser("legs")
    sub.add_parser("uv", help="install the pinned uv into .tools/ and print its path")
    sub.add_parser("python", help="print the main leg's interpreter")
    args = parser.parse_args(argv)
    if args.command == "uv":
        print(uv())
        return 0
    if args.command == "python":
        print(find_python(MAIN_LEG.python))
        return 0
    if args.command == "table":
        table()
        return 0
    if args.command == "legs":
        print(" ".join(LEGS))
        return 0
    legs = {
        "all": list(LEGS.values()),
        "others": [leg for leg in LEGS.values() if not leg.main],
    }.get(args.leg) or [LEGS[args.leg]]
    failed = []
    for leg in legs:
        if args.command == "compile":
            compile_leg(leg)
        elif args.command == "venv":
            print(venv(leg))
        elif test_leg(leg, args.pytest_args) != 0:
            failed.append(leg.name)
    if failed:
        print(f"legs FAILED: {' '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

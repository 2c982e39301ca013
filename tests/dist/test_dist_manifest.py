"""
The release files in the source tree and the manifest check of ``make dist``
(``scripts/check_dist.py``): what must ship in the wheel and the sdist, and what must not.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import airflow_autopilot

# The release checks run on the main leg (Python 3.11+, the dist tools); the Python 3.10 legs skip them.
pytestmark = pytest.mark.main_leg_only
tomllib = pytest.importorskip("tomllib")

ROOT = Path(__file__).resolve().parents[2]


def load_check_dist():
    spec = importlib.util.spec_from_file_location("check_dist", ROOT / "scripts" / "check_dist.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check_dist = load_check_dist()
VERSION = airflow_autopilot.__version__
DIST_INFO = f"airflow_autopilot-{VERSION}.dist-info"


def ideal_wheel() -> list[str]:
    """The wheel the source tree should build: every module, py.typed, the metadata and the licence."""
    files = [check_dist.wheel_path_of(m) for m in check_dist.source_modules()]
    files.append("airflow_autopilot/py.typed")
    files += [
        f"{DIST_INFO}/{name}"
        for name in ("METADATA", "WHEEL", "RECORD", "entry_points.txt", "top_level.txt", "licenses/LICENSE")
    ]
    return files


def ideal_sdist() -> list[str]:
    files = check_dist.source_modules() + ["airflow_autopilot/py.typed"]
    files += [
        "PKG-INFO",
        "pyproject.toml",
        "setup.cfg",
        "MANIFEST.in",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
    ]
    files += [
        f"airflow_autopilot.egg-info/{name}"
        for name in (
            "PKG-INFO",
            "SOURCES.txt",
            "dependency_links.txt",
            "entry_points.txt",
            "requires.txt",
            "top_level.txt",
        )
    ]
    return files


def wheel_problems(files: list[str]) -> list[str]:
    manifest = check_dist.read_manifest(ROOT / "tests" / "dist" / "expected_wheel.txt", VERSION)
    required = [check_dist.wheel_path_of(m) for m in check_dist.source_modules()]
    return check_dist.compare(files, manifest, required)


def test_the_manifests_accept_what_the_source_tree_builds():
    assert wheel_problems(ideal_wheel()) == []
    manifest = check_dist.read_manifest(ROOT / "tests" / "dist" / "expected_sdist.txt", VERSION)
    assert check_dist.compare(ideal_sdist(), manifest, check_dist.source_modules()) == []


@pytest.mark.parametrize(
    "leaked",
    [
        "tests/conftest.py",
        "tests/system/test_example_dags.py",
        "bench/many_jobs.py",
        "scripts/check_dist.py",
        "airflow_autopilot/__pycache__/links.cpython-311.pyc",
        "airflow_autopilot/test_probe.py",
        "airflow_autopilot/notes.txt",
    ],
)
def test_a_file_that_should_not_ship_fails_the_check(leaked):
    problems = wheel_problems([*ideal_wheel(), leaked])
    assert len(problems) == 1 and leaked in problems[0], problems


@pytest.mark.parametrize(
    "missing",
    [
        f"{DIST_INFO}/licenses/LICENSE",
        "airflow_autopilot/example_dags/example_autopilot_promotion.py",
        "airflow_autopilot/demo/__main__.py",
        "airflow_autopilot/py.typed",
        "airflow_autopilot/emulator/sample_data.py",
        "airflow_autopilot/hooks/autopilot.py",  # in no manifest line: found missing from the source tree
    ],
)
def test_a_file_that_should_ship_and_is_missing_fails_the_check(missing):
    problems = wheel_problems([f for f in ideal_wheel() if f != missing])
    assert problems and all(p.startswith("misses ") for p in problems), problems
    assert any(missing in p for p in problems), problems


def test_manifest_patterns():
    rx = check_dist.pattern_regex
    assert rx("airflow_autopilot/**/*.py").match("airflow_autopilot/x.py")
    assert rx("airflow_autopilot/**/*.py").match("airflow_autopilot/a/b/x.py")
    assert not rx("airflow_autopilot/*.py").match("airflow_autopilot/a/x.py")
    assert rx("**/conftest.py").match("conftest.py") and rx("**/conftest.py").match("a/b/conftest.py")
    assert rx("tests/**").match("tests/a/b.py") and not rx("tests/**").match("x/tests/a.py")
    assert not rx("a?c").match("a/c")


def test_every_package_directory_is_listed_for_setuptools():
    """pyproject lists the packages (dags/ is mapped into the package): a new subpackage must be added."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "airflow_autopilot").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    expected = on_disk | {"airflow_autopilot.example_dags"}
    assert set(config["packages"]) == expected, (
        f"[tool.setuptools] packages in pyproject.toml: add {sorted(expected - set(config['packages']))}, "
        f"remove {sorted(set(config['packages']) - expected)}"
    )
    assert config["package-dir"] == {"airflow_autopilot.example_dags": "dags"}
    assert (ROOT / "dags" / "__init__.py").is_file()


def test_license_changelog_and_version_source():
    licence = (ROOT / "LICENSE").read_text()
    assert licence.lstrip().startswith("Apache License\n                           Version 2.0, January 2004")
    assert "END OF TERMS AND CONDITIONS" in licence
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## {re.escape(VERSION)}\b", changelog, re.MULTILINE), "no CHANGELOG section"
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["dynamic"] == ["version"] and "version" not in project["project"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "airflow_autopilot.__version__"}
    assert check_dist.source_version() == VERSION


@pytest.mark.slow
def test_built_artifacts_match_the_manifests(tmp_path):
    """What ``make dist`` does, minus twine: build both artifacts and check them."""
    constraint = {"PIP_CONSTRAINT": str(ROOT / "scripts" / "build-constraints.txt")}
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        env={**os.environ, **constraint},
        timeout=600,
    )
    assert check_dist.check(tmp_path) == []

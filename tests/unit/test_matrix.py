"""The CI matrix (scripts/matrix.py) agrees with the constraints files, pyproject and the README."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import re
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.main_leg_only
# scripts/matrix.py runs on the main leg's Python (3.11+); the Python 3.10 legs skip this module.
tomllib = pytest.importorskip("tomllib")


def load_matrix():
    spec = importlib.util.spec_from_file_location("ci_matrix", ROOT / "scripts" / "matrix.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["ci_matrix"] = module
    spec.loader.exec_module(module)
    return module


matrix = load_matrix()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_leg_has_its_constraints_file_with_the_airflow_it_names():
    for leg in matrix.LEGS.values():
        pins = matrix.pins(leg)
        assert "apache-airflow" in pins, leg.name
        if leg.airflow:
            assert Requirement(leg.airflow).specifier.contains(pins["apache-airflow"]), leg.name
        assert leg.constraints.read_text().startswith(f"# Leg {leg.name}: Python {leg.python},")


def test_the_floors_leg_pins_every_direct_dependency_to_its_declared_floor():
    pins = matrix.pins(matrix.LEGS["floors"])
    for text in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(text)
        floor = next(s.version for s in requirement.specifier if s.operator == ">=")
        assert pins[requirement.name.lower()] == floor, requirement.name


def test_the_declared_pythons_are_the_tested_ones():
    tested = {leg.python for leg in matrix.LEGS.values()}
    lowest = min(tested, key=lambda v: tuple(map(int, v.split("."))))
    assert PYPROJECT["project"]["requires-python"] == f">={lowest}"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == lowest
    assert PYPROJECT["tool"]["ruff"]["target-version"] == "py" + lowest.replace(".", "")
    classifiers = {
        c.rsplit(" :: ", 1)[1]
        for c in PYPROJECT["project"]["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    }
    assert classifiers == tested


def test_the_readme_support_table_is_the_one_the_constraints_give():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        matrix.table()
    assert out.getvalue() in (ROOT / "README.md").read_text()


def test_declared_floors_turn_into_exact_pins():
    pins = matrix.declared_floors()
    assert len(pins) == len(PYPROJECT["project"]["dependencies"])
    assert all("==" in pin and ">=" not in pin for pin in pins)


def test_ci_runs_every_leg_of_the_readme_table():
    """.ci/run runs the main leg (`make test`) and `make test-matrix`, which runs every other leg."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert "make test" in ci and "make test-matrix" in ci
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("\ntest-matrix:", 1)[1].split("\n\n", 1)[0]
    assert "scripts/matrix.py test others" in recipe
    readme = (ROOT / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| ") and "| fast suite" in line]
    assert len(rows) == len(matrix.LEGS) - 1
    assert {row.split(" | ")[0].removeprefix("| ") for row in rows} == {
        leg.name for leg in matrix.LEGS.values() if not leg.main
    }

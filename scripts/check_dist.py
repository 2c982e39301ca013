#!/usr/bin/env python3
"""
Check the release artifacts that ``make dist`` built: ``python scripts/check_dist.py [DIST_DIR]``.

DIST_DIR (default ``dist``) must hold exactly one wheel and one sdist, named for the version in
``airflow_autopilot/__init__.py``. Each artifact's file list is compared with its expected manifest,
``tests/dist/expected_wheel.txt`` and ``tests/dist/expected_sdist.txt`` (sdist paths without the
leading ``airflow_autopilot-VERSION/``):

- every file must match a pattern of the manifest (else: it should not ship);
- every pattern must match at least one file (else: something that should ship is missing);
- no file may match a ``!pattern`` line (tests, benches, caches, development helpers);
- every module of the source tree (``airflow_autopilot/**/*.py``, ``dags/*.py``) must ship, so a
  new subpackage left out of ``[tool.setuptools] packages`` fails here.

In a pattern ``*`` matches within one path segment, ``**/`` any number of whole segments and ``?``
one character. Exits 1 and prints every problem when a check fails. Standard library only.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
import tarfile
import zipfile
from collections.abc import Iterable
from email.parser import HeaderParser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "tests" / "dist"
PACKAGE = "airflow_autopilot"
DISTRIBUTION = "airflow_autopilot"  # the normalised distribution name in file names
LICENSE_EXPRESSION = "Apache-2.0"


def source_version(root: Path = ROOT) -> str:
    """``__version__`` of ``airflow_autopilot/__init__.py``, read without importing it."""
    tree = ast.parse((root / PACKAGE / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            value = ast.literal_eval(node.value)
            if isinstance(value, str):
                return value
    raise ValueError(f"no __version__ string in {root / PACKAGE / '__init__.py'}")


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """A manifest pattern as a regular expression over ``/``-separated relative paths."""
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:[^/]+/)*")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def read_manifest(path: Path, version: str) -> list[str]:
    """The manifest's patterns (``{version}`` replaced), comments and blank lines dropped."""
    lines = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            lines.append(line.replace("{version}", version))
    return lines


def compare(files: Iterable[str], manifest: Iterable[str], required: Iterable[str] = ()) -> list[str]:
    """
    Every problem of an artifact's file list against its manifest, as sentences (empty: all good).

    :param files: the artifact's file paths (``/``-separated, relative to its root).
    :param manifest: patterns that may (and must) ship, and ``!patterns`` that must not.
    :param required: paths that must be among ``files`` (the modules of the source tree).
    """
    files = sorted(set(files))
    allowed = [(p, pattern_regex(p)) for p in manifest if not p.startswith("!")]
    forbidden = [(p[1:], pattern_regex(p[1:])) for p in manifest if p.startswith("!")]
    problems = []
    for name in files:
        banned = [p for p, rx in forbidden if rx.match(name)]
        if banned:
            problems.append(f"ships {name}, which must not ship (!{banned[0]})")
        elif not any(rx.match(name) for _, rx in allowed):
            problems.append(f"ships {name}, which no manifest line allows")
    for pattern, rx in allowed:
        if not any(rx.match(name) for name in files):
            problems.append(f"misses {pattern} (no file matches this manifest line)")
    present = set(files)
    for name in sorted(set(required) - present):
        problems.append(f"misses {name}, a module of the source tree")
    return problems


def source_modules(root: Path = ROOT) -> list[str]:
    """The source tree's modules, as the sdist holds them (``airflow_autopilot/...``, ``dags/...``)."""
    found = [p for p in (root / PACKAGE).rglob("*.py") if "__pycache__" not in p.parts]
    found += (root / "dags").glob("*.py")
    return sorted(p.relative_to(root).as_posix() for p in found)


def wheel_path_of(source: str) -> str:
    """Where a source module lands in the wheel (``dags/`` becomes ``airflow_autopilot/example_dags/``)."""
    if source.startswith("dags/"):
        return f"{PACKAGE}/example_dags/{source[len('dags/') :]}"
    return source


def wheel_files(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return [name for name in archive.namelist() if not name.endswith("/")]


def sdist_files(path: Path, top: str) -> tuple[list[str], list[str]]:
    """The sdist's files without the leading ``top/``, and the members outside ``top/``."""
    inside, outside = [], []
    with tarfile.open(path) as archive:
        for member in archive.getmembers():
            if member.isdir():
                continue
            if member.name.startswith(top + "/"):
                inside.append(member.name[len(top) + 1 :])
            else:
                outside.append(member.name)
    return inside, outside


def wheel_metadata(path: Path, version: str) -> list[str]:
    """Problems of the wheel's METADATA: version, license expression and license file."""
    with zipfile.ZipFile(path) as archive:
        text = archive.read(f"{DISTRIBUTION}-{version}.dist-info/METADATA").decode()
    meta = HeaderParser().parsestr(text)
    problems = []
    if meta["Version"] != version:
        problems.append(f"METADATA Version {meta['Version']!r}, expected {version!r}")
    if meta["License-Expression"] != LICENSE_EXPRESSION:
        problems.append(f"METADATA License-Expression {meta['License-Expression']!r}")
    if "LICENSE" not in (meta.get_all("License-File") or []):
        problems.append("METADATA names no License-File LICENSE")
    return problems


def check(dist: Path, root: Path = ROOT, manifests: Path = MANIFESTS) -> list[str]:
    """Every problem of the artifacts in ``dist`` (empty: both are as expected)."""
    version = source_version(root)
    wheels = sorted(dist.glob("*.whl"))
    sdists = sorted(dist.glob("*.tar.gz"))
    problems = []
    if len(wheels) != 1 or len(sdists) != 1:
        return [f"{dist} should hold one wheel and one sdist, holds {[p.name for p in wheels + sdists]}"]
    wheel, sdist = wheels[0], sdists[0]
    expected_wheel = f"{DISTRIBUTION}-{version}-py3-none-any.whl"
    expected_sdist = f"{DISTRIBUTION}-{version}.tar.gz"
    if wheel.name != expected_wheel:
        problems.append(f"wheel: named {wheel.name}, expected {expected_wheel}")
    if sdist.name != expected_sdist:
        problems.append(f"sdist: named {sdist.name}, expected {expected_sdist}")
    if problems:
        return problems
    modules = source_modules(root)
    problems += [
        f"wheel: {p}"
        for p in compare(
            wheel_files(wheel),
            read_manifest(manifests / "expected_wheel.txt", version),
            [wheel_path_of(m) for m in modules],
        )
    ]
    problems += [f"wheel: {p}" for p in wheel_metadata(wheel, version)]
    inside, outside = sdist_files(sdist, f"{DISTRIBUTION}-{version}")
    problems += [f"sdist: {name} is outside {DISTRIBUTION}-{version}/" for name in outside]
    problems += [
        f"sdist: {p}"
        for p in compare(inside, read_manifest(manifests / "expected_sdist.txt", version), modules)
    ]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").strip().splitlines()[0])
    parser.add_argument("dist", nargs="?", type=Path, default=ROOT / "dist", help="the folder (dist/)")
    args = parser.parse_args(argv)
    problems = check(args.dist)
    if problems:
        print(f"{len(problems)} problem(s) with the artifacts in {args.dist}:", file=sys.stderr)
        print("\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 1
    names = ", ".join(sorted(p.name for p in args.dist.iterdir() if p.suffix in (".whl", ".gz")))
    print(f"{names}: contents match tests/dist/expected_wheel.txt and expected_sdist.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())

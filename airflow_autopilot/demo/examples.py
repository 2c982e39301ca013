"""
The example DAGs shipped in the wheel, and copying them into a DAGs folder.

The files live in the subpackage ``airflow_autopilot.example_dags``: the repository's ``dags/``
folder, mapped into the package by ``[tool.setuptools.package-dir]`` in ``pyproject.toml``. In an
installed wheel they are in ``site-packages/airflow_autopilot/example_dags/``; in an editable
install this resolves to ``dags/`` in the clone.
"""

from __future__ import annotations

import os
import shutil
from importlib.resources import files
from pathlib import Path

#: The subpackage holding the example DAG files.
PACKAGE = "airflow_autopilot.example_dags"
#: The DAG the demo runs.
PROMOTION_DAG_ID = "example_autopilot_promotion"


def example_dags_folder() -> Path:
    """The folder the example DAG files are installed in."""
    folder = files(PACKAGE)
    if not isinstance(folder, Path):  # e.g. a zipped install: the DAG files must be real files
        raise RuntimeError(f"{PACKAGE} is not installed as files on disk ({folder!r})")
    return folder


def example_dag_files() -> list[Path]:
    """The example DAG files (``example_*.py``), sorted by name."""
    return sorted(example_dags_folder().glob("example_*.py"))


def example_dag_file(dag_id: str) -> Path:
    """
    The file that defines the example DAG ``dag_id`` (each file is named after its DAG).

    :raises FileNotFoundError: when no example DAG has that id.
    """
    path = example_dags_folder() / f"{dag_id}.py"
    if not path.is_file():
        names = ", ".join(p.stem for p in example_dag_files())
        raise FileNotFoundError(f"no example DAG {dag_id!r} in {path.parent} (there are: {names})")
    return path


def copy_example_dags(destination: str | os.PathLike[str], *, force: bool = False) -> list[Path]:
    """
    Copy the example DAG files into ``destination`` (created when missing) and return the copies.

    :param destination: a DAGs folder, e.g. ``$AIRFLOW_HOME/dags``.
    :param force: overwrite files of the same name; without it nothing is copied when one exists.
    :raises FileExistsError: when a file of the same name exists and ``force`` is false.
    :raises NotADirectoryError: when ``destination`` exists and is not a folder.
    """
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise NotADirectoryError(f"{destination} is not a folder")
    sources = example_dag_files()
    if not sources:
        raise FileNotFoundError(f"no example DAG files in {example_dags_folder()}")
    targets = [destination / source.name for source in sources]
    existing = [str(target) for target in targets if target.exists()]
    if existing and not force:
        raise FileExistsError(
            f"{', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
            "nothing copied (use --force to overwrite)"
        )
    destination.mkdir(parents=True, exist_ok=True)
    for source, target in zip(sources, targets, strict=True):
        shutil.copyfile(source, target)
    return targets

"""
What a pip user gets, checked against whichever install runs the tests: the editable one in the
clone (``make test``) or the built wheel in a fresh virtualenv (``scripts/test-wheel.sh``). Needs no
source tree: version, licence, metadata, console commands, the example DAGs and copying them.
"""

from __future__ import annotations

import importlib.metadata
import json
import sysconfig
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import airflow_autopilot
from airflow_autopilot.demo import copy_example_dags, example_dag_files, example_dags_folder
from airflow_autopilot.demo.cli import main as demo_main
from airflow_autopilot.get_provider_info import get_provider_info

DISTRIBUTION = "airflow-autopilot"
EXAMPLE_DAGS = [
    "example_autopilot_deploy_on_approval.py",
    "example_autopilot_event_driven.py",
    "example_autopilot_forecast.py",
    "example_autopilot_hitl_approval.py",
    "example_autopilot_nightly_scoring.py",
    "example_autopilot_on_new_model.py",
    "example_autopilot_one_click_deploy.py",
    "example_autopilot_promotion.py",
    "example_autopilot_rollback.py",
    "example_autopilot_watch_existing_job.py",
]
#: The Python versions the CI matrix tests (scripts/matrix.py); the classifiers claim no other.
TESTED_PYTHONS = {"3.10", "3.11", "3.13"}


def installed_distribution() -> importlib.metadata.Distribution:
    """The distribution installed in this environment's site-packages (not an egg-info in a clone)."""
    found = list(importlib.metadata.distributions(name=DISTRIBUTION, path=[sysconfig.get_paths()["purelib"]]))
    assert len(found) == 1, f"{DISTRIBUTION} installed {len(found)} times in site-packages"
    return found[0]


def test_one_version_for_the_distribution_the_package_and_the_provider():
    version = airflow_autopilot.__version__
    assert importlib.metadata.version(DISTRIBUTION) == version
    assert installed_distribution().version == version
    assert get_provider_info()["versions"][0] == version


def test_the_package_is_imported_from_where_it_is_installed():
    """A wheel install imports site-packages; an editable one imports its source folder."""
    dist = installed_distribution()
    direct = json.loads(dist.read_text("direct_url.json") or "{}")
    package = Path(airflow_autopilot.__file__).resolve()
    if direct.get("dir_info", {}).get("editable"):
        source = Path(unquote(urlparse(direct["url"]).path)).resolve()
        assert package == source / "airflow_autopilot" / "__init__.py"
    else:
        site = Path(sysconfig.get_paths()["purelib"]).resolve()
        assert package == site / "airflow_autopilot" / "__init__.py"
        assert example_dags_folder().resolve() == site / "airflow_autopilot" / "example_dags"


def test_the_distribution_is_apache_licensed_and_carries_the_licence():
    dist = installed_distribution()
    assert dist.metadata["License-Expression"] == "Apache-2.0"
    assert dist.metadata.get_all("License-File") == ["LICENSE"]
    licence = next(f for f in dist.files or [] if f.name == "LICENSE")
    text = licence.read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_classifiers_and_urls_claim_only_what_is_tested():
    meta = installed_distribution().metadata
    classifiers = meta.get_all("Classifier") or []
    pythons = {
        c.rsplit(" :: ", 1)[1] for c in classifiers if c.startswith("Programming Language :: Python :: 3.")
    }
    assert pythons == TESTED_PYTHONS
    assert "Framework :: Apache Airflow" in classifiers
    assert "Framework :: Apache Airflow :: Provider" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # the licence expression says it
    urls = dict(entry.split(", ", 1) for entry in meta.get_all("Project-URL") or [])
    assert set(urls) == {"Documentation", "Changelog", "Source", "Issues"}
    assert all(url.startswith("https://") for url in urls.values())


def test_console_commands_are_installed():
    scripts = {e.name: e.value for e in importlib.metadata.entry_points(group="console_scripts")}
    assert scripts["autopilot-demo"] == "airflow_autopilot.demo.cli:main"
    assert scripts["autopilot-emulator"] == "airflow_autopilot.emulator.__main__:main"


def test_the_example_dags_ship_in_the_package():
    assert [p.name for p in example_dag_files()] == EXAMPLE_DAGS
    assert all(p.parent == example_dags_folder() for p in example_dag_files())


def test_copy_example_dags_refuses_to_overwrite_unless_forced(tmp_path):
    target = tmp_path / "dags"
    copied = copy_example_dags(target)
    assert sorted(p.name for p in target.iterdir()) == EXAMPLE_DAGS
    assert [p.read_bytes() for p in copied] == [p.read_bytes() for p in example_dag_files()]

    (target / EXAMPLE_DAGS[0]).write_text("# mine\n")
    with pytest.raises(FileExistsError, match="--force"):
        copy_example_dags(target)
    assert (target / EXAMPLE_DAGS[0]).read_text() == "# mine\n"  # nothing copied
    copy_example_dags(target, force=True)
    assert (target / EXAMPLE_DAGS[0]).read_bytes() == example_dag_files()[0].read_bytes()


def test_demo_command_copies_the_example_dags(tmp_path, capsys):
    assert demo_main(["--copy-dags", str(tmp_path / "dags")]) == 0
    assert sorted(p.name for p in (tmp_path / "dags").iterdir()) == EXAMPLE_DAGS
    assert demo_main(["--copy-dags", str(tmp_path / "dags")]) == 1
    assert "already exist" in capsys.readouterr().err
    assert demo_main(["--copy-dags", str(tmp_path / "dags"), "--force"]) == 0
    (tmp_path / "file").write_text("")
    assert demo_main(["--copy-dags", str(tmp_path / "file")]) == 1
    assert "is not a folder" in capsys.readouterr().err

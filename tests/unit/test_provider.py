from __future__ import annotations

import json
import subprocess
import sys

import pytest

import airflow_autopilot
from airflow_autopilot.get_provider_info import get_provider_info
from tests.conftest import ROOT
from tests.helpers import run_python

DAG_FACING = [
    "airflow_autopilot",
    "airflow_autopilot.operators",
    "airflow_autopilot.sensors",
    "airflow_autopilot.links",
]
# Airflow itself imports ``airflow.providers.amazon.get_provider_info`` when it discovers providers;
# the AWS part of the Amazon provider (and boto3) must stay unloaded.
HEAVY = ["boto3", "botocore", "aiobotocore", "moto", "airflow.providers.amazon.aws"]


def test_provider_info_has_required_keys_and_one_version():
    info = get_provider_info()
    assert info["package-name"] == "airflow-autopilot"
    assert info["name"] and info["description"]
    assert info["versions"] == [airflow_autopilot.__version__]


def test_providers_manager_lists_the_package():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    assert "airflow-autopilot" in manager.providers
    assert manager.providers["airflow-autopilot"].version == airflow_autopilot.__version__


def test_every_listed_module_and_link_imports():
    import importlib

    info = get_provider_info()
    for section in ("hooks", "sensors", "operators", "triggers"):
        for entry in info[section]:
            for module in entry["python-modules"]:
                importlib.import_module(module)
    for path in info["extra-links"]:
        module, _, name = path.rpartition(".")
        assert hasattr(importlib.import_module(module), name), path


#: What a sensor or a link needs (the sensor's wait included): checked on its own first.
SENSORS_AND_LINKS = [
    "airflow_autopilot.links",
    "airflow_autopilot.sensors",
    "airflow_autopilot.core.waits.job",
]


@pytest.fixture(scope="module")
def heavy_after_imports() -> list[list[str]]:
    """
    The HEAVY modules a fresh interpreter holds after importing SENSORS_AND_LINKS, then after
    importing DAG_FACING as well. One interpreter for both checks, as each costs the seconds of
    importing Airflow: the first snapshot is what importing those modules alone loads.
    """
    code = (
        "import sys, json\n"
        + f"snapshots = []\nheavy = {HEAVY!r}\n"
        + "".join(f"import {m}\n" for m in SENSORS_AND_LINKS)
        + "snapshots.append([m for m in heavy if m in sys.modules])\n"
        + "".join(f"import {m}\n" for m in DAG_FACING)
        + "snapshots.append([m for m in heavy if m in sys.modules])\n"
        + "print(json.dumps(snapshots))"
    )
    out = run_python(code, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_links_and_sensors_modules_are_import_light(heavy_after_imports):
    assert heavy_after_imports[0] == []


def test_dag_facing_modules_do_not_load_aws_libraries(heavy_after_imports):
    """A DAG file importing our operators, sensors and links must not pay for boto3 or the Amazon provider."""
    assert heavy_after_imports[1] == []


@pytest.mark.parametrize("module", ["boto3", "moto", "airflow.providers.amazon"])
def test_ruff_bans_module_level_aws_imports_in_dag_facing_modules(module):
    """The lint rule that keeps operators import-light really fires."""
    # Through stdin under a DAG-facing module's name, so that the per-file rules apply and nothing
    # is written into the package (parallel workers import from it).
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--select", "TID253", "--no-cache"]
        + ["--stdin-filename", "airflow_autopilot/_lint_probe_operators.py", "-"],
        input=f"from __future__ import annotations\n\nimport {module}\n\nprint({module})\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert "TID253" in result.stdout

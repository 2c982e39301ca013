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


def test_dag_facing_modules_do_not_load_aws_libraries():
    """A DAG file importing our operators, sensors and links must not pay for boto3 or the Amazon provider."""
    code = (
        "import sys, json\n"
        + "".join(f"import {m}\n" for m in DAG_FACING)
        + f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = run_python(code, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


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

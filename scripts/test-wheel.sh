#!/usr/bin/env bash
# The built wheel as a pip user gets it (`make test-wheel`, run by CI after `make test`):
#
#   1. a fresh virtualenv in a temporary folder outside the clone;
#   2. `pip install -c constraints/airflow-3.3.txt "<wheel>[emulator]" pytest pytest-asyncio` (not editable);
#   3. from a working folder outside the clone, with AIRFLOW_HOME there too:
#      - airflow_autopilot is imported from the venv's site-packages, not from the clone;
#      - `airflow providers list` shows airflow-autopilot at the package's version;
#      - `autopilot-demo` runs the promotion DAG end to end on the emulator (exit 0, SUCCESS,
#        PROMOTE, endpoint InService), and `autopilot-demo --copy-dags` copies the example DAGs;
#      - the example-DAG tests and tests/dist/test_release.py, copied out of the clone, run with
#        pytest against the installed package.
#
# Usage: scripts/test-wheel.sh [WHEEL]   (without WHEEL: `make dist` first, then dist/*.whl)
# Removes its temporary folder and stops every process it started, also on failure or Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
STEP_TIMEOUT="${STEP_TIMEOUT:-900}"   # seconds for any one step

if [[ $# -gt 1 ]]; then
    echo "usage: $0 [WHEEL]" >&2
    exit 2
fi
if [[ $# -eq 0 ]]; then
    make -C "$ROOT" dist
    set -- "$ROOT"/dist/*.whl
fi
WHEEL="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
if [[ ! -f "$WHEEL" || "$WHEEL" != *.whl ]]; then
    echo "$0: no wheel at $1" >&2
    exit 2
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/autopilot-wheel-test.XXXXXX")"
case "$WORK/" in
"$ROOT"/*) echo "$0: the temporary folder $WORK is inside the clone" >&2; exit 2 ;;
esac
GROUPS_STARTED=()
cleanup() {
    local status=$?
    for group in "${GROUPS_STARTED[@]}"; do
        kill -TERM -- "-$group" 2>/dev/null || true
    done
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

started=$SECONDS
step() { printf '\n== [%4ss] %s\n' "$((SECONDS - started))" "$*"; }

# Run a command in a process group of its own (stopped by cleanup if it is still running), with a
# time limit.
bounded() {
    setsid timeout --kill-after=15 "$STEP_TIMEOUT" "$@" &
    local pid=$!
    GROUPS_STARTED+=("$pid")
    wait "$pid"
}

VENV="$WORK/venv"
step "fresh virtualenv $VENV"
"$PYTHON" -m venv "$VENV"
PY="$VENV/bin/python"

step "pip install $(basename "$WHEEL")[emulator] pytest pytest-asyncio (-c constraints/airflow-3.3.txt)"
# (The filter drops pip's warnings about find-links folders of the machine's pip config that are absent.)
bounded "$PY" -m pip install -q --disable-pip-version-check -c "$ROOT/constraints/airflow-3.3.txt" \
    "$WHEEL[emulator]" pytest pytest-asyncio 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)

# From here on nothing points back at the clone: working folder, Airflow home and temporary files
# are all under $WORK, and the venv comes first on PATH.
mkdir -p "$WORK/run" "$WORK/airflow-home" "$WORK/tmp"
cd "$WORK/run"
unset PYTHONPATH PYTHONHOME PYTHONSTARTUP VIRTUAL_ENV
export TMPDIR="$WORK/tmp"
export PATH="$VENV/bin:$PATH"
export AIRFLOW_HOME="$WORK/airflow-home"
export AIRFLOW__CORE__LOAD_EXAMPLES=False

step "airflow_autopilot is the installed wheel"
# (Scripts go to files: a command run in the background reads /dev/null, not a here-document.)
cat > installed.py <<'EOF'
import importlib.metadata
import json
import sys
import sysconfig
from pathlib import Path

import airflow_autopilot
from airflow_autopilot.demo import example_dag_files

clone = Path(sys.argv[1]).resolve()
site = Path(sysconfig.get_paths()["purelib"]).resolve()
package = Path(airflow_autopilot.__file__).resolve()
assert package == site / "airflow_autopilot" / "__init__.py", f"imported from {package}, not {site}"
direct = json.loads(importlib.metadata.distribution("airflow-autopilot").read_text("direct_url.json"))
assert not direct.get("dir_info", {}).get("editable") and direct["url"].endswith(".whl"), direct
dags = example_dag_files()
assert dags and all(p.resolve().is_relative_to(site) for p in dags), dags
assert not any(str(p).startswith(str(clone)) for p in map(Path, sys.path) if str(p)), sys.path
print(f"airflow_autopilot {airflow_autopilot.__version__} from {package.parent}")
print(f"example DAGs: {', '.join(p.name for p in dags)}")
EOF
bounded "$PY" installed.py "$ROOT"

step "airflow providers list"
bounded airflow providers list -o json > providers.json
cat > providers.py <<'EOF'
import json

import airflow_autopilot

# Airflow may log a line to stdout before the JSON (unit-test mode does): read the JSON line.
listing = next(line for line in open("providers.json") if line.startswith("["))
providers = {p["package_name"]: p for p in json.loads(listing)}
ours = providers.get("airflow-autopilot")
assert ours, f"airflow-autopilot not among {sorted(providers)}"
assert ours["version"] == airflow_autopilot.__version__, ours
print(f"airflow providers list: airflow-autopilot {ours['version']}")
EOF
bounded "$PY" providers.py

step "autopilot-demo (the promotion DAG end to end on the emulator)"
status=0
bounded autopilot-demo > demo.out 2>&1 || status=$?
cat demo.out
if [[ $status -ne 0 ]]; then
    echo "autopilot-demo exited $status; Airflow's log:" >&2
    tail -n 80 "$AIRFLOW_HOME/demo-run.log" >&2 || true
    exit 1
fi
for expected in "DAG run SUCCESS" "PROMOTE " "InService" "deploy=success"; do
    grep -q -- "$expected" demo.out || { echo "autopilot-demo output lacks '$expected'" >&2; exit 1; }
done

step "autopilot-demo --copy-dags"
bounded autopilot-demo --copy-dags "$WORK/user-dags"
ls "$WORK/user-dags"
if bounded autopilot-demo --copy-dags "$WORK/user-dags" 2>/dev/null; then
    echo "autopilot-demo --copy-dags overwrote existing files without --force" >&2
    exit 1
fi
bounded autopilot-demo --copy-dags "$WORK/user-dags" --force > /dev/null

step "example-DAG and release tests against the installed package"
# The test files keep their layout (tests is a package).
TESTS=(
    tests/__init__.py
    tests/conftest.py
    tests/unit/__init__.py
    tests/unit/test_example_dag_files.py
    tests/system/__init__.py
    tests/system/test_example_dags.py
    tests/dist/__init__.py
    tests/dist/test_release.py
)
[[ -f "$ROOT/tests/helpers.py" ]] && TESTS+=(tests/helpers.py)
for file in "${TESTS[@]}"; do
    mkdir -p "$(dirname "$file")"
    cp "$ROOT/$file" "$file"
done
# The suite's pytest settings: pyproject's [tool.pytest.ini_options], and nothing else of it.
"$PY" - "$ROOT/pyproject.toml" <<'EOF'
import re
import sys
import tomllib

text = open(sys.argv[1]).read()
block = re.search(r"^\[tool\.pytest\.ini_options\]\n.*?(?=^\[|\Z)", text, re.S | re.M).group(0)
assert tomllib.loads(block)["tool"]["pytest"]["ini_options"]
open("pyproject.toml", "w").write(block)
EOF
bounded "$PY" -m pytest -q -p no:cacheprovider \
    tests/unit/test_example_dag_files.py tests/system/test_example_dags.py tests/dist/test_release.py

step "the wheel works for a pip user: provider, demo, example DAGs and tests all passed"

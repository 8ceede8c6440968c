# `make run` and `make test` work on a fresh machine with Python 3.11+, make and git
# (docs/operations.md, "Make targets").
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BENCH_STAMP := $(VENV)/.installed-bench
SCALE_COUNTS ?= 1000,10000,100000
REPLAY_EVENTS ?= 100000

# The modules with no I/O: their tests must reach every line and branch (`make test` checks).
PURE_MODULES := shared/codec.py shared/events.py shared/names.py shared/subjects.py shared/ids.py \
  shared/since.py \
  shared/positions.py services/registry/prefix.py services/registry/cursor.py \
  services/registry/ids.py services/dispatcher/delivery.py services/dispatcher/assignment.py \
  services/dispatcher/feed.py services/dispatcher/guard.py services/chat/protocol.py \
  services/chat/ratelimit.py \
  services/chat/hosts.py services/chat/limits.py services/chat/skeleton.py
empty :=
comma := ,
PURE_GLOBS := $(subst $(empty) $(empty),$(comma),$(strip $(PURE_MODULES)))

# `make test` runs the test files on this many processes (pytest-xdist; 1 file stays on 1 worker).
TEST_WORKERS ?= 2

.PHONY: run test test-unit browser lint typecheck check bench bench-dispatcher chaos clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	@touch $(BENCH_STAMP)

run: $(STAMP)
	$(BIN)/python scripts/run.py

# The whole suite with coverage (in-process code; the services started as processes by the
# end-to-end tests are not measured), then the pure modules' 100 %. The virtual environment and
# the browser are installed side by side.
test:
	@$(MAKE) --no-print-directory -j2 $(STAMP) browser
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --cov --cov-report=term
	$(BIN)/python -m coverage report --include='$(PURE_GLOBS)' --fail-under=100

# Debian's chromium for the web client's browser test (skipped, loudly, when it cannot be had).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq chromium) >/dev/null 2>&1 || echo "chromium missing: browser test skipped"

# The inner loop: every test that starts no process (no nats-server, service, browser or CLI;
# tests/markers.py decides), in seconds.
test-unit: $(STAMP)
	$(BIN)/python -m pytest -q -m 'not process'

lint: $(STAMP)
	$(BIN)/ruff check shared services tests scripts bench
	$(BIN)/ruff format --check shared services tests scripts bench

typecheck: $(STAMP)
	$(BIN)/mypy
	$(BIN)/mypy bench

check: lint typecheck test

# Benchmarks, not part of `make test` (docs/benchmarks.md): VolanoMark and connection scale,
# then the dispatcher's deliveries. Knobs: BENCH_ROOMS=10,20,50 BENCH_PAIRS=3
# BENCH_MODES=baseline,nats,callbacks CONN_COUNTS=1000,10000 CONN_TARGETS=chat,baseline;
# BENCH_QUICK=1 for a smoke test (~1 min).
bench: $(BENCH_STAMP)
	$(BIN)/python -m bench.harness $(BENCH_ARGS)
	$(BIN)/python -m bench.connections $(CONN_ARGS)
	$(BIN)/python bench/dispatcher_bench.py
	$(BIN)/python -m bench.scale --counts $(SCALE_COUNTS)
	$(BIN)/python -m bench.replay --events $(REPLAY_EVENTS)
	$(BIN)/python -m bench.history

bench-dispatcher: $(STAMP)
	$(BIN)/python bench/dispatcher_bench.py

# The fault-injection run, not part of `make test` (docs/reliability.md): CHAOS_SECONDS=300,
# CHAOS_SEED, CHAOS_MIN_FAULTS=50, CHAOS_SPREAD_ROOMS=false and the other CHAOS_* knobs.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis

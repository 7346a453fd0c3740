# The README's two commands: `make demo` and `make test`. Both bootstrap .venv idempotently.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

BENCH_STAMP := $(VENV)/.bench-installed
CHAOS_STAMP := $(VENV)/.chaos-installed
# `make test` runs pytest on two workers (pytest-xdist), each with a sandbox of its own: much
# of the suite waits on stand-ins and CLI subprocesses. `make test PYTEST_WORKERS=` runs it
# in one process; a targeted `pytest tests/...` stays serial (one sandbox).
PYTEST_WORKERS ?= -n 2
# Not in `make test`: the tests marked `long` (two of the chaos fast subset's three; minutes
# each here). `make test-long` runs them. The scaled-out fleet test is in (~105 s alone).
LONG_SUITES ?= -m "not long"

.PHONY: test-long demo test lint fmt bench chaos clean sandbox-down

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "killswitch needs Python 3.11 (set PYTHON=python3.11)")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[sandbox,dev,scale]"
	touch $(STAMP)

$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[sandbox,dev,scale,bench]"
	touch $(BENCH_STAMP)

$(CHAOS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[sandbox,dev,chaos]"
	touch $(CHAOS_STAMP)

# Not part of `make test` (a fast subset is: tests/chaos/): every Chaos Toolkit experiment in
# chaos/experiments/, each against a sandbox of its own; journals in chaos/journals/, the
# results table in chaos/README.md (see there).
chaos: $(CHAOS_STAMP)
	$(PY) chaos/run.py

# Not part of `make test`: about 10 minutes; writes bench/results/ (see bench/README.md).
bench: $(BENCH_STAMP)
	$(PY) -m bench.containment
	$(PY) -m bench.fleet
	$(PY) -m bench.fleet --via-server --workers 1,2,4
	$(PY) -m bench.sweep
	$(PY) -m bench.peer
	$(PY) -m bench.alerts
	$(PY) -m bench.startup
	$(PY) -m bench.report

demo: $(STAMP)
	$(VENV)/bin/killswitch demo

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_WORKERS) $(LONG_SUITES) --durations=20

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

fmt: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

sandbox-down: $(STAMP)
	$(VENV)/bin/killswitch sandbox down

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache *.egg-info

# The tests marked `long` (minutes each on two cores), outside `make test`. The scaled-out
# fleet test (PostgreSQL + a Prefect server + two workers) is in `make test` (~1.5 min).
test-long: $(STAMP) $(CHAOS_STAMP)
	$(PY) -m pytest -m long

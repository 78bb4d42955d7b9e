# The two commands of the README: `make demo` and `make test`.
# Both create .venv when it is missing and (re)install the package when pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.popsim-installed
DEMO_SIZE ?= 2000
BENCH_DEVICES ?= $(shell nproc)

.PHONY: demo test test-fast venv lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	mkdir -p demo
	$(BIN)/popsim run configs/us_adults.toml --out demo/us_adults.h5 --size $(DEMO_SIZE) \
		--figure demo/us_adults.png --force

# the suite in one worker process per core (-n auto), each test file in one worker so its
# module fixtures compile once; the workers share one on-disk compile cache (tests/conftest.py)
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile --durations=25

# the tests that compile no ODE solve of their own (tests/conftest.py marks the others slow:
# those using a solving fixture, and those marked by hand); `make test` runs everything
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -n auto --dist loadfile -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check popsim tests benchmarks scripts
	$(BIN)/pyright

bench: $(STAMP)
	$(BIN)/python benchmarks/throughput.py --devices $(BENCH_DEVICES)

clean:
	rm -rf $(VENV) demo .pytest_cache

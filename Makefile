# The two commands of the README: `make demo` and `make test`. Each prepares what it needs.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test up lint typecheck unit host venv bench chaos clean

demo: host venv  ## start the stack on embedded defaults, run real jobs, stop
	$(BIN)/orchestrator demo

test: host venv lint typecheck  ## the whole test suite on real services
	url=$$(deploy/host/test-postgres.sh) && ORCH_TEST_POSTGRES_URL=$$url $(BIN)/pytest

up: host venv  ## the whole local stack in the foreground
	$(BIN)/orchestrator up

unit: venv  ## the tests that need no service (marked `unit` in tests/conftest.py): seconds
	$(BIN)/pytest -m unit -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: venv
	$(BIN)/mypy

host:
	deploy/host/prepare.sh

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

bench: host venv  ## every benchmark, each beside its anchor; results in bench/results/
	for b in pipeline volumes domains fleet placement api provision waiters load; do $(BIN)/python -m bench.$$b || exit 1; done

chaos: host venv  ## the fault suite with 5 trials per fault (the test suite runs 1); prints the summary
	$(BIN)/python -m tests.chaos --trials 5 --freeze-seconds 30

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis

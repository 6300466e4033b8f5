# The two quick-start commands: `make demo` and `make test`.  Each creates .venv when missing.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	rm -rf demo-output demo-ledger.sqlite
	$(BIN)/fhirsynth run fixtures/cohort --epsilon 1 --out demo-output --ledger demo-ledger.sqlite

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) demo-output demo-ledger.sqlite .pytest_cache

bench: $(STAMP)
	bash benchmarks/peers/setup.sh
	$(BIN)/python -m benchmarks.run_peers
	$(BIN)/python -m benchmarks.make_report

# Two commands: `make run` and `make test`. Each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --disable-pip-version-check --quiet

.PHONY: run test test-fast lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# `make run` installs the extras the README's tour uses: export (Parquet, CSV, --to-db) and postgres (migrate).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[export,postgres]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(PIP) install -e '.[dev]'
	touch $@ $(VENV)/.installed

# The oci CLI (the OCI faces' acceptance tests run it unchanged) pins click below the version
# trailvault uses, so it lives in a venv of its own; tests find it through TRAILVAULT_TEST_OCI_CLI.
OCI_VENV := .venv-oci
OCI_CLI_VERSION := 3.95.1
$(OCI_VENV)/.installed:
	$(PYTHON) -m venv $(OCI_VENV)
	$(OCI_VENV)/bin/python -m pip --disable-pip-version-check --quiet install 'oci-cli==$(OCI_CLI_VERSION)'
	touch $@

## run: create the embedded vault, open the Platform 6 example channel, post and list events, then serve the HTTP API
run: $(VENV)/.installed
	$(BIN)/trailvault init
	$(BIN)/trailvault channels open myindex --schema examples/platform6/myindex.json
	$(BIN)/trailvault post myindex '{"company": "Amalto", "amount": 101.12}'
	$(BIN)/trailvault post myindex @examples/platform6/invoice.json
	$(BIN)/trailvault post myindex - < examples/platform6/events.ndjson
	$(BIN)/trailvault events list --channel myindex --sort-order desc --limit 10 --output table
	$(BIN)/trailvault checkpoint show
	$(BIN)/trailvault serve

## test: lint, type-check, start a throwaway PostgreSQL server, run the whole suite on both backends (listing the 15 slowest tests), stop it
test: $(VENV)/.installed-dev $(OCI_VENV)/.installed
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	scripts/test-postgres start
	TRAILVAULT_TEST_OCI_CLI="$(CURDIR)/$(OCI_VENV)/bin/oci" \
	TRAILVAULT_TEST_POSTGRES="$$(scripts/test-postgres url)" $(BIN)/python -m pytest -n 2 -q --durations=15; \
	status=$$?; scripts/test-postgres stop; exit $$status

## test-fast: the inner loop: the suite on SQLite only (no PostgreSQL server), without the real-process system tests, stopping at the first failure
test-fast: $(VENV)/.installed-dev
	$(BIN)/python -m pytest -n 2 -q -x -m "not system and not postgresql"

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

## bench: the performance tables of docs/benchmarks.md
bench: $(VENV)/.installed-dev
	command -v wrk >/dev/null || apt-get install -y wrk || sudo apt-get install -y wrk
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/server.py
	$(BIN)/python bench/integrity.py
	$(BIN)/python bench/startup.py
	scripts/test-postgres start
	TRAILVAULT_TEST_POSTGRES="$$(scripts/test-postgres url)" $(BIN)/python bench/postgres.py; \
	status=$$?; scripts/test-postgres stop; exit $$status

clean:
	scripts/test-postgres stop
	rm -rf $(VENV) $(OCI_VENV) trailvault-data .pytest_cache .mypy_cache .ruff_cache

# closeloop: every target installs what it needs first (make install).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8700
SCALE ?= demo
SEED ?= 7
UI_PORT ?= 3000

.PHONY: install demo test bench sandbox dagster clean help

help:
	@echo "make install   create or update the virtual environment ($(VENV))"
	@echo "make demo      sandbox brand + one daily run + the Dagster UI on 127.0.0.1:$(UI_PORT)"
	@echo "make test      install and run the whole test suite"
	@echo "make bench     run the benchmarks and print each figure beside its target"
	@echo "make sandbox   serve the sandbox emulators only"
	@echo "make dagster   serve the Dagster UI over the data directory"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/closeloop demo --scale $(SCALE) --seed $(SEED) --port $(PORT) --ui-port $(UI_PORT)

sandbox: install
	@echo "Serving the '$(SCALE)' sandbox brand (seed $(SEED)) on 127.0.0.1:$(PORT); settings in .env.sandbox; Ctrl-C stops it."
	$(BIN)/closeloop sandbox serve --scale $(SCALE) --seed $(SEED) --port $(PORT) --env-file .env.sandbox

dagster: install
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/data/dagster} $(BIN)/dagster dev -m orchestration.definitions -h 127.0.0.1 -p $(UI_PORT)

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow" tests

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data/sandbox .pytest_cache

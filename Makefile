# closeloop: every target installs what it needs first (make install).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8700
SCALE ?= demo
SEED ?= 7

.PHONY: install demo test bench sandbox clean help

help:
	@echo "make install   create or update the virtual environment ($(VENV))"
	@echo "make demo      generate the sandbox brand and serve its emulators on 127.0.0.1:$(PORT)"
	@echo "make test      install and run the whole test suite"
	@echo "make bench     run the benchmarks and print each figure beside its target"
	@echo "make sandbox   same as demo (serve the sandbox only)"

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	@echo "closeloop demo: generating the '$(SCALE)' sandbox brand (seed $(SEED)) and serving every emulator on 127.0.0.1:$(PORT)."
	@echo "Connector settings are written to .env.sandbox. Stop with Ctrl-C."
	$(BIN)/closeloop sandbox serve --scale $(SCALE) --seed $(SEED) --port $(PORT) --env-file .env.sandbox

sandbox: demo

test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile -m "not slow" tests

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) data/sandbox .pytest_cache

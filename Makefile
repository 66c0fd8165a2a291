# qifu developer commands. `make help` lists them.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: help demo lint test bench clean

help:  ## List the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "qifu needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed  ## Synthesise a county of 240,000 entities, import it and serve it at 127.0.0.1:8000
	$(BIN)/qifu demo

lint: $(BIN)/.installed  ## Ruff, and import-linter's layer contracts (pyproject.toml)
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports

test: lint  ## Lint, then run the whole test suite (SQLite; set QIFU_DATABASE_URL for PostgreSQL)
	$(BIN)/pytest

bench: $(BIN)/.installed  ## Run the benchmarks in bench/ (minutes; results go to docs/benchmarks.md by hand)
	$(BIN)/python bench/synth_import.py

clean:  ## Remove the virtual environment and local data
	rm -rf $(VENV) var

# Everything runs from a project-local virtual environment that `make`
# creates on first use and refreshes whenever pyproject.toml changes.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins libraries that clash with the project's, so it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov

.PHONY: demo ui test lint format bench clean help checkov

help:
	@echo "make demo   run the platform end to end on the embedded local cloud"
	@echo "make test   lint and run every test that can run on one machine"
	@echo "make bench  run the benchmarks"

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[local,dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/pipeline-platform demo

ui: $(STAMP)
	$(BIN)/pipeline-platform ui

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

test: lint $(CHECKOV)
	$(BIN)/python -m pytest


$(CHECKOV):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov>=3.2,<4'

checkov: $(STAMP) $(CHECKOV)
	$(BIN)/python -m cloudformation synth --out build/cloudformation
	$(CHECKOV) --directory build/cloudformation --framework cloudformation --quiet --compact --skip-download

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .platform .pytest_cache .ruff_cache

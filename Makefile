# Everything runs from project-local virtual environments that `make` creates on first
# use from the lock files (uv.lock, tools/checkov/uv.lock): every install gets exactly the
# versions that were tested, and nothing is resolved at install time. uv itself is
# bootstrapped, at a pinned version, from the package index into .venv-uv.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV_VENV := .venv-uv
UV := $(UV_VENV)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The extras `make` installs: the local cloud and the developer tools.
EXTRAS := --extra local --extra dev
# checkov pins libraries that clash with the project's, so it gets a venv (and a lock) of its own.
CHECKOV_PROJECT := tools/checkov
CHECKOV_VENV := .venv-checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
LATEST_VENV := .venv-latest
# uv uses this machine's Python (never downloads one) and says nothing while it works.
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_NO_PROGRESS := 1

.PHONY: demo ui test lint format bench clean help checkov lock test-latest

help:
	@echo "make demo         run the platform end to end on the embedded local cloud"
	@echo "make test         lint and run every test that can run on one machine"
	@echo "make bench        run the benchmarks"
	@echo "make test-latest  the tests on the newest versions pyproject.toml allows (no lock)"
	@echo "make lock         refresh the lock files to the newest versions allowed"

$(UV):
	@test -x $(UV_VENV)/bin/python || $(PYTHON) -m venv $(UV_VENV)
	$(UV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check 'uv==$(UV_VERSION)'

# --locked: installs what uv.lock holds, and fails (instead of resolving) when
# pyproject.toml asks for something the lock does not hold.
$(STAMP): pyproject.toml uv.lock $(UV)
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --quiet --locked $(EXTRAS)
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

$(CHECKOV): $(CHECKOV_PROJECT)/pyproject.toml $(CHECKOV_PROJECT)/uv.lock $(UV)
	UV_PROJECT_ENVIRONMENT=$(CURDIR)/$(CHECKOV_VENV) $(UV) sync --quiet --locked \
		--project $(CHECKOV_PROJECT)
	@touch $(CHECKOV)

checkov: $(STAMP) $(CHECKOV)
	$(BIN)/python -m cloudformation synth --out build/cloudformation
	$(CHECKOV) --directory build/cloudformation --framework cloudformation --quiet --compact --skip-download

bench: $(STAMP)
	$(BIN)/python -m benchmarks

# Refresh both locks to the newest versions pyproject.toml allows. Run `make test-latest`
# first: it is the test suite on exactly those versions.
lock: $(UV)
	$(UV) lock --upgrade
	$(UV) lock --upgrade --project $(CHECKOV_PROJECT)

# The newest versions pyproject.toml allows, resolved now (no lock) into a throwaway
# environment, and the whole test suite run there: what the next `make lock` would bring.
test-latest: $(UV) $(CHECKOV)
	rm -rf $(LATEST_VENV)
	$(UV) venv --quiet $(LATEST_VENV)
	VIRTUAL_ENV=$(CURDIR)/$(LATEST_VENV) $(UV) pip install --quiet --resolution highest \
		--refresh -e '.[local,dev]'
	VIRTUAL_ENV=$(CURDIR)/$(LATEST_VENV) $(UV) pip list --format freeze \
		> $(LATEST_VENV)/versions.txt
	$(LATEST_VENV)/bin/mypy
	$(LATEST_VENV)/bin/python -m pytest

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(UV_VENV) $(LATEST_VENV) .platform .pytest_cache .ruff_cache

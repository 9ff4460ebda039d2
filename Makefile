# Kleis: `make serve` installs and runs; `make test` installs and runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: serve test check test-fast bench bench-smoke bench-profile system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime-installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $@ $(VENV)/.runtime-installed

serve: $(VENV)/.runtime-installed
	$(BIN)/python kleis.py serve

test: check system-deps
	$(BIN)/python -m pytest

# ruff (lint, import order, formatting) and mypy, as configured in pyproject.toml.
check: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The unit and addons tiers (tests/unit, tests/addons): no listener, process, browser or database server
# (tests/conftest.py fails a test that opens a socket or starts a process).
test-fast: $(VENV)/.dev-installed
	$(BIN)/python -m pytest tests/unit tests/addons

system-deps:
	@sh .ci/system-deps
	@sh .ci/agents

bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench

bench-smoke: $(VENV)/.dev-installed
	$(BIN)/python -m bench --smoke

bench-profile: $(VENV)/.dev-installed
	$(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis test-artifacts

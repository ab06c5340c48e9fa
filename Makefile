# One venv, installed from the lock files, so a fresh machine gets the same versions.
# Serving needs only the runtime lock; tests and tools add the development lock.
SUPPORTED := 3.13 3.12 3.11
# The newest supported interpreter on PATH (a pyenv shim that cannot run does not count).
PYTHON ?= $(or $(firstword $(foreach v,$(SUPPORTED),$(shell python$(v) -c 'import sys' >/dev/null 2>&1 && echo python$(v)))),python3)
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed
# Empty when PYTHON is missing or not 3.11 to 3.13; checked before the venv is made.
PYTHON_OK = $(shell $(PYTHON) -c 'import sys; print((3, 11) <= sys.version_info[:2] < (3, 14) or "")' 2>/dev/null)

.PHONY: install serve test lint format models bench simulate mutate clean

$(RUNTIME): requirements.lock pyproject.toml
	$(if $(PYTHON_OK),,$(error $(PYTHON) is not Python 3.11, 3.12 or 3.13: install one, or run make PYTHON=/path/to/python3.12))
	$(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements.lock
	$(PIP) --no-deps --no-build-isolation -e .
	touch $(RUNTIME)

$(DEV): $(RUNTIME) requirements-dev.lock requirements-reference.lock
	$(PIP) -r requirements-dev.lock
	$(PIP) --no-deps -r requirements-reference.lock
	touch $(DEV)

install: $(DEV)

serve: $(RUNTIME)
	$(BIN)/edgeserve serve

test: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest

lint: $(DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(DEV)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

models: $(RUNTIME)
	$(BIN)/python -m edgeserve.inference.demo models

bench: $(DEV)
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks --suite quantize
	$(BIN)/python -m benchmarks --suite containment

# The canary guard's seeded Monte Carlo run (minutes): the table in docs/operations.md, 3a.
simulate: $(RUNTIME)
	$(BIN)/python -m edgeserve.traffic.simulation
	$(BIN)/python -m edgeserve.cli.accuracy_simulation
	$(BIN)/python -m edgeserve.cli.rollout_simulation

# Mutation testing of the pure modules (not in CI: minutes per module); see README, Development.
mutate: $(DEV)
	$(BIN)/mutmut run
	$(BIN)/mutmut results

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache mutants

# escalator: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-cluster setup lock audit lint typecheck unit integration kafka-start kafka-stop bench clean

# constraints.txt pins every transitive dependency (regenerate: make lock).
$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

lock: setup
	$(BIN)/pip freeze --exclude-editable > constraints.txt

## audit: known vulnerabilities in the pinned dependencies (needs the PyPI JSON API or OSV)
audit: setup
	$(BIN)/pip-audit --progress-spinner off --strict

setup: $(STAMP)

## run: start the local Kafka (unless KAFKA_BOOTSTRAP_SERVERS is set), create topics, run a worker
run: setup
	@scripts/run-local

## test: lint, type-check, and every test (integration tests on the real local Kafka)
test: setup
	@scripts/test

## test-cluster: the three-broker cluster tests (scripts/kafka-local cluster; several minutes)
test-cluster: setup
	$(BIN)/pytest -m cluster tests/integration/test_cluster.py

lint: setup
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: setup
	$(BIN)/mypy

unit: setup
	$(BIN)/pytest tests/unit

integration: setup
	$(BIN)/pytest tests/integration

## bench: every benchmark at full size; results go to docs/benchmarks.md (by hand)
bench: setup
	scripts/kafka-local start
	$(BIN)/python -m benchmarks.run --size full

kafka-start:
	scripts/kafka-local start

kafka-stop:
	scripts/kafka-local stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache var

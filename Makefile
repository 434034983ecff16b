# One entry point for people and CI. Every target creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile -e '.[test,lint]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

## demo: backtest the bundled real trace and show one dry-run plan (no cluster needed)
demo: install
	$(BIN)/peakcast validate-config --config config/peakcast.yaml
	$(BIN)/peakcast backtest --config config/peakcast.yaml
	$(BIN)/peakcast plan --config config/peakcast.yaml --at 1970-01-12T18:00:00

## test: the whole test suite, including a real Prometheus server (installed when missing)
test: install
	bash scripts/ensure-prometheus.sh
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q

## lint: formatting, lint and types
lint: install
	$(BIN)/ruff format --check forecaster scaler tests bench
	$(BIN)/ruff check forecaster scaler tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## bench: long measurements; results go to docs/BENCHMARKS.md
bench: install
	bash scripts/ensure-prometheus.sh
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis

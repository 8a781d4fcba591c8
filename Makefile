# Docflow — `make help` lists the targets.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export NEXT_TELEMETRY_DISABLED := 1

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(BIN)/docflow: pyproject.toml requirements.lock
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

install: $(BIN)/docflow ## Create the virtualenv and install pinned dependencies

lock: ## Re-pin requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --extra dev -o requirements.lock --no-header --no-annotate -q

run: install ## Run the whole stack locally (embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL)
	$(BIN)/docflow run

migrate: install ## Apply database migrations
	$(BIN)/docflow migrate

test: install ## Run the whole test suite against real PostgreSQL, Redis and workers
	$(BIN)/pytest -q

lint: install ## ruff
	$(BIN)/ruff check src tests migrations

fmt: install ## ruff format
	$(BIN)/ruff format src tests migrations
	$(BIN)/ruff check --fix src tests migrations

typecheck: install ## mypy --strict
	$(BIN)/mypy

clean: ## Remove build output and caches (keeps ./var data)
	rm -rf .pytest_cache .mypy_cache .ruff_cache frontend/out frontend/.next
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

.PHONY: help install lock run migrate test lint fmt typecheck clean

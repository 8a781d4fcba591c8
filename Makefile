# Docflow — `make help` lists the targets; README.md walks through each one.
SHELL := /bin/bash
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
COMPOSE ?= docker compose -f deploy/compose.yaml --env-file .env
PORT ?= 8080
export PORT
export NEXT_TELEMETRY_DISABLED := 1
HAS_UI := $(wildcard frontend/package.json)

.DEFAULT_GOAL := help

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

# ---- set-up ---------------------------------------------------------------------------------

$(BIN)/docflow: pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	if [ -x $(BIN)/uv ] || command -v uv >/dev/null; then \
	  UV=$$( [ -x $(BIN)/uv ] && echo $(BIN)/uv || echo uv ); \
	  VIRTUAL_ENV=$(VENV) $$UV pip install -q -r requirements.lock && \
	  VIRTUAL_ENV=$(VENV) $$UV pip install -q --no-deps -e .; \
	else \
	  $(BIN)/pip install -q --upgrade pip && \
	  $(BIN)/pip install -q -r requirements.lock && \
	  $(BIN)/pip install -q --no-deps -e .; \
	fi
	@touch $@

install: $(BIN)/docflow ## Create .venv and install the pinned Python dependencies

lock: ## Re-pin requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --extra dev -o requirements.lock --no-header --no-annotate -q

ui: ## Build the UI to frontend/out (npm ci && npm run build)
ifneq ($(HAS_UI),)
	cd frontend && npm ci --no-audit --no-fund && npm run build
else
	@echo "no frontend/package.json: nothing to build"
endif

build: ui ## Build everything: the UI, and the container images when Docker is present
	@if docker compose version >/dev/null 2>&1; then $(COMPOSE) build; \
	else echo "docker compose not available: images not built (make check-deploy validates them)"; fi

# ---- run on this machine (no Docker) ---------------------------------------------------------

run: install ## Whole stack on http://127.0.0.1:$(PORT): embedded PostgreSQL/Redis unless configured
	$(BIN)/docflow run --port $(PORT)

dev: install ## Like run, without rebuilding the UI (pair with make dev-ui for hot reload)
	DOCFLOW_SKIP_UI_BUILD=1 $(BIN)/docflow run --port $(PORT)

dev-ui: ## Next.js dev server with hot reload (API expected on :$(PORT))
	cd frontend && npm run dev

worker: install ## Run one worker against DATABASE_URL/REDIS_URL (for extra machines)
	$(BIN)/docflow worker -c $${CONCURRENCY:-2}

migrate: install ## Apply database migrations
	$(BIN)/docflow migrate

users: install ## List accounts; create one with EMAIL=… ROLE=admin|reviewer|uploader
	@if [ -n "$(EMAIL)" ]; then $(BIN)/docflow users create --email "$(EMAIL)" --role "$${ROLE:-uploader}"; \
	else $(BIN)/docflow users list; fi

shell: install ## Python shell with Docflow's settings loaded (docker: make shell SVC=api)
	@if [ -n "$(SVC)" ]; then $(COMPOSE) exec $(SVC) bash; \
	else $(BIN)/python -i -c "from docflow.config import get_settings; s = get_settings(); print('settings in s')"; fi

psql: ## psql into the configured database
	psql "$${DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/docflow}"

backup: install ## Archive database + file store + manifest to var/backups (KEEP=n to prune)
	$(BIN)/docflow backup --out $${BACKUP_DIR:-var/backups} --keep $${KEEP:-0}

restore: install ## Restore FILE=var/backups/docflow-backup-….tar into an empty database, verify it
	@test -n "$(FILE)" || { echo "usage: make restore FILE=var/backups/docflow-backup-….tar"; exit 2; }
	$(BIN)/docflow restore "$(FILE)"

# ---- containers (Docker Compose) -------------------------------------------------------------

.env:
	@echo ".env missing: copying .env.example (edit the secrets!)"; cp .env.example .env

up: .env ## docker compose up -d --wait: nginx, api, worker, beat, flower, postgres, redis
	$(COMPOSE) up -d --wait

down: ## Stop the containers (volumes are kept)
	$(COMPOSE) down

logs: ## Follow the containers' logs
	$(COMPOSE) logs -f --tail=100

status: ## Containers and their state
	$(COMPOSE) ps

health: ## Each container's health, then the API's readiness through nginx
	@$(COMPOSE) ps --format 'table {{.Service}}\t{{.State}}\t{{.Health}}' 2>/dev/null || echo "(no containers: docker compose unavailable)"
	@curl -fsS "http://127.0.0.1:$${EDGE_PORT:-$(PORT)}/api/v1/health/ready" && echo || { echo "API not ready"; exit 1; }

check-deploy: install ## Validate what cannot boot here: compose schema, nginx -t, hadolint, shellcheck
	bash deploy/check.sh

# ---- quality ---------------------------------------------------------------------------------

test: install ## The whole suite: UI unit tests and build, then pytest on real PostgreSQL/Redis/workers/Chromium
ifneq ($(HAS_UI),)
	$(MAKE) ui
	cd frontend && npm run typecheck && npm test
endif
	@# pytest exits 5 when it collected nothing: say so plainly instead of a bare make error.
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; fi; exit $$rc

test-faults: install ## Fault-injection suite (tests/faults): killed workers, lost Redis, …
	@if [ -d tests/faults ]; then $(BIN)/pytest -q -p no:cacheprovider tests/faults; \
	else echo "no tests/faults"; fi

e2e: install ui ## Browser end-to-end tests in Chromium (tests/e2e); UPDATE_SCREENSHOTS=1 refreshes docs/screenshots
	@if [ -d tests/e2e ]; then $(BIN)/pytest -q -p no:cacheprovider tests/e2e; \
	elif [ -f frontend/package.json ] && grep -q '"e2e"' frontend/package.json; then cd frontend && npm run e2e; \
	else echo "no e2e suite yet"; fi

bench: install ## Benchmarks: each prints our figure beside its baseline's
	@if [ -f bench/run.py ]; then $(BIN)/python bench/run.py; \
	elif [ -d bench ]; then for f in bench/bench_*.py; do $(BIN)/python "$$f" || exit 1; done; \
	else echo "no bench/ yet"; fi

eval: install ## Extraction fidelity and categorisation accuracy, before and after learning
	$(BIN)/python bench/eval.py

lint: install ## ruff check + shellcheck on the deploy scripts
	$(BIN)/ruff check src tests migrations
	@if command -v shellcheck >/dev/null; then shellcheck deploy/*.sh .ci/run; else echo "shellcheck not installed"; fi

fmt: install ## ruff format and autofix
	$(BIN)/ruff format src tests migrations
	$(BIN)/ruff check --fix src tests migrations

typecheck: install ## mypy --strict
	$(BIN)/mypy

clean: ## Remove build output and caches (keeps ./var data and .venv)
	rm -rf .pytest_cache .mypy_cache .ruff_cache frontend/out frontend/.next
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

distclean: clean ## clean + remove .venv, node_modules and ALL local data in ./var
	rm -rf $(VENV) frontend/node_modules var

.PHONY: help install lock ui build run dev dev-ui worker migrate users shell psql backup restore \
	up down logs status health check-deploy test test-faults e2e bench eval lint fmt typecheck \
	clean distclean

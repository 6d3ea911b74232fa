# Picture: `make run` starts the whole system, `make test` runs every test. Both install what
# they need first (uv in .tools/, the workspace venv in .venv/), so a fresh clone needs only
# Python 3.11+ and make.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

PYPROJECTS := pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml clients/*/pyproject.toml)
PYTEST_ARGS ?=
# `make run REPLICAS=2 NATS_NODES=3`: every service as two processes on a 3-node JetStream
# cluster. REPLICAS also takes per-service counts: REPLICAS=1,gateway=2,replicate-adapter=3.
REPLICAS ?= 1
NATS_NODES ?= 1
MYPY_PACKAGES := -p picture.common -p picture.gateway -p picture.orchestrator -p picture.replicate_adapter \
	-p picture.media -p picture.catalog -p picture.replicate_simulator -p picture.devstack -p picture.client -p picture.importer

.PHONY: help install run observe token test unit integration lint typecheck deploy-check fmt clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock $(PYPROJECTS)
	$(UV) sync --locked --all-packages
	@touch $@

install: $(VENV)/.synced ## install uv and the workspace (idempotent)

run: install ## start NATS, PostgreSQL, the simulator and the five services (Ctrl-C stops)
	$(VENV)/bin/picture-devstack run --replicas $(REPLICAS) --nats-nodes $(NATS_NODES)

observe: install ## with `make run` up: Prometheus (alert rules, exemplars) scraping it; prints its URL
	$(VENV)/bin/picture-devstack observe

token: install ## print a development access token (make token USER=<uuid> for a given user)
	@$(VENV)/bin/picture-devstack token $(if $(filter command line,$(origin USER)),--user $(USER))

lint: install ## ruff
	$(VENV)/bin/ruff check .

typecheck: install ## mypy --strict on every package
	$(VENV)/bin/mypy $(MYPY_PACKAGES)

unit: install ## unit tests of every package, and the import contract
	$(VENV)/bin/pytest -q libs services tools clients tests/architecture $(PYTEST_ARGS)

integration: install ## the real flow: NATS, PostgreSQL, simulator and services as processes
	$(VENV)/bin/pytest -q tests/integration $(PYTEST_ARGS)

deploy-check: ## offline checks of deploy/ (kustomize, yamllint, kubernetes-validate, checkov, promtool, dashboards, compose)
	bash deploy/check.sh

test: install lint typecheck deploy-check ## everything CI runs
	$(VENV)/bin/pytest -q libs services tools clients tests/architecture tests/integration $(PYTEST_ARGS)

fmt: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean: ## remove the venv and tools (var/ with your data stays)
	rm -rf $(VENV) $(TOOLS)

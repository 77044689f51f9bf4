# pdm-assets: `make run` materializes every asset, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
# The uv on PATH, else one this Makefile installs under .tools/ (no PATH change, no user site needed).
LOCAL_UV := $(CURDIR)/.tools/uv/bin/uv
UV ?= $(shell command -v uv 2>/dev/null || echo $(LOCAL_UV))
RUN := $(UV) run --frozen --extra deploy
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
# podman's network helper runs iptables from PATH; a minimal PATH (no /usr/sbin) breaks its builds and runs.
export PATH := $(PATH):/usr/local/sbin:/usr/sbin:/sbin
# Ports: each tool's own where it has one (Dagster UI 3000, MLflow 5000); the service 3100 (its config).
SERVE_PORT ?= 3100

.PHONY: install run test test-fast ui serve mlflow-ui lint typecheck clean help report rollback trust champion up down load bench

help:
	@echo "make run        install what is missing, then materialize every asset (a summary at the end)"
	@echo "make test       run the test suite (make test-fast: the unit tier only)"
	@echo "make report     score the latest complete day, then reports/fleet_report.html for the planner"
	@echo "make ui         Dagster UI (webserver + daemon) on http://127.0.0.1:3000"
	@echo "make mlflow-ui  MLflow UI on http://127.0.0.1:5000 for the local store (mlflow.db)"
	@echo "make serve      serve the current champion's bento on http://127.0.0.1:$(SERVE_PORT)"
	@echo "make up         local stack: Dagster, MLflow+Postgres, service, Prometheus, Grafana (deploy/compose.yaml)"
	@echo "make down       stop the local stack"
	@echo "make load       Locust, 50 rps for 60 s against bentoml serve on loopback, results asserted"
	@echo "make rollback VERSION=n   move the champion alias back to version n"
	@echo "make trust VERSION=n      record the sha256 of a version registered before models were hashed"
	@echo "make bench      pipeline at 100/300/1,000 machines, serving vs mlflow, the machine-group fan-out at 1,000 and 10,000 (about 1 h): reports/benchmarks.{json,md}"

$(LOCAL_UV):
	$(PYTHON) -m pip install --quiet --target $(CURDIR)/.tools/uv uv

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra deploy
	@touch $@

# Read by `dagster dev` and `dg dev` in this folder, so the tools' own commands use the same instance as make.
.env:
	@echo "DAGSTER_HOME=$(DAGSTER_HOME)" > $@

# An empty dagster.yaml: the default sqlite instance, without Dagster's warning that none was found.
$(DAGSTER_HOME)/dagster.yaml:
	mkdir -p $(DAGSTER_HOME) && touch $@

install: .venv/.synced .env $(DAGSTER_HOME)/dagster.yaml

# The daily `planning` assets (fleet_risk, outcomes, the report) are partitioned by day: `make report`.
run: install
	$(RUN) dg launch --assets '* and not group:planning'
	$(RUN) python -m pdm_assets.cli summary

report: install
	$(RUN) python -m pdm_assets.cli report

test: install
	$(RUN) pytest

test-fast: install
	$(RUN) pytest pdm_assets_tests/unit

ui: install
	$(RUN) dg dev --host 127.0.0.1 --port 3000

serve: install
	$(RUN) python -m pdm_assets.cli serve --port $(SERVE_PORT)

mlflow-ui: install
	$(RUN) mlflow ui --host 127.0.0.1 --port 5000

lint: install
	$(RUN) ruff check pdm_assets pdm_assets_tests bentos
	$(RUN) dg check defs

typecheck: install
	$(RUN) mypy pdm_assets/lib

clean:
	rm -rf .dagster_home mlruns mlflow.db reports

rollback: install
	@test -n "$(VERSION)" || { echo "usage: make rollback VERSION=n"; exit 2; }
	$(RUN) python -m pdm_assets.cli rollback --version "$(VERSION)"

trust: install
	@test -n "$(VERSION)" || { echo "usage: make trust VERSION=n"; exit 2; }
	$(RUN) python -m pdm_assets.cli trust --version "$(VERSION)"

champion: install
	$(RUN) python -m pdm_assets.cli champion

up: install
	UV=$(UV) deploy/scripts/stack.sh up

down:
	deploy/scripts/stack.sh down

load: install
	$(RUN) pytest -q -s -p no:cacheprovider pdm_assets_tests/ops/test_service.py -k locust

bench: install
	$(RUN) python -m pdm_assets_tests.benchmarks

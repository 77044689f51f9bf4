# pdm-assets: `make run` materializes every asset, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
MLFLOW_DB ?= mlruns/mlflow.db

.PHONY: install run test test-fast ui serve mlflow-ui lint typecheck clean help rollback champion up down load bench

help:
	@echo "make run        install what is missing, then materialize every asset"
	@echo "make test       run the test suite"
	@echo "make ui         Dagster webserver + daemon on http://127.0.0.1:3001"
	@echo "make mlflow-ui  MLflow UI on http://127.0.0.1:5000 for the local store"
	@echo "make serve      serve the current champion's bento on http://127.0.0.1:3000"
	@echo "make up         local stack: Dagster, MLflow+Postgres, service, Prometheus, Grafana (deploy/compose.yaml)"
	@echo "make down       stop the local stack"
	@echo "make load       Locust, 50 rps for 60 s against bentoml serve on loopback, results asserted"
	@echo "make rollback VERSION=n   move the champion alias back to version n"
	@echo "make bench      pipeline at 100/300/1,000 machines, serving vs mlflow (<= 15 min): reports/benchmarks.{json,md}"

$(UV):
	$(PYTHON) -m pip install --user --quiet uv || $(PYTHON) -m pip install --quiet uv

.venv/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --extra deploy
	@touch $@

install: .venv/.synced

$(DAGSTER_HOME):
	mkdir -p $(DAGSTER_HOME)

run: install | $(DAGSTER_HOME)
	$(UV) run dagster asset materialize -m pdm_assets.definitions --select '*'

test: install
	$(UV) run pytest

test-fast: install
	$(UV) run pytest -m "not container and not browser and not slow"

ui: install | $(DAGSTER_HOME)
	$(UV) run dagster dev -w workspace.yaml -h 127.0.0.1 -p 3001

serve: install
	$(UV) run python -m pdm_assets.lib.serving.bento serve --port 3000

mlflow-ui: install
	$(UV) run mlflow ui --backend-store-uri sqlite:///$(MLFLOW_DB) -h 127.0.0.1 -p 5000

lint: install
	$(UV) run ruff check pdm_assets pdm_assets_tests bentos

typecheck: install
	$(UV) run mypy pdm_assets/lib

clean:
	rm -rf .dagster_home mlruns bentoml_home reports

rollback: install
	@test -n "$(VERSION)" || { echo "usage: make rollback VERSION=n"; exit 2; }
	$(UV) run python -m pdm_assets.cli rollback --version "$(VERSION)"

champion: install
	$(UV) run python -m pdm_assets.cli champion

up: install
	UV=$(UV) deploy/scripts/stack.sh up

down:
	deploy/scripts/stack.sh down

load: install
	$(UV) run pytest -q -s -p no:cacheprovider pdm_assets_tests/test_ops_service.py -k locust

bench: install
	$(UV) run python -m pdm_assets_tests.benchmarks

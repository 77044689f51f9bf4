"""One training at a time: the steps that fit models are in the `training` pool, and the instance configurations
(Helm values, the compose stack's dagster.yaml, the documented one) limit it to one run, which Dagster accepts
and which keeps a second training run queued."""

import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import PoolGranularity
from dagster._core.op_concurrency_limits_counter import GlobalOpConcurrencyLimitsCounter

from pdm_assets.defs.automation import TRAINING_POOL
from pdm_assets_tests.support.documented import documented_instance_config
from pdm_assets_tests.support.paths import ROOT

HELM_VALUES = yaml.safe_load((ROOT / "deploy" / "helm" / "dagster-values.yaml").read_text())
COMPOSE_INSTANCE = yaml.safe_load((ROOT / "deploy" / "dagster" / "dagster.yaml").read_text())
FITTING_ASSETS = {"model", "baselines", "rolling_origin"}


@pytest.fixture(scope="module")
def definitions() -> dg.Definitions:
    from pdm_assets.definitions import defs

    return defs.load_fn()  # `@dg.definitions` makes a loader


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def chart_instance(values: dict[str, Any]) -> dict[str, Any]:
    """The run coordinator and concurrency parts of the dagster.yaml the chart writes from these values
    (templates/helpers/instance/_run-coordinator.tpl and _concurrency.tpl: unset fields are left out)."""
    coordinator = values["dagsterDaemon"]["runCoordinator"]
    queued = (coordinator.get("config") or {}).get("queuedRunCoordinator") or {}
    written: dict[str, Any] = {"run_coordinator": {"module": "dagster._core.run_coordinator",
                                                   "class": coordinator["type"]}}
    if settings := {snake(k): v for k, v in queued.items() if v not in (None, [])}:
        written["run_coordinator"]["config"] = settings
    concurrency = values.get("concurrency") or {}
    if concurrency.get("enabled"):
        parts = {part: {snake(k): v for k, v in (concurrency.get(part) or {}).items() if v not in (None, [])}
                 for part in ("pools", "runs")}
        written["concurrency"] = {part: fields for part, fields in parts.items() if fields}
    return written



def test_the_steps_that_fit_models_are_the_training_pool_and_the_only_pool(definitions: dg.Definitions) -> None:
    pools = {key.to_user_string(): asset.op.pool for asset in definitions.assets or []
             if isinstance(asset, dg.AssetsDefinition) for key in asset.keys}
    assert {name for name, pool in pools.items() if pool} == FITTING_ASSETS
    assert {pools[name] for name in FITTING_ASSETS} == {TRAINING_POOL}


@pytest.mark.parametrize("source", ["helm", "compose", "docs"])
def test_every_instance_configuration_limits_the_training_pool_to_one_run(source: str) -> None:
    configs = {"helm": chart_instance(HELM_VALUES), "compose": COMPOSE_INSTANCE, "docs": documented_instance_config()}
    config = configs[source]
    assert config["concurrency"]["pools"] == {"default_limit": 1, "granularity": "run"}
    assert config["concurrency"]["runs"] == {"max_concurrent_runs": 4}
    assert "config" not in config["run_coordinator"], "Dagster refuses queue limits in both places"
    assert "dagster/concurrency_key" not in yaml.safe_dump(config), "a run tag nothing sets"


def instance_config(source: dict[str, Any]) -> dict[str, Any]:
    """The configuration's queue and limits on a local instance (the Postgres storage is tested elsewhere)."""
    return {"run_coordinator": source["run_coordinator"], "concurrency": source["concurrency"]}


def test_a_second_training_run_stays_queued_while_one_runs(definitions: dg.Definitions, tmp_path: Path) -> None:
    """The daemon's dequeue decision, on an instance configured as the Helm values configure it."""
    job = definitions.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test(overrides=instance_config(chart_instance(HELM_VALUES)),
                              temp_dir=str(tmp_path)) as instance:
        pools = instance.get_concurrency_config().pool_config
        assert pools.pool_granularity == PoolGranularity.RUN and pools.default_pool_limit == 1

        def run(assets: set[str], status: dg.DagsterRunStatus) -> dg.DagsterRun:
            subset = job.get_subset(asset_selection={dg.AssetKey(name) for name in assets})
            return instance.create_run_for_job(subset, status=status)

        def blocked(runs: list[dg.DagsterRun]) -> list[bool]:
            in_progress = instance.get_run_records(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
            counter = GlobalOpConcurrencyLimitsCounter(
                instance, runs, in_progress, concurrency_keys=instance.event_log_storage.get_concurrency_keys(),
                pool_limits=instance.event_log_storage.get_pool_limits(), pool_granularity=pools.pool_granularity,
            )
            return [counter.is_blocked(r) for r in runs]

        training = run({"model"}, dg.DagsterRunStatus.STARTED)
        # the daemon's batch of queued runs (a queued run needs a code location's origin; the pools do not)
        queued = [run(assets, dg.DagsterRunStatus.NOT_STARTED)
                  for assets in ({"model", "evaluation"}, {"rolling_origin"}, {"labels"})]
        blocked(queued)  # the daemon's first pass sets the pool's limit to the default
        assert blocked(queued) == [True, True, False]
        instance.report_run_failed(training)
        assert blocked(queued) == [False, False, False]

"""Machine-group partitions in process: each group materialized on its own, then the fleet-wide steps fan in.

With a training budget that keeps every row, three groups must reproduce the one-group (unpartitioned) run's
model and evaluation exactly: partitioning changes where the work runs, not what it computes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from pdm_assets.lib.data.groups import group_keys
from pdm_assets_tests.support.project import load_defs

pytestmark = pytest.mark.slow

FLEET = {"PDM_DATA_SOURCE": "synthetic", "PDM_SYNTHETIC_MACHINES": "12", "PDM_SYNTHETIC_DAYS": "100"}
PER_GROUP = dg.AssetSelection.groups("ingest", "features") | dg.AssetSelection.assets("training_sample")
FAN_IN = dg.AssetSelection.assets("model", "baselines", "evaluation")
# Fields that name the run, not the figures.
RUN_FIELDS = ("generated_at", "model_version")


def run_graph(groups: int, budget: int, monkeypatch: pytest.MonkeyPatch, folder: Path) -> dict[str, Any]:
    """Every group's per-machine assets, the fan-in model and baselines, each group's scores, then evaluation."""
    monkeypatch.setenv("PDM_MACHINE_GROUPS", str(groups))
    monkeypatch.setenv("PDM_TRAINING_NEGATIVE_BUDGET", str(budget))
    monkeypatch.setenv("PDM_REPORTS_DIR", str(folder))
    defs = load_defs()
    instance = dg.DagsterInstance.ephemeral()
    everything = [*(defs.assets or []), *(defs.asset_checks or [])]

    def run(selection: dg.AssetSelection, key: str | None = None) -> dg.ExecuteInProcessResult:
        return dg.materialize(everything, selection=selection, partition_key=key, resources=defs.resources,
                              instance=instance)

    keys = group_keys(groups) if groups > 1 else [None]
    for key in keys:
        run(PER_GROUP, key)
    model = run(dg.AssetSelection.assets("model", "baselines"))
    for key in keys:
        run(dg.AssetSelection.assets("scored_rows"), key)
    run(dg.AssetSelection.assets("evaluation"))
    metadata = next(e for e in model.get_asset_materialization_events()
                    if e.asset_key == dg.AssetKey("model")).materialization.metadata
    report = json.loads((folder / "evaluation.json").read_text())
    return {"report": {k: v for k, v in report.items() if k not in RUN_FIELDS},
            "samples": metadata["sample_rows_by_group"].value, "train_rows": metadata["train_rows"].value}


def test_three_groups_reproduce_the_one_group_model_and_evaluation(
    isolated_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in FLEET.items():
        monkeypatch.setenv(name, value)
    whole = run_graph(1, 10**9, monkeypatch, isolated_project / "one")
    grouped = run_graph(3, 10**9, monkeypatch, isolated_project / "three")
    assert set(grouped["samples"]) == set(group_keys(3))
    assert all(rows > 0 for rows in grouped["samples"].values())
    assert sum(grouped["samples"].values()) == whole["samples"]["fleet"]
    assert grouped["train_rows"] == whole["train_rows"]
    assert grouped["report"] == whole["report"]
    assert whole["report"]["events"] > 0


def test_a_small_budget_bounds_every_groups_sample(isolated_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FLEET.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PDM_MACHINE_GROUPS", "3")
    monkeypatch.setenv("PDM_TRAINING_NEGATIVE_BUDGET", "1500")
    defs = load_defs()
    instance = dg.DagsterInstance.ephemeral()
    rates = {}
    for key in group_keys(3):
        result = dg.materialize(list(defs.assets or []), selection=PER_GROUP, partition_key=key,
                                resources=defs.resources, instance=instance)
        sample = next(e for e in result.get_asset_materialization_events()
                      if e.asset_key == dg.AssetKey("training_sample")).materialization.metadata
        rates[key] = sample["negative_rate"].value
        kept_negatives = sample["dagster/row_count"].value - sample["near_failure_rows"].value
        assert kept_negatives < 1500 // 3 * 1.3
        assert sample["group_rows"].value > sample["dagster/row_count"].value
    assert all(0 < rate < 1 for rate in rates.values())

"""The model card is generated from a real report: every section, every figure with its interval."""

from __future__ import annotations

import pytest
from threadpoolctl import threadpool_limits

from pdm_assets.lib.evaluation import protocol
from pdm_assets.lib.evaluation.model_card import build_model_card, results_table
from pdm_assets.lib.evaluation.plots import PLOT_NAMES
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.modelling.train import fit_and_tune
from pdm_assets_tests.support.fleet import StandardSplit


@pytest.fixture(scope="module")
def report(standard_split: StandardSplit) -> dict:
    fleet, table, plan, parts = standard_split.fleet, standard_split.table, standard_split.plan, standard_split.parts
    config = protocol.ProtocolConfig(horizon_hours=24, grid_hours=3, cost_missed=50, cost_false_alarm=1,
                                     negative_fraction=0.25, seed=0, resamples=30, replica_max_rows=200)
    with threadpool_limits(1, user_api="openmp"):
        trained = fit_and_tune(parts["train"], parts["validation"], fleet.failures, feature_columns=FEATURE_COLUMNS,
                               horizon_hours=24, grid_hours=3, cost_missed=50, cost_false_alarm=1,
                               negative_fraction=0.25, seed=0, param_grid={"learning_rate": (0.1,)})
        result = protocol.run_protocol(table, fleet.failures, plan, trained, config, importance=False)
    result.horizons["48"] = {"horizon_hours": 48, "skipped": "too short"}
    return protocol.report(result, data_source="synthetic", extra={"model_version": "7", "generated_at": "now"})


def test_card_has_every_section(report: dict) -> None:
    card = build_model_card(report, model={"registered_name": "m", "registry_uri": "models:/m/7"}, plots=PLOT_NAMES)
    for heading in ("## Intended use", "## Data", "## Protocol", "## Results on the test period", "## Limitations",
                    "## How to reproduce", "### The Microsoft Modelling Guide", "### Calibration"):
        assert heading in card
    assert "version 7" in card and "models:/m/7" in card
    assert "error precursor" in card or "error of the failing component's type 24 h" in card
    for name in PLOT_NAMES:
        assert f"(plots/{name}.png)" in card
    assert "Skipped: too short" in card


def test_results_table_shows_each_model_with_its_interval(report: dict) -> None:
    table = results_table(report)
    for name in ("ours", "always_none", "error_rule", "guide_replica", "ours_no_telemetry"):
        assert f"| {name} " in table
    low, high = report["ci"]["event_recall"]
    assert f"[{low:.3f}, {high:.3f}]" in table

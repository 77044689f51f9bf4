"""Rolling-origin folds: expanding windows that never reach into their test period, and every later failure
scored once, on a small synthetic fleet."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.sources import load_synthetic
from pdm_assets.lib.evaluation.events import failure_events
from pdm_assets.lib.evaluation.rolling_origin import (
    DAY_AHEAD,
    EARLY,
    EITHER,
    RULE,
    RollingConfig,
    rolling_origin,
    rolling_table,
)
from pdm_assets.lib.modelling.early_warning import TuningCosts
from pdm_assets.lib.modelling.features import build_features
from pdm_assets.lib.modelling.split import plan_for_horizon, rolling_plans

FIRST, LAST = datetime(2015, 1, 1, 6), datetime(2015, 3, 31, 21)


def test_rolling_plans_tile_the_data_after_the_warm_up_with_gaps_of_the_horizon() -> None:
    plans = rolling_plans(FIRST, LAST, warmup=timedelta(days=30), step=timedelta(days=14), horizon_hours=48,
                          validation_fraction=0.2)
    assert plans[0].test_start == datetime(2015, 1, 31, 6)
    assert all(a.test_end == b.test_start for a, b in zip(plans, plans[1:], strict=False))
    assert plans[-1].test_end == LAST + timedelta(seconds=1)
    for plan in plans:
        assert plan.train_start == FIRST and plan.kind == "rolling"
        assert plan.train_end + timedelta(hours=48) <= plan.validation_start
        assert plan.validation_end + timedelta(hours=48) <= plan.test_start
    assert [p.validation_end for p in plans] == sorted(p.validation_end for p in plans)  # expanding
    year = rolling_plans(FIRST, FIRST + timedelta(days=365), warmup=timedelta(days=30), step=timedelta(days=14),
                         horizon_hours=48, validation_fraction=0.2, max_folds=8)
    assert len(year) == 8 and year[-1].test_end == FIRST + timedelta(days=365, seconds=1)


def test_a_later_first_row_keeps_the_test_period() -> None:
    plan = rolling_plans(FIRST, LAST, warmup=timedelta(days=30), step=timedelta(days=14), horizon_hours=24,
                         validation_fraction=0.2)[1]
    moved = plan_for_horizon(plan, FIRST + timedelta(days=10), 48, 0.2)
    assert (moved.test_start, moved.test_end) == (plan.test_start, plan.test_end)
    assert moved.train_start == FIRST + timedelta(days=10) and moved.gap_hours == 48
    assert moved.validation_end + timedelta(hours=48) <= moved.test_start


@pytest.fixture(scope="module")
def fleet_report() -> tuple[dict, pd.DataFrame]:
    raw = load_synthetic(20, 80, 5, datetime(2015, 1, 1, 6))
    features = build_features(raw.telemetry, raw.errors, raw.maint, raw.machines, grid_hours=3, baseline_hours=240)
    config = RollingConfig(horizon_hours=24, early_horizon_hours=48, baseline_hours=240, warmup_days=35,
                           step_days=15, max_folds=8, max_machines=100, validation_fraction=0.3, resamples=50,
                           costs=TuningCosts(grid_hours=3, cost_missed=50.0, cost_false_alarm=1.0,
                                             negative_fraction=0.25, seed=0))
    return rolling_origin(features, raw.failures, config), raw.failures


@pytest.mark.slow
def test_every_failure_after_the_warm_up_is_scored_once_by_heads_that_never_saw_it(
    fleet_report: tuple[dict, pd.DataFrame],
) -> None:
    report, failures = fleet_report
    folds = report["folds"]
    assert len(folds) == 3 and not any("skipped" in f for f in folds)
    assert all(f["validation_events"][DAY_AHEAD] > 0 for f in folds)  # validation periods hold failures
    for fold in folds:
        start = pd.Timestamp(fold["test_start"])
        for head in (EARLY, DAY_AHEAD):
            assert pd.Timestamp(fold["validation"][head][1]) <= start - pd.Timedelta(hours=24)
            assert pd.Timestamp(fold["train_end"][head]) < pd.Timestamp(fold["validation"][head][0])
    events = failure_events(failures)
    expected = events[(events["datetime"] >= pd.Timestamp(report["events_from"]))
                      & (events["datetime"] <= pd.Timestamp(folds[-1]["test_end"]))]
    assert len(expected) > 5
    for name in (EARLY, DAY_AHEAD, RULE, EITHER):
        assert report["models"][name]["events"] == len(expected), name
    assert sum(f["test_rows"] for f in folds) == pytest.approx(
        report["models"][EARLY]["machine_days"] * 24 / 3)  # each test row scored once


@pytest.mark.slow
def test_the_report_has_intervals_curves_targets_and_a_table(fleet_report: tuple[dict, pd.DataFrame]) -> None:
    report, _ = fleet_report
    early = report["models"][EARLY]
    for name, (low, high) in early["ci"].items():
        assert low is None or low <= high, name
    assert report["at_own_horizon"][DAY_AHEAD]["horizon_hours"] == 24
    curve = report["curves"][EARLY]
    assert len(curve["threshold"]) > 10 and max(curve["event_recall"]) > early["event_recall"] - 1e-12
    assert set(report["targets"][EARLY]) == {"share_first_alerted_36h_ahead", "event_recall",
                                             "false_alarm_episodes_per_100_machine_days"}
    table = rolling_table(report)
    assert table.count("\n") == 1 + 4 + 2 and "| early_warning |" in table
    # The error rule alerts when the error arrives, 24 h ahead: never first 36 h ahead unless an unrelated
    # error came earlier, and it answers every error without a failure.
    rule = report["models"][RULE]
    assert rule["lead_time_median_h"] == 24.0 and rule["false_alarm_episodes_per_100_machine_days"] > 1.0
    assert np.isfinite(early["false_alarm_episodes_per_100_machine_days"])

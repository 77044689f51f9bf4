"""The early-warning head: P(failure within 48 h) from the 24 h model's features plus each machine's baseline.

It is the champion's second head, not a model of its own: one registered version holds both, so the gate
judges them together, a rollback moves both, and the service never pairs a 24 h model with an early
warning trained on other data. It is fitted, tuned and thresholded on validation like the 24 h head,
on the rows whose baseline is usable (the service answers only for those).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from pdm_assets.lib.modelling.dataset import modelling_table, split_parts
from pdm_assets.lib.modelling.features import (
    BASELINE_READINGS_COLUMN,
    EARLY_WARNING_FEATURE_COLUMNS,
    baseline_min_readings,
)
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.split import SplitPlan, plan_for_horizon
from pdm_assets.lib.modelling.train import TrainedModel, fit_and_tune

EARLY_WARNING = "early_warning"  # its key in the model metadata and the name of its MLflow model


@dataclass(frozen=True)
class TuningCosts:
    """What fit_and_tune needs besides the rows: the cost model, the sampling and the seed."""

    grid_hours: int
    cost_missed: float
    cost_false_alarm: float
    negative_fraction: float
    seed: int


def tuning_costs(settings: Any) -> TuningCosts:
    """The tuning knobs from Settings."""
    return TuningCosts(grid_hours=settings.scoring_grid_hours, cost_missed=settings.cost_missed_failure,
                       cost_false_alarm=settings.cost_false_alarm,
                       negative_fraction=settings.negative_sample_fraction, seed=settings.random_seed)


@dataclass(frozen=True)
class EarlyWarningHead:
    """The fitted early-warning head and the periods it was fitted, tuned and is tested on."""

    trained: TrainedModel
    plan: SplitPlan
    horizon_hours: int
    baseline_lookback_hours: int

    @property
    def min_baseline_readings(self) -> int:
        return baseline_min_readings(self.baseline_lookback_hours)

    def contract(self) -> dict[str, Any]:
        """What the service reads about this head (the registry adds where its pipeline is stored)."""
        return {
            "threshold": self.trained.threshold,
            "f1_threshold": self.trained.f1_threshold,
            "horizon_hours": self.horizon_hours,
            "baseline_lookback_hours": self.baseline_lookback_hours,
            "min_baseline_readings": self.min_baseline_readings,
            "feature_columns": self.trained.feature_columns,
            "split": self.plan.to_dict(),
        }


def early_warning_table(
    features: pd.DataFrame, failures: pd.DataFrame, *, horizon_hours: int, baseline_hours: int
) -> pd.DataFrame:
    """The rows with a usable baseline, labelled at the early-warning horizon."""
    if BASELINE_READINGS_COLUMN not in features:
        raise ValueError("the feature table has no baseline features: build it with baseline_hours set "
                         "(PDM_BASELINE_LOOKBACK_HOURS)")
    usable = features[BASELINE_READINGS_COLUMN].to_numpy() >= baseline_min_readings(baseline_hours)
    rows = features[usable].reset_index(drop=True)
    return modelling_table(rows, build_labels(rows, failures, horizon_hours))


def early_warning_plan(
    table: pd.DataFrame, plan: SplitPlan, horizon_hours: int, validation_fraction: float
) -> SplitPlan:
    """The 24 h head's test period for the early-warning rows, which start once a baseline exists."""
    if table.empty:
        raise ValueError("no row has a usable baseline: the early warning needs more than "
                         "PDM_BASELINE_LOOKBACK_HOURS of telemetry per machine")
    first: datetime = table["datetime"].min().to_pydatetime()
    return plan_for_horizon(plan, first, horizon_hours, validation_fraction)


def fit_early_warning(
    table: pd.DataFrame, failures: pd.DataFrame, plan: SplitPlan, costs: TuningCosts, *,
    baseline_hours: int,
) -> EarlyWarningHead:
    """Fit, tune and threshold the head on the train and validation periods of `plan` (early_warning_table rows)."""
    parts = split_parts(table, plan)
    trained = fit_and_tune(
        parts["train"], parts["validation"], failures, feature_columns=EARLY_WARNING_FEATURE_COLUMNS,
        horizon_hours=plan.gap_hours, grid_hours=costs.grid_hours, cost_missed=costs.cost_missed,
        cost_false_alarm=costs.cost_false_alarm, negative_fraction=costs.negative_fraction, seed=costs.seed,
    )
    return EarlyWarningHead(trained, plan, plan.gap_hours, baseline_hours)

"""The standard small split of the unit tier: one synthetic fleet, its features, labels and train/validation/test
rows, built once per session (unit/conftest.py) instead of once per test module."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from pdm_assets.lib.data.tables import RawTables
from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table, split_parts
from pdm_assets.lib.modelling.features import build_features
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.split import SplitPlan
from pdm_assets.lib.synthetic.simulate import generate_fleet

TRAIN_END, TEST_START = datetime(2015, 9, 30, 1), datetime(2015, 10, 1, 1)
HORIZON_HOURS, GRID_HOURS = 24, 3


@dataclass(frozen=True)
class StandardSplit:
    fleet: RawTables
    features: pd.DataFrame
    table: pd.DataFrame  # features joined with their 24 h labels
    plan: SplitPlan
    parts: dict[str, pd.DataFrame]  # train, validation, test


def standard_split() -> StandardSplit:
    """16 machines over 120 days (seed 5), features every 3 h, 24 h labels, test from 1 October 2015."""
    fleet = generate_fleet(machines=16, days=120, seed=5)
    features = build_features(fleet.telemetry, fleet.errors, fleet.maint, fleet.machines, grid_hours=GRID_HOURS)
    table = modelling_table(features, build_labels(features, fleet.failures, HORIZON_HOURS))
    plan = plan_for_table(table, train_end=TRAIN_END, test_start=TEST_START, horizon_hours=HORIZON_HOURS,
                          validation_fraction=0.2)
    return StandardSplit(fleet, features, table, plan, split_parts(table, plan))

"""The modelling table and its time split: the leakage guard of the evaluation protocol."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

import pandas as pd
import pytest

from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table, plan_from_dict, split_parts
from pdm_assets.lib.modelling.features import build_features
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.synthetic.simulate import generate_fleet

GUIDE_SPLIT_3 = (datetime(2015, 9, 30, 1), datetime(2015, 10, 1, 1))


@cache
def fleet_features(machines: int = 8, days: int = 90) -> tuple[pd.DataFrame, pd.DataFrame]:
    fleet = generate_fleet(machines=machines, days=days, seed=11)
    features = build_features(fleet.telemetry, fleet.errors, fleet.maint, fleet.machines, grid_hours=3)
    return features, fleet.failures


@pytest.mark.parametrize("horizon", [24, 48])
def test_no_training_or_validation_row_sees_the_test_period(horizon: int) -> None:
    features, failures = fleet_features()
    table = modelling_table(features, build_labels(features, failures, horizon))
    plan = plan_for_table(table, train_end=GUIDE_SPLIT_3[0], test_start=GUIDE_SPLIT_3[1], horizon_hours=horizon,
                          validation_fraction=0.2)
    parts = split_parts(table, plan)
    test_start = pd.Timestamp(plan.test_start)
    gap = pd.Timedelta(hours=horizon)
    assert len(parts["test"]) and len(parts["train"]) and len(parts["validation"])
    assert (parts["test"]["datetime"] >= test_start).all()
    # A row's label looks (t, t + H] ahead: no training or validation row may look into the test period.
    assert (parts["train"]["datetime"] + gap < test_start).all()
    assert (parts["validation"]["datetime"] + gap < test_start).all()
    # And training rows' labels stay before validation starts.
    assert (parts["train"]["datetime"] + gap < pd.Timestamp(plan.validation_start)).all()


def test_the_guide_dates_are_used_when_the_data_spans_them_and_recorded_otherwise() -> None:
    times = pd.Series(pd.date_range("2015-01-01", "2016-01-01", freq="3h"))
    year = pd.DataFrame({"datetime": times})
    plan = plan_for_table(year, train_end=GUIDE_SPLIT_3[0], test_start=GUIDE_SPLIT_3[1], horizon_hours=24,
                          validation_fraction=0.2)
    assert plan.kind == "configured" and plan.test_start == GUIDE_SPLIT_3[1]
    assert plan.validation_end <= plan.test_start - timedelta(hours=24)
    quarter = pd.DataFrame({"datetime": times[times < pd.Timestamp("2015-04-01")]})
    assert plan_for_table(quarter, train_end=GUIDE_SPLIT_3[0], test_start=GUIDE_SPLIT_3[1], horizon_hours=24,
                          validation_fraction=0.2).kind == "proportional"


def test_modelling_table_without_a_join_equals_the_join() -> None:
    features, failures = fleet_features()
    labels = build_labels(features, failures, 24)
    fast = modelling_table(features, labels)
    joined = features.merge(labels, on=["machineID", "datetime"], validate="one_to_one")
    pd.testing.assert_frame_equal(fast, joined)
    shuffled = labels.sample(frac=1.0, random_state=0)
    slow = modelling_table(features, shuffled).sort_values(["machineID", "datetime"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(slow, joined)


def test_plan_round_trips_through_its_dict() -> None:
    features, _ = fleet_features()
    plan = plan_for_table(features, train_end=GUIDE_SPLIT_3[0], test_start=GUIDE_SPLIT_3[1], horizon_hours=24,
                          validation_fraction=0.2)
    assert plan_from_dict(plan.to_dict()) == plan

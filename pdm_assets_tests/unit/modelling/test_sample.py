"""The training sample: every near-failure row, a bounded share of the others, and nothing changed when the
budget covers the group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.validation import validate_all
from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table
from pdm_assets.lib.modelling.features import build_features
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.sample import LABEL_COLUMNS, feature_part, training_sample
from pdm_assets.lib.synthetic.simulate import generate_fleet

LONGEST = 48


def plan_of(table: pd.DataFrame):
    return plan_for_table(table, train_end=pd.Timestamp("2015-09-30 01:00").to_pydatetime(),
                          test_start=pd.Timestamp("2015-10-01 01:00").to_pydatetime(), horizon_hours=24,
                          validation_fraction=0.2)


@pytest.fixture(scope="module")
def group_table() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    raw = generate_fleet(machines=6, days=60, seed=5)
    valid = {name: outcome.valid for name, outcome in validate_all(
        {name: raw.table(name) for name in ("telemetry", "errors", "maint", "failures", "machines")}).items()}
    features = build_features(valid["telemetry"], valid["errors"], valid["maint"], valid["machines"], grid_hours=3)
    return modelling_table(features, build_labels(features, valid["failures"], 24)), valid["failures"], features


def test_a_budget_covering_the_group_keeps_the_table_as_it_is(group_table) -> None:
    table, failures, _ = group_table
    drawn = training_sample(table, failures, plan_of(table), longest_horizon_hours=LONGEST, negative_budget=10**9,
                            seed=0)
    assert drawn.table is table
    assert drawn.negative_rate == 1.0
    assert drawn.rows == len(table)


def test_a_small_budget_samples_train_rows_and_keeps_whole_machines_elsewhere(group_table) -> None:
    table, failures, _ = group_table
    plan = plan_of(table)
    in_train = plan.part(table["datetime"], "train").to_numpy(bool)
    near = build_labels(table, failures, LONGEST)["failure"].to_numpy(bool)
    assert (near & in_train).any()
    budget = 1000
    drawn = training_sample(table, failures, plan, longest_horizon_hours=LONGEST, negative_budget=budget,
                            seed=[0, 1])
    sample = drawn.table
    sample_train = plan.part(sample["datetime"], "train").to_numpy(bool)
    kept_near = build_labels(sample, failures, LONGEST)["failure"].to_numpy(bool)
    # Train period: every near-failure row, and about the rate's share of the others.
    assert (kept_near & sample_train).sum() == (near & in_train).sum() == drawn.positives
    expected = drawn.negative_rate * (~near & in_train).sum()
    assert abs((~kept_near & sample_train).sum() - expected) < 4 * np.sqrt(expected) + 1
    # Elsewhere: machines whole (every one of their rows outside train), the others not at all.
    outside = table[~in_train]
    kept_outside = sample[~sample_train]
    machines = set(kept_outside["machineID"])
    assert len(machines) == drawn.machines_kept < table["machineID"].nunique()
    assert len(kept_outside) == outside["machineID"].isin(machines).sum()
    keys = sample[["machineID", "datetime"]]
    assert keys.equals(keys.sort_values(["machineID", "datetime"]))  # order kept
    again = training_sample(table, failures, plan, longest_horizon_hours=LONGEST, negative_budget=budget,
                            seed=[0, 1])
    pd.testing.assert_frame_equal(sample, again.table)
    other = training_sample(table, failures, plan, longest_horizon_hours=LONGEST, negative_budget=budget,
                            seed=[0, 2])
    assert not sample.equals(other.table)


def test_feature_part_is_the_feature_table_again(group_table) -> None:
    table, _, features = group_table
    pd.testing.assert_frame_equal(feature_part(table), features)
    assert not set(LABEL_COLUMNS) & set(feature_part(table).columns)
    with pytest.raises(ValueError, match="at least 1"):
        training_sample(table, group_table[1], plan_of(table), longest_horizon_hours=LONGEST, negative_budget=0, seed=0)

"""The training sample: every near-failure row, a bounded share of the others, and nothing changed when the
budget covers the group."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.validation import validate_all
from pdm_assets.lib.modelling.dataset import modelling_table
from pdm_assets.lib.modelling.features import build_features
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.sample import LABEL_COLUMNS, feature_part, training_sample
from pdm_assets.lib.synthetic.simulate import generate_fleet

LONGEST = 48


@pytest.fixture(scope="module")
def group_table() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    raw = generate_fleet(machines=6, days=60, seed=5)
    valid = {name: outcome.valid for name, outcome in validate_all(
        {name: raw.table(name) for name in ("telemetry", "errors", "maint", "failures", "machines")}).items()}
    features = build_features(valid["telemetry"], valid["errors"], valid["maint"], valid["machines"], grid_hours=3)
    return modelling_table(features, build_labels(features, valid["failures"], 24)), valid["failures"], features


def test_a_budget_covering_the_group_keeps_the_table_as_it_is(group_table) -> None:
    table, failures, _ = group_table
    drawn = training_sample(table, failures, longest_horizon_hours=LONGEST, negative_budget=10**9, seed=0)
    assert drawn.table is table
    assert drawn.negative_rate == 1.0
    assert drawn.rows == len(table)


def test_a_small_budget_keeps_every_near_failure_row_and_about_the_budget_of_others(group_table) -> None:
    table, failures, _ = group_table
    near = build_labels(table, failures, LONGEST)["failure"].to_numpy(bool)
    assert near.any()
    budget = 500
    drawn = training_sample(table, failures, longest_horizon_hours=LONGEST, negative_budget=budget, seed=[0, 1])
    kept_near = build_labels(drawn.table, failures, LONGEST)["failure"].to_numpy(bool)
    assert kept_near.sum() == near.sum() == drawn.positives
    assert abs((~kept_near).sum() - budget) < 4 * np.sqrt(budget)
    keys = drawn.table[["machineID", "datetime"]]
    assert keys.equals(keys.sort_values(["machineID", "datetime"]))  # order kept
    again = training_sample(table, failures, longest_horizon_hours=LONGEST, negative_budget=budget, seed=[0, 1])
    pd.testing.assert_frame_equal(drawn.table, again.table)
    other = training_sample(table, failures, longest_horizon_hours=LONGEST, negative_budget=budget, seed=[0, 2])
    assert not drawn.table.equals(other.table)


def test_feature_part_is_the_feature_table_again(group_table) -> None:
    table, _, features = group_table
    pd.testing.assert_frame_equal(feature_part(table), features)
    assert not set(LABEL_COLUMNS) & set(feature_part(table).columns)
    with pytest.raises(ValueError, match="at least 1"):
        training_sample(table, group_table[1], longest_horizon_hours=LONGEST, negative_budget=0, seed=0)

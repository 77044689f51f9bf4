"""Reasons: exact contributions of the fitted pipeline's detector, in log-odds, and their phrases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.tables import MACHINE_MODELS
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.modelling.reasons import FailureExplainer, describe
from pdm_assets.lib.modelling.train import make_pipeline


@pytest.fixture(scope="module")
def fitted_pipeline() -> tuple[object, pd.DataFrame]:
    """The project's pipeline fitted on a random feature table where error4 and low pressure announce failures."""
    rng = np.random.default_rng(0)
    rows = 4000
    table = pd.DataFrame({c: rng.normal(10, 3, rows) for c in FEATURE_COLUMNS if c != "model"})
    table["model"] = rng.choice(list(MACHINE_MODELS), rows)
    table.loc[rng.random(rows) < 0.5, "hours_since_error4"] = np.nan
    risk = table["hours_since_error4"].fillna(999).lt(9) & table["pressure_mean_24h"].lt(11)
    failing = risk.to_numpy() & (rng.random(rows) < 0.9)
    indicators = np.zeros((rows, 4), dtype=bool)
    indicators[failing, rng.integers(0, 4, failing.sum())] = True
    pipeline = make_pipeline(list(FEATURE_COLUMNS), {"max_leaf_nodes": 15}, 0.25, 0).fit(table, indicators)
    return pipeline, table


def test_contributions_sum_to_the_corrected_log_odds(fitted_pipeline: tuple) -> None:
    pipeline, table = fitted_pipeline
    rows = table.head(200)
    found = FailureExplainer(pipeline).contributions(rows)
    probability = pipeline[-1].failure_proba(pipeline[0].transform(rows))
    logit = np.log(probability) - np.log1p(-probability)
    assert found.inputs[0] == "model" and len(found.inputs) == len(FEATURE_COLUMNS)
    np.testing.assert_allclose(found.base_value + found.values.sum(axis=1), logit, rtol=0, atol=1e-6)
    np.testing.assert_allclose(found.log_odds, logit, rtol=0, atol=1e-6)
    # the sampling correction is part of the base value: the detector's own output is log(0.25) higher
    raw = pipeline[-1].detector_.decision_function(pipeline[0].transform(rows))
    np.testing.assert_allclose(found.log_odds - raw, math.log(0.25), atol=1e-9)


def test_an_alerting_row_is_explained_by_the_inputs_that_drive_it(fitted_pipeline: tuple) -> None:
    pipeline, table = fitted_pipeline
    risky = table[table["hours_since_error4"].lt(5) & table["pressure_mean_24h"].lt(8)].head(3)
    assert len(risky) == 3
    for reasons in FailureExplainer(pipeline).reasons(risky, top=3):
        assert len(reasons) == 3
        assert {r.feature for r in reasons[:2]} == {"hours_since_error4", "pressure_mean_24h"}
        assert all(r.contribution > 0 for r in reasons[:2])
        assert abs(reasons[0].contribution) >= abs(reasons[1].contribution) >= abs(reasons[2].contribution)
        error = next(r for r in reasons if r.feature == "hours_since_error4")
        assert error.text == f"error4 {error.value:.0f} h ago"


@pytest.mark.parametrize(
    ("feature", "value", "text"),
    [
        ("hours_since_error4", 21.0, "error4 21 h ago"),
        ("hours_since_error4", float("nan"), "no error4 in the last 168 h"),
        ("hours_since_replacement_comp2", 160 * 24.0, "comp2 not replaced for 160 days"),
        ("hours_since_replacement_comp1", 30.0, "comp1 not replaced for 30 h"),
        ("hours_since_replacement_comp3", float("nan"), "comp3: no replacement on record"),
        ("error1_count_24h", 2.0, "error1 ×2 in the last 24 h"),
        ("error5_count_168h", 0.0, "no error5 in the last 168 h"),
        ("pressure_mean_24h", 112.34, "pressure 24 h mean 112.3"),
        ("pressure_mean_24h_baseline_sigma", 2.31, "pressure mean 24 h +2.3σ over this machine's baseline"),
        ("model", "model3", "machine model3"),
        ("age", 18.0, "machine age 18 years"),
        ("a_new_feature", 0.5, "a new feature 0.5"),
    ],
)
def test_phrases(feature: str, value: object, text: str) -> None:
    assert describe(feature, value) == text

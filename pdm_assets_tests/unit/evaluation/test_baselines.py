"""Baselines: the error-type rule on rows written out here, the guide's feature list, row capping."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.tables import ERROR_IDS
from pdm_assets.lib.evaluation.baselines import (
    GUIDE_FEATURES,
    always_none,
    cap_rows,
    error_rule,
    fit_guide_replica,
)
from pdm_assets.lib.evaluation.metrics import predicted_labels
from pdm_assets.lib.modelling.estimators import failure_probability
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.modelling.labels import CLASSES


def error_rows(rows: list[dict[str, float]]) -> pd.DataFrame:
    """Rows with every error count 0 and no recent error, except what each dict sets."""
    base = {**{f"{e}_count_24h": 0.0 for e in ERROR_IDS}, **{f"hours_since_{e}": np.nan for e in ERROR_IDS}}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_error_rule_alerts_for_the_component_of_the_error() -> None:
    rows = error_rows([
        {},  # nothing in the last 24 h
        {"error1_count_24h": 1, "hours_since_error1": 5},  # comp1
        {"error3_count_24h": 2, "hours_since_error3": 1},  # comp2 (error2 or error3)
        {"error4_count_24h": 1, "hours_since_error4": 20, "error5_count_24h": 1, "hours_since_error5": 2},  # newest
        {"hours_since_error1": 30},  # an error1 30 h ago: outside the 24 h window
    ])
    probs = error_rule(rows)
    score = failure_probability(probs)
    assert score.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]
    assert list(predicted_labels(probs, score, 0.5)) == ["none", "comp1", "comp2", "comp4", "none"]


def test_always_none_never_alerts() -> None:
    probs = always_none(pd.DataFrame(index=range(3)))
    assert list(probs.columns) == list(CLASSES)
    assert failure_probability(probs).tolist() == [0.0, 0.0, 0.0]


def test_the_guide_uses_27_of_our_features() -> None:
    # 3 h and 24 h mean and std of 4 sensors (16), error counts over 24 h (5), time since replacement (4),
    # model and age (2).
    assert len(GUIDE_FEATURES) == 27
    assert set(GUIDE_FEATURES) <= set(FEATURE_COLUMNS)


def test_cap_rows_keeps_at_most_half_each_and_preserves_total_weight() -> None:
    positive = np.array([True] * 10 + [False] * 90)
    weights = np.where(positive, 1.0, 4.0)
    keep, scaled = cap_rows(positive, weights, max_rows=20, seed=0)
    assert keep[positive].sum() == 10 and keep[~positive].sum() == 10
    assert scaled[keep & positive].sum() == pytest.approx(10.0)
    assert scaled[keep & ~positive].sum() == pytest.approx(360.0)
    keep_all, same = cap_rows(positive, weights, max_rows=1000, seed=0)
    assert keep_all.all() and np.array_equal(same, weights)


def test_guide_replica_fits_on_few_rows() -> None:
    rng = np.random.default_rng(0)
    n = 400
    rows = pd.DataFrame({c: rng.normal(size=n) for c in GUIDE_FEATURES if c != "model"})
    rows["model"] = rng.choice(["model1", "model2", "model3", "model4"], n)
    rows["hours_since_replacement_comp1"] = np.where(rng.random(n) < 0.1, np.nan, 100.0)  # imputed
    rows["failure"] = rows["volt_mean_24h"] > 1.2
    rows["label"] = np.where(rows["failure"], "comp1", "none")
    replica = fit_guide_replica(rows, negative_fraction=0.5, seed=0, max_rows=200)
    proba = replica.predict_proba(rows[list(GUIDE_FEATURES)])
    assert proba.shape == (n, 2)
    assert set(replica.classes_) == {"comp1", "none"}

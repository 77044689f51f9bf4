"""Exact TreeSHAP of the detector's log-odds: against brute-force Shapley values, shap's TreeExplainer, and the
booster's own output."""

from __future__ import annotations

from itertools import combinations
from math import factorial

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from pdm_assets.lib.modelling.tree_shap import TreeExplainer

Fitted = tuple[HistGradientBoostingClassifier, np.ndarray]


def fitted(rows: int = 3000, features: int = 6, seed: int = 0, **params: object) -> Fitted:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take the learned side of each split
    signal = np.nan_to_num(X[:, 0]) + 0.7 * np.nan_to_num(X[:, 1]) * (np.nan_to_num(X[:, 2]) > 0)
    y = signal + 0.5 * rng.normal(size=rows) > 1.0
    model = HistGradientBoostingClassifier(max_bins=63, random_state=0, **params).fit(X, y)  # type: ignore[arg-type]
    return model, X


def expected_leaf_value(nodes: np.ndarray, x: np.ndarray, known: set[int], index: int = 0) -> float:
    """E[tree(x) | x_known], the unknown features averaged by the training counts (the paper's Algorithm 1)."""
    node = nodes[index]
    if node["is_leaf"]:
        return float(node["value"])
    feature = int(node["feature_idx"])
    left, right = int(node["left"]), int(node["right"])
    if feature in known:
        value = x[feature]
        goes_left = bool(node["missing_go_to_left"]) if np.isnan(value) else value <= node["num_threshold"]
        return expected_leaf_value(nodes, x, known, left if goes_left else right)
    share = nodes[left]["count"] / node["count"]
    return share * expected_leaf_value(nodes, x, known, left) + (1 - share) * expected_leaf_value(
        nodes, x, known, right)


def brute_force(model: HistGradientBoostingClassifier, x: np.ndarray) -> np.ndarray:
    """Shapley values by enumerating every coalition of the features."""
    n = len(x)
    trees = [predictor.nodes for (predictor,) in model._predictors]

    def value(known: set[int]) -> float:
        return sum(expected_leaf_value(nodes, x, known) for nodes in trees)

    phi = np.zeros(n)
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(n):
            weight = factorial(size) * factorial(n - size - 1) / factorial(n)
            for coalition in combinations(others, size):
                phi[i] += weight * (value({*coalition, i}) - value(set(coalition)))
    return phi


def test_small_ensemble_matches_brute_force_shapley_values() -> None:
    model, X = fitted(rows=800, features=4, max_iter=4, max_leaf_nodes=6)
    explainer = TreeExplainer.of(model)
    rows = X[:6]
    rows[0, 1] = np.nan  # a missing value in an explained row
    values = explainer.shap_values(rows)
    for row, phi in zip(rows, values, strict=True):
        np.testing.assert_allclose(phi, brute_force(model, row), atol=1e-12)


def test_contributions_sum_to_the_raw_output() -> None:
    model, X = fitted(max_iter=60, max_leaf_nodes=31)
    explainer = TreeExplainer.of(model)
    values = explainer.shap_values(X[:300])
    np.testing.assert_allclose(explainer.base_value + values.sum(axis=1), model.decision_function(X[:300]),
                               rtol=0, atol=1e-9)
    assert np.abs(values[:, 0]).mean() > np.abs(values[:, 5]).mean()  # the signal feature matters, noise less


def test_same_values_as_shaps_tree_explainer() -> None:
    shap = pytest.importorskip("shap")
    model, X = fitted(max_iter=40, max_leaf_nodes=15)
    ours = TreeExplainer.of(model)
    theirs = shap.TreeExplainer(model)
    np.testing.assert_allclose(ours.shap_values(X[:100]), np.asarray(theirs.shap_values(X[:100])), atol=1e-9)
    assert ours.base_value == pytest.approx(float(np.ravel(theirs.expected_value)[0]), abs=1e-9)


def test_multiclass_and_wrong_shapes_are_refused() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3))
    multiclass = HistGradientBoostingClassifier(max_iter=3).fit(X, rng.integers(0, 3, 300))
    with pytest.raises(ValueError, match="only binary classifiers"):
        TreeExplainer.of(multiclass)
    model, _ = fitted(rows=400, features=3, max_iter=3)
    with pytest.raises(ValueError, match=r"expected a \(rows, 3\) matrix"):
        TreeExplainer.of(model).shap_values(np.zeros((2, 4)))

"""Exact SHAP values of a scikit-learn HistGradientBoostingClassifier's raw output (log-odds), in numpy.

The method is path-dependent TreeSHAP (Lundberg, Erion and Lee 2018, "Consistent individualized feature
attribution for tree ensembles"), the one shap's `TreeExplainer` computes by default, written out leaf by leaf:

- The value of a coalition S of features for one tree is E[f(x) | x_S], with the features outside S averaged by
  the training counts stored in the tree. For one leaf with value v, reached by a path whose splits use the
  distinct features U, that value is v * prod_{j in S} o_j * prod_{j in U, not in S} z_j, where o_j = 1 if x
  satisfies every split of the path on feature j (else 0) and z_j is the product of count(child) / count(parent)
  over those splits.
- The Shapley value of feature i in such a product game is
  (o_i - z_i) * v * sum_s w(s, |U|) * e_s, with w(s, d) = s! (d - 1 - s)! / d! and e_s the coefficient of t^s
  in prod_{j in U, j != i} (z_j + o_j t).
- Shapley values add over leaves and trees, and the values of all features of a row sum to
  f(x) - E[f], where E[f] is the count-weighted mean of the leaves (the base value): exact, not sampled.

Leaves are grouped by their number of distinct path features, so a group is a few array operations over
(rows x leaves x features) whatever the number of trees. shap's TreeExplainer gives the same numbers (the tests
compare them) but brings numba and llvmlite (about 190 MB) into the serving image; this needs numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

# A leaf's path: distinct features, their (low, high] interval, whether NaN follows, zero fractions; leaf value.
_Path = tuple[list[int], list[float], list[float], list[bool], list[float], float]
# Rows x leaves x path features per block of work: bounds memory to a few tens of MB.
_BLOCK_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class _LeafGroup:
    """Every leaf whose path uses `d` distinct features, as arrays over (leaves, d)."""

    feature: np.ndarray  # int64 (leaves, d)
    low: np.ndarray  # float64: x > low on the path ...
    high: np.ndarray  # ... and x <= high
    nan_follows: np.ndarray  # bool: a missing value follows the path
    zero_fraction: np.ndarray  # float64 (leaves, d)
    value: np.ndarray  # float64 (leaves,)
    weights: np.ndarray  # float64 (d,): w(s, d) for s = 0 .. d - 1


@dataclass(frozen=True)
class TreeExplainer:
    """The leaves of a fitted binary HistGradientBoostingClassifier, ready to attribute its log-odds."""

    n_features: int
    base_value: float  # E[raw output] over the training counts
    groups: tuple[_LeafGroup, ...]

    @classmethod
    def of(cls, booster: HistGradientBoostingClassifier) -> TreeExplainer:
        """Read the trees of a fitted binary booster (one tree per iteration)."""
        predictors = getattr(booster, "_predictors", None)
        if predictors is None:
            raise ValueError("the booster is not fitted: fit it before explaining it")
        if any(len(per_iteration) != 1 for per_iteration in predictors):
            raise ValueError("only binary classifiers (one tree per iteration) can be explained; this one has "
                             f"{len(predictors[0])} trees per iteration")
        base = float(np.ravel(booster._baseline_prediction)[0])
        leaves: dict[int, list[_Path]] = {}
        for (predictor,) in predictors:
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                raise ValueError("categorical splits are not supported; the project's boosters use none")
            for path in _leaf_paths(nodes):
                features, low, high, nan_ok, zero, value = path
                base += value * float(np.prod(zero))  # the leaf's share of E[f]
                leaves.setdefault(len(features), []).append(path)
        groups = tuple(_group(d, paths) for d, paths in sorted(leaves.items()) if d > 0)
        return cls(int(booster.n_features_in_), base, groups)

    def shap_values(self, X: np.ndarray) -> np.ndarray:
        """(rows, features) contributions: base_value + their row sum is the booster's raw output."""
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise ValueError(f"expected a (rows, {self.n_features}) matrix, got shape {X.shape}")
        out = np.zeros(X.shape)
        for group in self.groups:
            leaves, d = group.feature.shape
            step = max(1, _BLOCK_ELEMENTS // max(1, leaves * (d + 1)))
            for start in range(0, len(X), step):
                rows = slice(start, start + step)
                out[rows] += _group_values(group, X[rows])
        return out


def _leaf_paths(
    nodes: np.ndarray,
) -> list[_Path]:
    """Per leaf: its distinct path features with their interval, missing-value rule and zero fraction."""
    found = []
    # (node, {feature: [low, high, nan_ok, zero_fraction]}) depth-first from the root
    stack: list[tuple[int, dict[int, list]]] = [(0, {})]
    while stack:
        index, bounds = stack.pop()
        node = nodes[index]
        if node["is_leaf"]:
            features = sorted(bounds)
            found.append((
                features, [bounds[f][0] for f in features], [bounds[f][1] for f in features],
                [bounds[f][2] for f in features], [bounds[f][3] for f in features], float(node["value"]),
            ))
            continue
        feature, threshold = int(node["feature_idx"]), float(node["num_threshold"])
        missing_left = bool(node["missing_go_to_left"])
        parent_count = float(node["count"])
        for child, is_left in ((int(node["left"]), True), (int(node["right"]), False)):
            low, high, nan_ok, zero = bounds.get(feature, [-np.inf, np.inf, True, 1.0])
            if is_left:
                high = min(high, threshold)
            else:
                low = max(low, threshold)
            nan_ok = nan_ok and (missing_left == is_left)
            zero = zero * float(nodes[child]["count"]) / parent_count
            stack.append((child, {**bounds, feature: [low, high, nan_ok, zero]}))
    return found


def _group(d: int, paths: list[_Path]) -> _LeafGroup:
    feature = np.array([p[0] for p in paths], dtype=np.int64)
    weights = np.array([factorial(s) * factorial(d - 1 - s) / factorial(d) for s in range(d)])
    return _LeafGroup(
        feature=feature,
        low=np.array([p[1] for p in paths], dtype=np.float64),
        high=np.array([p[2] for p in paths], dtype=np.float64),
        nan_follows=np.array([p[3] for p in paths], dtype=bool),
        zero_fraction=np.array([p[4] for p in paths], dtype=np.float64),
        value=np.array([p[5] for p in paths], dtype=np.float64),
        weights=weights,
    )


def _group_values(group: _LeafGroup, X: np.ndarray) -> np.ndarray:
    """The contributions of one group's leaves to each row, scattered onto the feature columns."""
    leaves, d = group.feature.shape
    # Path position first: every array below is a contiguous (rows, leaves) slab per position or degree.
    x = X[:, group.feature.T].transpose(1, 0, 2)  # (d, rows, leaves)
    with np.errstate(invalid="ignore"):
        inside = (x > group.low.T[:, None, :]) & (x <= group.high.T[:, None, :])
    one = np.where(np.isnan(x), group.nan_follows.T[:, None, :], inside).astype(np.float64)
    zero = np.broadcast_to(group.zero_fraction.T[:, None, :], one.shape)
    # prod_j (z_j + o_j t): coefficients of t^0 .. t^d
    product = np.zeros((d + 1, len(X), leaves))
    product[0] = 1.0
    for j in range(d):
        product[1:] = product[1:] * zero[j] + product[:-1] * one[j]
        product[0] *= zero[j]
    # Where o_i = 0 the product holds no t^d term and the product without feature i is product / z_i.
    weighted_product = sum(w * p for w, p in zip(group.weights, product[:d], strict=True))  # (rows, leaves)
    phi = np.empty((d, len(X), leaves))
    for i in range(d):
        z_i, o_i = zero[i], one[i]
        # Where o_i = 1, synthetic division by (z_i + t) from the top: q_{d-1} = p_d, q_{k-1} = p_k - z_i q_k.
        quotient = product[d]
        divided = group.weights[d - 1] * quotient
        for k in range(d - 1, 0, -1):
            quotient = product[k] - z_i * quotient
            divided += group.weights[k - 1] * quotient
        weighted = np.where(o_i > 0, divided, weighted_product / z_i)
        phi[i] = (o_i - z_i) * group.value * weighted
    # Scattered onto (row, feature) cells with one bincount: no BLAS call, so no thread team for small blocks.
    rows, n_features = X.shape
    cells = np.arange(rows)[None, :, None] * n_features + group.feature.T[:, None, :]
    return np.bincount(cells.ravel(), weights=phi.ravel(), minlength=rows * n_features).reshape(rows, n_features)

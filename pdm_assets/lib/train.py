"""Fit the failure classifier: one sklearn Pipeline, tuned and thresholded on validation only."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from pdm_assets.lib.events import choose_threshold, event_view
from pdm_assets.lib.labels import CLASSES, COMPONENT_LABELS, NO_FAILURE
from pdm_assets.lib.tables import COMPONENTS, MACHINE_MODELS

# A small, bounded search: 4 candidates, each a few seconds on a year of 100 machines.
PARAM_GRID: Mapping[str, Sequence[Any]] = {"learning_rate": (0.05, 0.1), "max_leaf_nodes": (15, 31)}
FIXED_PARAMS: Mapping[str, Any] = {"max_iter": 300, "l2_regularization": 1.0, "early_stopping": False}


@dataclass
class TrainedModel:
    """The fitted pipeline plus what was chosen on validation."""

    pipeline: Pipeline
    feature_columns: list[str]
    params: dict[str, Any]
    threshold: float
    validation: dict[str, float] = field(default_factory=dict)
    search: list[dict[str, Any]] = field(default_factory=list)


def make_pipeline(feature_columns: Sequence[str], params: Mapping[str, Any], seed: int) -> Pipeline:
    """One-hot the machine model, pass numeric features through, then gradient boosting."""
    numeric = [c for c in feature_columns if c != "model"]
    encode = [("model", OneHotEncoder(categories=[list(MACHINE_MODELS)], handle_unknown="error"), ["model"])]
    prep = ColumnTransformer(
        [*encode, ("numeric", "passthrough", numeric)] if "model" in feature_columns else [("numeric", "passthrough", numeric)],
        verbose_feature_names_out=False,
    )
    classifier = HistGradientBoostingClassifier(random_state=seed, **{**FIXED_PARAMS, **params})
    return Pipeline([("prep", prep), ("classifier", classifier)])


def training_rows(
    table: pd.DataFrame, negative_fraction: float, seed: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows, class labels and weights for fitting.

    Negatives are subsampled and up-weighted by the inverse fraction, so probabilities stay calibrated.
    A row where several components fail is repeated once per component with weight split evenly,
    so P(component) learns every failing component, not only one of them.
    """
    rng = np.random.default_rng(seed)
    positive = table["failure"].to_numpy(bool)
    keep_negative = ~positive & (rng.random(len(table)) < negative_fraction)
    negatives = table[keep_negative]
    parts = [negatives]
    labels = [np.full(len(negatives), NO_FAILURE, dtype=object)]
    weights = [np.full(len(negatives), 1.0 / negative_fraction)]
    positives = table[positive]
    n_failing = positives[list(COMPONENT_LABELS)].sum(axis=1).to_numpy(float)
    for comp, column in zip(COMPONENTS, COMPONENT_LABELS, strict=True):
        fails = positives[column].to_numpy(bool)
        parts.append(positives[fails])
        labels.append(np.full(int(fails.sum()), comp, dtype=object))
        weights.append(1.0 / n_failing[fails])
    return pd.concat(parts, ignore_index=True), np.concatenate(labels), np.concatenate(weights)


def predict_components(pipeline: Pipeline, features: pd.DataFrame) -> pd.DataFrame:
    """P(none) and P(comp1..comp4) per row, whatever classes the model happened to see."""
    proba = pipeline.predict_proba(features)
    seen = list(pipeline.classes_)
    out = pd.DataFrame(0.0, index=features.index, columns=list(CLASSES))
    for i, cls in enumerate(seen):
        out[cls] = proba[:, i]
    return out


def failure_probability(components: pd.DataFrame) -> np.ndarray:
    """P(any component fails within the horizon) = 1 - P(none)."""
    return np.clip(1.0 - components[NO_FAILURE].to_numpy(np.float64), 0.0, 1.0)


def fit_and_tune(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    failures: pd.DataFrame,
    *,
    feature_columns: Sequence[str],
    horizon_hours: int,
    grid_hours: int,
    cost_missed: float,
    cost_false_alarm: float,
    negative_fraction: float,
    seed: int,
    param_grid: Mapping[str, Sequence[Any]] = PARAM_GRID,
) -> TrainedModel:
    """Try each grid point on validation (PR-AUC of P(failure)), keep the best, set its cost-optimal threshold."""
    _require_both_classes(train, "training")
    rows, labels, weights = training_rows(train, negative_fraction, seed)
    columns = list(feature_columns)
    val_y = validation["failure"].to_numpy(bool)
    search: list[dict[str, Any]] = []
    best: tuple[float, Pipeline, dict[str, Any], np.ndarray] | None = None
    for values in itertools.product(*param_grid.values()):
        params = dict(zip(param_grid.keys(), values, strict=True))
        pipeline = make_pipeline(columns, params, seed).fit(rows[columns], labels, classifier__sample_weight=weights)
        scores = failure_probability(predict_components(pipeline, validation[columns]))
        pr_auc = float(average_precision_score(val_y, scores)) if val_y.any() else float("nan")
        search.append({**params, "validation_pr_auc": pr_auc})
        if best is None or pr_auc > best[0]:
            best = (pr_auc, pipeline, params, scores)
    assert best is not None
    pr_auc, pipeline, params, scores = best
    scored = validation[["machineID", "datetime", "failure"]].assign(score=scores)
    view = event_view(scored, failures, horizon_hours, grid_hours)
    threshold = choose_threshold(view, scores, cost_missed, cost_false_alarm)
    return TrainedModel(
        pipeline=pipeline,
        feature_columns=columns,
        params={**FIXED_PARAMS, **params},
        threshold=threshold,
        validation={"pr_auc": pr_auc, "positive_rate": float(val_y.mean()), "rows": float(len(validation))},
        search=search,
    )


def _require_both_classes(table: pd.DataFrame, name: str) -> None:
    positives = int(table["failure"].sum())
    if positives == 0 or positives == len(table):
        raise ValueError(
            f"the {name} period has {positives} failure rows out of {len(table)}; "
            "it needs both failures and normal operation (use more days or machines)"
        )

"""Fit the failure classifier: one sklearn Pipeline, tuned and thresholded on validation only.

The estimators themselves are in `estimators`; FailureThenComponent and FeatureMatrix stay importable from
here because models pickled before they moved name this module (as does `pdm_assets.lib.train`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline

from pdm_assets.lib.evaluation.events import alert_cost, choose_threshold, event_metrics, event_view
from pdm_assets.lib.evaluation.metrics import f1_optimal_threshold, row_metrics, scored_frame
from pdm_assets.lib.modelling.estimators import (
    FIXED_PARAMS,
    HEAD_PARAMS,
    FailureThenComponent,
    FeatureMatrix,
    component_shares,
    fit_component_head,
    fit_detector,
)
from pdm_assets.lib.modelling.labels import COMPONENT_LABELS

logger = logging.getLogger(__name__)

# A small, bounded search over the failure detector: 4 candidates of under a second each on a year of
# 100 machines.
PARAM_GRID: Mapping[str, Sequence[Any]] = {"learning_rate": (0.05, 0.1), "max_leaf_nodes": (15, 31)}


@dataclass
class TrainedModel:
    """The fitted pipeline plus what was chosen on validation."""

    pipeline: Pipeline
    feature_columns: list[str]
    params: dict[str, Any]
    threshold: float
    f1_threshold: float = float("nan")
    validation: dict[str, float] = field(default_factory=dict)
    search: list[dict[str, Any]] = field(default_factory=list)


def make_prep(feature_columns: Sequence[str]) -> FeatureMatrix:
    """One-hot the machine model, pass numeric features through (the boosters handle NaN)."""
    return FeatureMatrix(list(feature_columns))


def make_pipeline(
    feature_columns: Sequence[str], params: Mapping[str, Any], negative_fraction: float, seed: int
) -> Pipeline:
    """Preprocessing, then the detector-and-component classifier."""
    classifier = FailureThenComponent(dict(params), None, negative_fraction, seed)
    return Pipeline([("prep", make_prep(feature_columns)), ("classifier", classifier)])


def training_rows(table: pd.DataFrame, negative_fraction: float, seed: int) -> pd.DataFrame:
    """Every failure row and a seeded sample of the normal rows (each kept with probability negative_fraction)."""
    rng = np.random.default_rng(seed)
    positive = table["failure"].to_numpy(bool)
    keep = positive | (rng.random(len(table)) < negative_fraction)
    return table[keep].reset_index(drop=True)


def component_targets(rows: pd.DataFrame) -> np.ndarray:
    """The (rows, 4) indicators fails_comp1..fails_comp4 that FailureThenComponent.fit takes as y."""
    return rows[list(COMPONENT_LABELS)].to_numpy(bool)


@dataclass(frozen=True)
class ThresholdChoice:
    """Alert thresholds picked on validation and the validation figures at the cost-optimal one."""

    threshold: float
    f1_threshold: float
    figures: dict[str, float]


def choose_on_validation(
    validation: pd.DataFrame,
    scores: np.ndarray,
    failures: pd.DataFrame,
    *,
    horizon_hours: int,
    grid_hours: int,
    cost_missed: float,
    cost_false_alarm: float,
    fixed: float | None = None,
) -> ThresholdChoice:
    """The cost-optimal and the F1-optimal thresholds of validation scores, with validation figures.

    With `fixed` (a rule that is not tuned) both thresholds are that value and only the figures are computed.
    """
    truth = validation["failure"].to_numpy(bool)
    view = event_view(scored_frame(validation, scores), failures, horizon_hours, grid_hours)
    threshold = choose_threshold(view, cost_missed, cost_false_alarm) if fixed is None else fixed
    events = event_metrics(view, scores, threshold)
    rows = row_metrics(truth, scores, threshold)
    figures = {
        "pr_auc": rows["row_pr_auc"],
        "f1": rows["row_f1"],
        "cost": alert_cost(view, threshold, cost_missed, cost_false_alarm),
        "event_recall": events.event_recall,
        "false_alarms_per_100_machine_days": events.false_alarms_per_100_machine_days,
        "events": float(events.events),
        "positive_rate": rows["positive_rate"],
        "rows": rows["rows"],
    }
    f1_threshold = f1_optimal_threshold(truth, scores) if fixed is None else fixed
    return ThresholdChoice(threshold, f1_threshold, figures)


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
    """Try each grid point on validation, keep the cheapest (alert cost, then PR-AUC), set its thresholds.

    The component head does not depend on the detector's grid point, so it is fitted once.
    """
    _require_both_classes(train, "training")
    rows = training_rows(train, negative_fraction, seed)
    targets = component_targets(rows)
    columns = list(feature_columns)
    prep = make_prep(columns).fit(rows[columns])
    fit_x, val_x = prep.transform(rows[columns]), prep.transform(validation[columns])
    head = fit_component_head(fit_x, targets, HEAD_PARAMS, seed)
    shares = component_shares(targets)
    val_y = validation["failure"].to_numpy(bool)
    search: list[dict[str, Any]] = []
    best: tuple[tuple[float, float], FailureThenComponent, dict[str, Any], np.ndarray] | None = None
    candidates = list(itertools.product(*param_grid.values()))
    for number, values in enumerate(candidates, start=1):
        params = dict(zip(param_grid.keys(), values, strict=True))
        candidate = FailureThenComponent.from_parts(
            fit_detector(fit_x, targets, params, seed), head, shares, detector_params=params,
            negative_fraction=negative_fraction, random_state=seed,
        )
        scores = candidate.failure_proba(val_x)
        pr_auc = float(average_precision_score(val_y, scores)) if val_y.any() else float("nan")
        view = event_view(scored_frame(validation, scores), failures, horizon_hours, grid_hours)
        cost = alert_cost(view, choose_threshold(view, cost_missed, cost_false_alarm), cost_missed, cost_false_alarm)
        search.append({**params, "validation_cost": cost, "validation_pr_auc": pr_auc})
        logger.info("tuning %d/%d %s: validation cost %.1f, PR-AUC %.3f", number, len(candidates), params, cost, pr_auc)
        rank = (cost, -pr_auc if pr_auc == pr_auc else 0.0)
        if best is None or rank < best[0]:
            best = (rank, candidate, params, scores)
    assert best is not None
    _, classifier, params, scores = best
    pipeline = Pipeline([("prep", prep), ("classifier", classifier)])
    choice = choose_on_validation(
        validation, scores, failures, horizon_hours=horizon_hours, grid_hours=grid_hours,
        cost_missed=cost_missed, cost_false_alarm=cost_false_alarm,
    )
    return TrainedModel(
        pipeline=pipeline,
        feature_columns=columns,
        params={**FIXED_PARAMS, **params},
        threshold=choice.threshold,
        f1_threshold=choice.f1_threshold,
        validation=choice.figures,
        search=search,
    )


def fit_fixed(
    train: pd.DataFrame,
    *,
    feature_columns: Sequence[str],
    params: Mapping[str, Any],
    negative_fraction: float,
    seed: int,
) -> Pipeline:
    """Fit the pipeline with given detector parameters, no search (for variants of a tuned model)."""
    _require_both_classes(train, "training")
    rows = training_rows(train, negative_fraction, seed)
    columns = list(feature_columns)
    return make_pipeline(columns, params, negative_fraction, seed).fit(rows[columns], component_targets(rows))


def _require_both_classes(table: pd.DataFrame, name: str) -> None:
    positives = int(table["failure"].sum())
    if positives == 0 or positives == len(table):
        raise ValueError(
            f"the {name} period has {positives} failure rows out of {len(table)}; "
            "it needs both failures and normal operation (use more days or machines)"
        )

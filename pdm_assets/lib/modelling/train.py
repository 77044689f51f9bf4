"""Fit the failure classifier: one sklearn Pipeline, tuned and thresholded on validation only."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from pdm_assets.lib.data.tables import COMPONENTS, MACHINE_MODELS
from pdm_assets.lib.evaluation.events import alert_cost, choose_threshold, event_metrics, event_view
from pdm_assets.lib.evaluation.metrics import f1_optimal_threshold, row_metrics, scored_frame
from pdm_assets.lib.modelling.labels import CLASSES, COMPONENT_LABELS, NO_FAILURE

# A small, bounded search over the failure detector: 4 candidates of under a second each on a year of
# 100 machines. 63 bins instead of 255 cost nothing measurable on validation and halve the fitting time.
PARAM_GRID: Mapping[str, Sequence[Any]] = {"learning_rate": (0.05, 0.1), "max_leaf_nodes": (15, 31)}
FIXED_PARAMS: Mapping[str, Any] = {"max_iter": 100, "l2_regularization": 1.0, "max_bins": 63, "early_stopping": False}
# Which component fails, given that one does: learned on failure rows only, so small and fixed.
HEAD_FLOOR = 1e-4
HEAD_PARAMS: Mapping[str, Any] = {
    "max_iter": 60, "learning_rate": 0.1, "max_leaf_nodes": 15, "max_bins": 63, "l2_regularization": 1.0,
    "early_stopping": False,
}


class FailureThenComponent(ClassifierMixin, BaseEstimator):
    """P(none), P(comp1..4) as P(failure) from a binary booster times P(component | failure) from a second one.

    fit takes y as the (rows, 4) indicators of the components failing within the horizon. The detector does
    the hard part (failure against normal operation) with one tree per round instead of five; the head
    learns which component from failure rows only, a row with two failing components counting for both.
    Normal rows were subsampled at `negative_fraction`; rather than weighting them (sklearn's weighted
    binning is slow), the detector's odds are multiplied by that fraction, which undoes the sampling.
    """

    def __init__(
        self,
        detector_params: Mapping[str, Any] | None = None,
        head_params: Mapping[str, Any] | None = None,
        negative_fraction: float = 1.0,
        random_state: int = 0,
    ) -> None:
        self.detector_params = detector_params
        self.head_params = head_params
        self.negative_fraction = negative_fraction
        self.random_state = random_state

    def fit(self, X: Any, y: Any) -> FailureThenComponent:
        indicators = np.asarray(y, dtype=bool).reshape(len(y), len(COMPONENTS))
        detector = fit_detector(X, indicators, self.detector_params or {}, self.random_state)
        head = fit_component_head(X, indicators, self.head_params or HEAD_PARAMS, self.random_state)
        return self._set_fitted(detector, head, component_shares(indicators))

    def _set_fitted(
        self, detector: HistGradientBoostingClassifier, head: HistGradientBoostingClassifier | str, shares: np.ndarray
    ) -> FailureThenComponent:
        self.detector_ = detector
        self.head_ = head
        self.component_shares_ = np.asarray(shares, dtype=np.float64)
        self.classes_ = np.asarray(CLASSES, dtype=object)
        self.n_features_in_ = detector.n_features_in_
        return self

    @classmethod
    def from_parts(
        cls,
        detector: HistGradientBoostingClassifier,
        head: HistGradientBoostingClassifier | str,
        shares: np.ndarray,
        *,
        detector_params: Mapping[str, Any],
        negative_fraction: float,
        random_state: int,
    ) -> FailureThenComponent:
        """Assemble an already fitted detector and head (the search fits the head once for all candidates)."""
        model = cls(dict(detector_params), dict(HEAD_PARAMS), negative_fraction, random_state)
        return model._set_fitted(detector, head, shares)

    def failure_proba(self, X: Any) -> np.ndarray:
        """P(some component fails within the horizon): the detector alone, without the component head."""
        return corrected_probability(self.detector_.predict_proba(X)[:, 1], self.negative_fraction)

    def predict_proba(self, X: Any) -> np.ndarray:
        """P(none), P(comp1..4); the head is evaluated only where P(failure) >= HEAD_FLOOR.

        Below it each component gets P(failure) times its share of the training failures: less than
        HEAD_FLOOR away from the head's answer, and most rows of a healthy fleet are below it.
        """
        failure = self.failure_proba(X)
        share = np.zeros((len(failure), len(COMPONENTS)))
        if isinstance(self.head_, str):  # only one component was ever seen failing
            share[:, COMPONENTS.index(self.head_)] = 1.0
        else:
            columns = [COMPONENTS.index(c) for c in self.head_.classes_]
            share[:] = self.component_shares_
            needed = failure >= HEAD_FLOOR
            if needed.any():
                rows = X.iloc[needed] if isinstance(X, pd.DataFrame) else X[needed]
                share[np.ix_(np.flatnonzero(needed), np.asarray(columns))] = self.head_.predict_proba(rows)
        return np.column_stack([1.0 - failure, failure[:, None] * share])

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes_[self.predict_proba(X).argmax(axis=1)])


def component_shares(indicators: np.ndarray) -> np.ndarray:
    """Each component's share of the failing (row, component) pairs, in COMPONENTS order."""
    counts = np.asarray(indicators, dtype=bool).sum(axis=0).astype(np.float64)
    return counts / counts.sum() if counts.sum() else np.full(len(COMPONENTS), 1.0 / len(COMPONENTS))


def corrected_probability(sampled: np.ndarray, negative_fraction: float) -> np.ndarray:
    """P(failure) before subsampling normal rows at `negative_fraction`: odds times the fraction."""
    scaled = negative_fraction * np.asarray(sampled, dtype=np.float64)
    return scaled / (scaled + 1.0 - sampled)


def fit_detector(
    X: Any, indicators: np.ndarray, params: Mapping[str, Any], seed: int
) -> HistGradientBoostingClassifier:
    """P(some component fails) on the sampled rows: FIXED_PARAMS overridden by `params`, empty columns zeroed."""
    detector = HistGradientBoostingClassifier(random_state=seed, **{**FIXED_PARAMS, **params})
    return detector.fit(without_empty_columns(X), np.asarray(indicators, dtype=bool).any(axis=1))


def fit_component_head(
    X: Any, indicators: np.ndarray, params: Mapping[str, Any], seed: int
) -> HistGradientBoostingClassifier | str:
    """P(component | failure) from failure rows, one copy per failing component; a name if only one is seen."""
    rows, comps = np.nonzero(np.asarray(indicators, dtype=bool))
    labels = np.asarray(COMPONENTS, dtype=object)[comps]
    seen = np.unique(labels)
    if len(seen) == 0:
        raise ValueError("no failure rows to learn which component fails; use more days or machines")
    if len(seen) == 1:
        return str(seen[0])
    x = X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]
    return HistGradientBoostingClassifier(random_state=seed, **params).fit(without_empty_columns(x), labels)


def without_empty_columns(X: Any) -> Any:
    """X with columns that hold no value at all set to 0 (sklearn's binning fails on them).

    Such a column carries nothing to split on, so the fitted trees never read it and predictions are the
    same whatever it holds later.
    """
    values = np.asarray(X, dtype=np.float64)
    empty = np.isnan(values).all(axis=0) if len(values) else np.zeros(values.shape[1], dtype=bool)
    if not empty.any():
        return X
    values = values.copy()
    values[:, empty] = 0.0
    return values


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


class FeatureMatrix(TransformerMixin, BaseEstimator):
    """The machine model one-hot (MACHINE_MODELS order), then the numeric features, as one float64 array.

    Column for column what ColumnTransformer([OneHotEncoder, passthrough]) gives, in numpy: sklearn's
    version costs about 2 ms per call, more than both boosters on a request's few rows.
    """

    def __init__(self, feature_columns: Sequence[str] = ()) -> None:
        self.feature_columns = feature_columns

    def fit(self, X: pd.DataFrame, y: Any = None) -> FeatureMatrix:
        columns = list(self.feature_columns)
        self._positions(X, columns)
        self.numeric_ = [c for c in columns if c != "model"]
        self.encodes_model_ = "model" in columns
        self.n_features_in_ = len(columns)
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "numeric_")
        numeric = X.take(self._positions(X, self.numeric_), axis=1).to_numpy(np.float64)
        if not self.encodes_model_:
            return numeric
        models = X["model"].to_numpy(dtype=object)
        codes = np.full(len(models), -1)
        for code, name in enumerate(MACHINE_MODELS):
            codes[models == name] = code
        if (codes < 0).any():
            unknown = sorted({str(m) for m in models[codes < 0]})
            raise ValueError(f"unknown machine model {', '.join(unknown)}; expected one of {', '.join(MACHINE_MODELS)}")
        one_hot = np.zeros((len(models), len(MACHINE_MODELS)))
        one_hot[np.arange(len(models)), codes] = 1.0
        return np.hstack([one_hot, numeric])

    @staticmethod
    def _positions(X: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        positions = X.columns.get_indexer(pd.Index(list(columns)))
        if (positions < 0).any():
            missing = [c for c, p in zip(columns, positions, strict=True) if p < 0]
            raise ValueError(f"the feature table lacks the columns {missing}")
        return positions


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


def predict_components(pipeline: Pipeline, features: pd.DataFrame) -> pd.DataFrame:
    """P(none) and P(comp1..comp4) per row, whatever classes the model happened to see."""
    proba = pipeline.predict_proba(features)
    full = np.zeros((len(proba), len(CLASSES)))
    full[:, [CLASSES.index(cls) for cls in pipeline.classes_]] = proba
    return pd.DataFrame(full, index=features.index, columns=list(CLASSES))


def failure_probability(components: pd.DataFrame) -> np.ndarray:
    """P(any component fails within the horizon) = 1 - P(none)."""
    return np.clip(1.0 - components[NO_FAILURE].to_numpy(np.float64), 0.0, 1.0)


def score_failure(pipeline: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """P(any component fails within the horizon) per row; skips the component head when the model has one."""
    classifier = pipeline[-1]
    if isinstance(classifier, FailureThenComponent):
        prepared = pipeline[:-1].transform(features) if len(pipeline) > 1 else features
        return np.clip(classifier.failure_proba(prepared), 0.0, 1.0)
    return failure_probability(predict_components(pipeline, features))


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
    for values in itertools.product(*param_grid.values()):
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

"""The estimators a model pickle holds: the numpy feature matrix and the failure-then-component classifier.

Pickles name classes by module path: models logged since this module exists say
`pdm_assets.lib.modelling.estimators`; `pdm_assets.lib.modelling.train` and `pdm_assets.lib.train` still
expose both classes for models logged before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import check_is_fitted

from pdm_assets.lib.data.tables import COMPONENTS, MACHINE_MODELS
from pdm_assets.lib.modelling.labels import CLASSES, NO_FAILURE

# The detector's parameters outside the search: 63 bins instead of 255 cost nothing measurable on validation
# and halve the fitting time.
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

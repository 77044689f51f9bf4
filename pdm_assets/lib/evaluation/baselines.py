"""Baselines scored in the same harness as our model: always "none", the error-type rule, the guide's model.

Every baseline returns, per row, a frame with the columns none/comp1..comp4 like `predict_components`:
P(failure) = 1 - none, and the predicted component is the largest of comp1..comp4.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from pdm_assets.lib.data.tables import COMPONENTS, MACHINE_MODELS, SENSORS
from pdm_assets.lib.modelling.labels import CLASSES, NO_FAILURE
from pdm_assets.lib.modelling.train import training_rows

# The error types that announce each component (the guide's exploration; the simulator's precursors).
RULE_ERRORS: Mapping[str, tuple[str, ...]] = {
    "comp1": ("error1",),
    "comp2": ("error2", "error3"),
    "comp3": ("error4",),
    "comp4": ("error5",),
}
RULE_WINDOW_HOURS = 24

# The guide's 27 features: 3 h and 24 h mean and std of each sensor (16), error counts over 24 h (5),
# time since the last replacement of each component (4), machine model and age (2).
GUIDE_SENSOR_FEATURES: tuple[str, ...] = tuple(
    f"{sensor}_{stat}_{hours}h" for hours in (3, 24) for stat in ("mean", "std") for sensor in SENSORS
)
GUIDE_ERROR_FEATURES: tuple[str, ...] = tuple(f"error{i}_count_24h" for i in range(1, 6))
GUIDE_MAINT_FEATURES: tuple[str, ...] = tuple(f"hours_since_replacement_{comp}" for comp in COMPONENTS)
GUIDE_FEATURES: tuple[str, ...] = GUIDE_SENSOR_FEATURES + GUIDE_ERROR_FEATURES + GUIDE_MAINT_FEATURES + ("model", "age")
# "No replacement seen" is older than any replacement in the data (the guide's data always had one).
NEVER_REPLACED_HOURS = 10_000.0
# sklearn's GradientBoostingClassifier fits 5 x 100 depth-3 trees on exact splits: its time grows with
# rows, so the replica trains on at most this many rows (half failures, half normal), re-weighted.
GUIDE_MAX_ROWS = 3000

BASELINE_NAMES: tuple[str, ...] = ("always_none", "error_rule", "guide_replica", "ours_no_telemetry")


def always_none(rows: pd.DataFrame) -> pd.DataFrame:
    """P(none) = 1 everywhere: never alerts."""
    out = pd.DataFrame(0.0, index=rows.index, columns=list(CLASSES))
    out[NO_FAILURE] = 1.0
    return out


def error_rule(rows: pd.DataFrame) -> pd.DataFrame:
    """Alert for a component when one of its error types occurred in the last 24 h.

    P(failure) is 1 when any component's rule fires and 0 otherwise; when several fire, the component whose
    error is the most recent scores highest, so it is the predicted one.
    """
    out = pd.DataFrame(0.0, index=rows.index, columns=list(CLASSES))
    any_fires = np.zeros(len(rows), dtype=bool)
    for comp, errors in RULE_ERRORS.items():
        counts = rows[[f"{e}_count_{RULE_WINDOW_HOURS}h" for e in errors]].to_numpy(np.float64)
        fires = (counts > 0).any(axis=1)
        hours = rows[[f"hours_since_{e}" for e in errors]].to_numpy(np.float64)
        newest = np.where(np.isnan(hours), np.inf, hours).min(axis=1)
        recency = np.clip(1.0 - newest / (2.0 * RULE_WINDOW_HOURS), 0.5, 1.0)
        out[comp] = np.where(fires, recency, 0.0)
        any_fires |= fires
    out[NO_FAILURE] = np.where(any_fires, 0.0, 1.0)
    return out


def guide_pipeline(seed: int) -> Pipeline:
    """The guide's GradientBoostingClassifier with default settings behind a one-hot of the model."""
    numeric = [c for c in GUIDE_FEATURES if c != "model"]
    sensors_and_age = [c for c in numeric if c not in GUIDE_MAINT_FEATURES]
    prep = ColumnTransformer(
        [
            ("model", OneHotEncoder(categories=[list(MACHINE_MODELS)], handle_unknown="error"), ["model"]),
            ("maint", SimpleImputer(strategy="constant", fill_value=NEVER_REPLACED_HOURS), list(GUIDE_MAINT_FEATURES)),
            ("rest", SimpleImputer(strategy="median", keep_empty_features=True), sensors_and_age),
        ],
        verbose_feature_names_out=False,
    )
    return Pipeline([("prep", prep), ("classifier", GradientBoostingClassifier(random_state=seed))])


def fit_guide_replica(
    train: pd.DataFrame, *, negative_fraction: float, seed: int, max_rows: int = GUIDE_MAX_ROWS
) -> Pipeline:
    """The guide's model on our training rows, one label per row (the earliest failing component, as the guide).

    Failure rows and normal rows are capped at max_rows / 2 each and weighted back to their share.
    """
    rows = training_rows(train, negative_fraction, seed)
    labels = rows["label"].to_numpy(object)
    positive = labels != NO_FAILURE
    keep, weights = cap_rows(positive, np.where(positive, 1.0, 1.0 / negative_fraction), max_rows, seed)
    frame = rows.loc[keep, list(GUIDE_FEATURES)].reset_index(drop=True)
    return guide_pipeline(seed).fit(frame, labels[keep], classifier__sample_weight=weights[keep])


def cap_rows(positive: np.ndarray, weights: np.ndarray, max_rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A mask keeping at most max_rows // 2 positives and negatives each, and weights scaled so totals hold."""
    rng = np.random.default_rng(seed + 1)
    keep = np.zeros(len(positive), dtype=bool)
    scaled = np.asarray(weights, dtype=np.float64).copy()
    for group in (positive, ~positive):
        index = np.flatnonzero(group)
        take = min(len(index), max_rows // 2)
        chosen = rng.choice(index, size=take, replace=False) if take < len(index) else index
        keep[chosen] = True
        if take:
            scaled[chosen] *= weights[index].sum() / weights[chosen].sum()
    return keep, scaled

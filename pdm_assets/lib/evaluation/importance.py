"""Which features the model leans on: permutation importance on validation."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline

from pdm_assets.lib.modelling.estimators import score_failure

IMPORTANCE_NEGATIVES = 1500
IMPORTANCE_POSITIVES = 500
IMPORTANCE_REPEATS = 2


def feature_importance(
    pipeline: Pipeline, validation: pd.DataFrame, feature_columns: Sequence[str], seed: int
) -> pd.DataFrame:
    """Permutation importance on validation: the drop in PR-AUC of P(failure) when a column is shuffled.

    On up to 500 failure rows and 1,500 normal rows, 2 repeats: enough to rank, cheap to run.
    """
    rng = np.random.default_rng(seed)
    truth = validation["failure"].to_numpy(bool)
    pos, neg = np.flatnonzero(truth), np.flatnonzero(~truth)
    pick = np.concatenate([
        rng.choice(pos, size=min(len(pos), IMPORTANCE_POSITIVES), replace=False),
        rng.choice(neg, size=min(len(neg), IMPORTANCE_NEGATIVES), replace=False),
    ])
    rows = validation.iloc[np.sort(pick)]
    if rows["failure"].nunique() < 2:
        return pd.DataFrame({"feature": list(feature_columns), "importance": np.nan, "std": np.nan})

    def score(estimator: Pipeline, x: pd.DataFrame, y: np.ndarray) -> float:
        return float(average_precision_score(y, score_failure(estimator, x)))

    result = permutation_importance(
        pipeline, rows[list(feature_columns)], rows["failure"].to_numpy(bool), scoring=score,
        n_repeats=IMPORTANCE_REPEATS, random_state=seed,
    )
    table = pd.DataFrame({"feature": list(feature_columns), "importance": result.importances_mean,
                          "std": result.importances_std})
    return table.sort_values("importance", ascending=False).reset_index(drop=True)

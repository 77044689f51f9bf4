"""Labels: which components fail within the horizon after each scoring point."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pdm_assets.lib.data.tables import COMPONENTS
from pdm_assets.lib.modelling.keys import KEY_COLUMNS, frame_keys

NO_FAILURE = "none"
CLASSES: tuple[str, ...] = (NO_FAILURE, *COMPONENTS)
COMPONENT_LABELS: tuple[str, ...] = tuple(f"fails_{comp}" for comp in COMPONENTS)


def build_labels(keys: pd.DataFrame, failures: pd.DataFrame, horizon_hours: int) -> pd.DataFrame:
    """For each (machineID, datetime) row: does component k fail in (t, t + horizon]?

    Several components can fail together; each gets its own flag, `failure` is their union, and
    `label` names the earliest failing component (the lowest-numbered one on a tie) for the
    single-label views such as the confusion matrix.
    """
    out = keys[list(KEY_COLUMNS)].copy()
    score_keys = frame_keys(out)
    horizon_s = np.int64(horizon_hours) * 3600
    first_failure = np.full(len(out), np.iinfo(np.int64).max)
    label = np.full(len(out), NO_FAILURE, dtype=object)
    for comp, column in zip(COMPONENTS, COMPONENT_LABELS, strict=True):
        comp_failures = failures[failures["failure"] == comp]
        fail_keys = np.sort(frame_keys(comp_failures))
        after_t = np.searchsorted(fail_keys, score_keys, side="right")
        within = np.searchsorted(fail_keys, score_keys + horizon_s, side="right") > after_t
        out[column] = within
        if not within.any():
            continue
        next_failure = np.where(within, fail_keys[np.minimum(after_t, len(fail_keys) - 1)], first_failure)
        earlier = within & (next_failure < first_failure)
        label = np.where(earlier, comp, label)
        first_failure = np.where(earlier, next_failure, first_failure)
    out["failure"] = out[list(COMPONENT_LABELS)].any(axis=1)
    out["label"] = label
    out["failing_components"] = out[list(COMPONENT_LABELS)].sum(axis=1).astype(np.int8)
    return out

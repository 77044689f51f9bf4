"""The training sample of one machine group: what the fleet-wide model fits on, bounded whatever the fleet.

Every row within the longest horizon before a failure is kept (positives are rare and every one counts);
other rows are kept at one rate, chosen so that about `negative_budget` are kept. With a budget at least
the group's negatives the sample is the group's whole modelling table, unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pdm_assets.lib.modelling.keys import KEY_COLUMNS
from pdm_assets.lib.modelling.labels import COMPONENT_LABELS, build_labels

LABEL_COLUMNS: tuple[str, ...] = (*COMPONENT_LABELS, "failure", "label", "failing_components")


@dataclass(frozen=True)
class Sample:
    """One group's sample and how it was drawn."""

    table: pd.DataFrame
    rows: int  # the group's modelling rows before sampling
    positives: int  # rows within the longest horizon before a failure: all kept
    negative_rate: float  # the share of the other rows kept


def training_sample(
    table: pd.DataFrame, failures: pd.DataFrame, *, longest_horizon_hours: int, negative_budget: int,
    seed: int | list[int],
) -> Sample:
    """All near-failure rows of a modelling table and a uniform sample of the others (order kept)."""
    if negative_budget < 1:
        raise ValueError(f"the negative budget must be at least 1, got {negative_budget}")
    near_failure = build_labels(table, failures, longest_horizon_hours)["failure"].to_numpy(bool)
    negatives = int((~near_failure).sum())
    rate = min(1.0, negative_budget / negatives) if negatives else 1.0
    if rate >= 1.0:
        return Sample(table, len(table), int(near_failure.sum()), 1.0)
    kept = near_failure | (np.random.default_rng(seed).random(len(table)) < rate)
    return Sample(table[kept].reset_index(drop=True), len(table), int(near_failure.sum()), rate)


def feature_part(table: pd.DataFrame) -> pd.DataFrame:
    """The feature columns (and keys) of a modelling table: what the feature builder produced."""
    return table.drop(columns=[c for c in LABEL_COLUMNS if c in table.columns and c not in KEY_COLUMNS])

"""The training sample of one machine group: what the fleet-wide model fits on, bounded whatever the fleet.

One rate r keeps about `negative_budget` of the group's rows that are not near a failure:
- in the train period, every row within the longest horizon before a failure and a share r of the others
  (the fit re-weights classes anyway);
- in every other period (validation, where thresholds are tuned by event-level costs, and test), every row of
  a share r of the machines: alarm episodes and machine-days need a machine's whole history, and a row sample
  would undercount false alarms.
With a budget at least the group's rows the sample is the group's whole modelling table, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pdm_assets.lib.modelling.keys import KEY_COLUMNS
from pdm_assets.lib.modelling.labels import COMPONENT_LABELS, build_labels
from pdm_assets.lib.modelling.split import SplitPlan

LABEL_COLUMNS: tuple[str, ...] = (*COMPONENT_LABELS, "failure", "label", "failing_components")


@dataclass(frozen=True)
class Sample:
    """One group's sample and how it was drawn."""

    table: pd.DataFrame
    rows: int  # the group's modelling rows before sampling
    positives: int  # train rows within the longest horizon before a failure: all kept
    negative_rate: float  # r: the share of other train rows, and of machines elsewhere, kept
    machines_kept: int  # machines whose validation and test rows are kept whole


def training_sample(
    table: pd.DataFrame, failures: pd.DataFrame, plan: SplitPlan, *, longest_horizon_hours: int,
    negative_budget: int, seed: int | list[int],
) -> Sample:
    """A bounded sample of a modelling table (order kept)."""
    if negative_budget < 1:
        raise ValueError(f"the negative budget must be at least 1, got {negative_budget}")
    near_failure = build_labels(table, failures, longest_horizon_hours)["failure"].to_numpy(bool)
    negatives = int((~near_failure).sum())
    machines = np.unique(table["machineID"].to_numpy())
    in_train = plan.part(table["datetime"], "train").to_numpy(bool)
    positives = int((near_failure & in_train).sum())
    rate = min(1.0, negative_budget / negatives) if negatives else 1.0
    if rate >= 1.0:
        return Sample(table, len(table), positives, 1.0, len(machines))
    rng = np.random.default_rng(seed)
    kept_rows = near_failure | (rng.random(len(table)) < rate)
    whole = rng.permutation(machines)[: max(1, math.ceil(rate * len(machines)))]
    kept = np.where(in_train, kept_rows, np.isin(table["machineID"].to_numpy(), whole))
    return Sample(table[kept].reset_index(drop=True), len(table), positives, rate, len(whole))


def feature_part(table: pd.DataFrame) -> pd.DataFrame:
    """The feature columns (and keys) of a modelling table: what the feature builder produced."""
    return table.drop(columns=[c for c in LABEL_COLUMNS if c in table.columns and c not in KEY_COLUMNS])

"""The modelling table: features joined to labels, cut into time periods."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from pdm_assets.lib.modelling.keys import KEY_COLUMNS
from pdm_assets.lib.modelling.split import SplitPlan, plan_split


def modelling_table(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Features with their labels, one row per (machineID, datetime)."""
    keys = list(KEY_COLUMNS)
    if len(features) == len(labels) and all(
        np.array_equal(features[k].to_numpy(), labels[k].to_numpy()) for k in keys
    ):  # labels built from these features: same rows in the same order, no join needed
        extra = labels.drop(columns=keys).set_axis(features.index)
        return pd.concat([features, extra], axis=1).reset_index(drop=True)
    return features.merge(labels, on=keys, how="inner", validate="one_to_one")


def plan_for_table(
    table: pd.DataFrame, *, train_end: datetime, test_start: datetime, horizon_hours: int, validation_fraction: float
) -> SplitPlan:
    """The split of a table's time range: the dates asked for, or proportional when it does not span them."""
    return plan_split(
        table["datetime"].min().to_pydatetime(), table["datetime"].max().to_pydatetime(),
        train_end=train_end, test_start=test_start, horizon_hours=horizon_hours,
        validation_fraction=validation_fraction,
    )


def split_parts(table: pd.DataFrame, plan: SplitPlan) -> dict[str, pd.DataFrame]:
    """The train, validation and test rows of a table; rows in the gaps belong to none."""
    return {
        name: table[plan.part(table["datetime"], name)].reset_index(drop=True)
        for name in ("train", "validation", "test")
    }


# A SplitPlan back from its `to_dict()` form; the name callers (defs, tests) import from here.
plan_from_dict = SplitPlan.from_dict

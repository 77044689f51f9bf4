"""The modelling table: features joined to labels, cut into time periods."""

from __future__ import annotations

import pandas as pd

from pdm_assets.lib.features import KEY_COLUMNS
from pdm_assets.lib.split import SplitPlan


def modelling_table(features: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """Features with their labels, one row per (machineID, datetime)."""
    return features.merge(labels, on=list(KEY_COLUMNS), how="inner", validate="one_to_one")


def split_parts(table: pd.DataFrame, plan: SplitPlan) -> dict[str, pd.DataFrame]:
    """The train, validation and test rows of a table; rows in the gaps belong to none."""
    return {
        name: table[plan.part(table["datetime"], name)].reset_index(drop=True)
        for name in ("train", "validation", "test")
    }

"""Measure the errors the simulator reproduces: which error types announce each component's failures, how
long before, how often, and the background rate of every other error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from pdm_assets.lib.data.tables import ERROR_IDS
from pdm_assets.lib.synthetic.measure_common import HOUR, as_times, hours_from, keyed, most_common, rounded


def _failure_lags(errors: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Every (failure, error of the same machine) pair with the hours from the error to the failure."""
    pairs = (
        keyed(failures, "failure").rename(columns={"datetime": "failed"}).reset_index(names="failure_row")
    )
    erred = keyed(errors, "errorID", "errorID").rename(columns={"datetime": "erred"})
    pairs = pairs.merge(erred, on="machineID")
    pairs["lag"] = hours_from(pairs["failed"], pairs["erred"])
    return pairs


def precursor_lead_hours(errors: pd.DataFrame, failures: pd.DataFrame, max_hours: int = 72) -> int:
    """The most common number of hours, up to `max_hours`, by which an error precedes a failure."""
    lags = _failure_lags(errors, failures)["lag"]
    return most_common(lags[(lags >= 1) & (lags <= max_hours)])


def precursor_errors(errors: pd.DataFrame, failures: pd.DataFrame, lead: int) -> dict[str, tuple[str, ...]]:
    """Per component, the error types found exactly `lead` hours before at least half its failures."""
    pairs = _failure_lags(errors, failures)
    pairs = pairs[pairs["lag"] == lead].drop_duplicates(["failure_row", "errorID"])
    totals = failures["failure"].astype(str).value_counts()
    found = pairs.groupby(["comp", "errorID"]).size().reset_index(name="n")
    found = found[found["n"] >= 0.5 * found["comp"].map(totals)]
    return {
        c: tuple(sorted(found.loc[found["comp"] == c, "errorID"])) for c in sorted(found["comp"].unique())
    }


def _warned(
    errors: pd.DataFrame, failures: pd.DataFrame, mapping: Mapping[str, Sequence[str]], lead: int
) -> pd.DataFrame:
    """(failure_row, error index) pairs of failures with one of their component's errors `lead` h before."""
    pairs = _failure_lags(errors, failures)
    pairs = pairs[pairs["lag"] == lead]
    matched = [e in mapping.get(c, ()) for c, e in zip(pairs["comp"], pairs["errorID"], strict=True)]
    return pairs[np.array(matched, dtype=bool)]


def precursor_share(
    errors: pd.DataFrame,
    failures: pd.DataFrame,
    mapping: Mapping[str, Sequence[str]],
    lead: int,
    since: pd.Timestamp | None = None,
) -> float:
    """Share of failures with one of their component's errors exactly `lead` hours earlier.

    With `since`, only failures whose precursor time is at or after it count.
    """
    if since is not None:
        failures = failures[as_times(failures) - lead * HOUR >= since]
    if failures.empty:
        return float("nan")
    warned = _warned(errors, failures, mapping, lead)["failure_row"].nunique()
    return rounded(warned / len(failures))


def background_error_rates(
    errors: pd.DataFrame,
    failures: pd.DataFrame,
    mapping: Mapping[str, Sequence[str]],
    lead: int,
    machine_days: float,
) -> dict[str, float]:
    """Per error type, errors that are not a failure's precursor, per machine-day."""
    warned = _warned(errors, failures, mapping, lead)
    precursors = set(zip(warned["machineID"], warned["erred"], warned["errorID"], strict=True))
    keys = zip(errors["machineID"], as_times(errors), errors["errorID"].astype(str), strict=True)
    background = errors[[key not in precursors for key in keys]]
    counts = background["errorID"].astype(str).value_counts()
    return {e: rounded(counts.get(e, 0) / machine_days) for e in ERROR_IDS}

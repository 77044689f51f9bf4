"""Measure the maintenance the simulator reproduces: when inspections happen, how many components each
replaces, and which ones, by inspections since their last replacement."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pdm_assets.lib.synthetic.measure_common import (
    DAY_HOURS,
    as_times,
    hours_from,
    in_days,
    keyed,
    most_common,
    rounded,
    window_days,
    within,
)


def event_hour(maint: pd.DataFrame) -> int:
    """The hour of day at which replacements happen."""
    return most_common(as_times(maint).dt.hour)


def inspection_interval_days(maint: pd.DataFrame) -> int:
    """The most common number of days between a machine's consecutive replacement dates."""
    visits = pd.DataFrame({"machineID": maint["machineID"], "datetime": as_times(maint)}).drop_duplicates()
    visits = visits.sort_values(["machineID", "datetime"])
    gaps = in_days(visits.groupby("machineID")["datetime"].diff().dropna())
    return most_common(gaps.round().astype(int))


def history_days(maint: pd.DataFrame, start: pd.Timestamp) -> int:
    """Whole days of replacement records before `start`."""
    return max(0, int((start - as_times(maint).min()) / pd.Timedelta(days=1)))


def service_count_probabilities(
    maint: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp], machines: int, interval_days: int
) -> tuple[float, ...]:
    """Probabilities of 0, 1, 2... components replaced at an inspection.

    Inspections without a replacement are those of the machines' schedule (one per interval) left over.
    """
    inside = within(maint, window)
    sizes = (
        pd.DataFrame({"m": inside["machineID"], "t": as_times(inside)}).groupby(["m", "t"]).size().to_numpy()
    )
    counts = np.bincount(sizes).astype(np.float64)
    counts[0] = max(0.0, machines * window_days(window) / interval_days - len(sizes))
    return tuple(rounded(c / counts.sum()) for c in counts)


def replacement_intervals(
    maint: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp], interval_days: int
) -> pd.DataFrame:
    """Each replacement with the inspections after it (counted 1, 2...) that fall in the window.

    Columns: machineID, comp, first and last (inspection numbers in the window up to the next replacement,
    included) and ended (whether that next replacement is in the window).
    """
    interval = interval_days * DAY_HOURS
    frame = keyed(maint, "comp").sort_values(["machineID", "comp", "datetime"])
    last_hour = hours_from(window[1], window[0]) - 1
    start = hours_from(frame["datetime"], window[0]).to_numpy()
    grouped = frame.groupby(["machineID", "comp"])
    following = hours_from(grouped["datetime"].shift(-1), window[0]).to_numpy(dtype=np.float64)
    ended = following <= last_hour
    return pd.DataFrame(
        {
            "machineID": frame["machineID"].to_numpy(),
            "comp": frame["comp"].to_numpy(),
            "first": np.maximum(1, np.ceil(-start / interval)),
            "last": np.floor((np.where(ended, following, last_hour) - start) / interval),
            "ended": ended,
        }
    )


def service_weights(intervals: pd.DataFrame, longest: int = 8) -> tuple[float, ...]:
    """Share of components replaced at the k-th inspection since their last replacement.

    Entry k - 1 is for k = 1 .. longest - 1; the last entry pools every k from `longest` on.
    """
    shares = []
    for k in range(1, longest + 1):
        if k < longest:
            at_risk = ((intervals["first"] <= k) & (intervals["last"] >= k)).sum()
            events = (intervals["ended"] & (intervals["last"] == k)).sum()
        else:
            at_risk = np.maximum(0, intervals["last"] - np.maximum(intervals["first"], k) + 1).sum()
            events = (intervals["ended"] & (intervals["last"] >= k)).sum()
        shares.append(rounded(events / at_risk) if at_risk else 0.0)
    return tuple(shares)

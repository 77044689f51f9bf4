"""What every measurement of the real tables shares: typed times, hours and days, rounding, the window."""

from __future__ import annotations

from typing import Any

import pandas as pd

from pdm_assets.lib.data.tables import RawTables

HOUR = pd.Timedelta(hours=1)
DAY_HOURS = 24
SIGNIFICANT_DIGITS = 4


def as_times(frame: pd.DataFrame) -> pd.Series:
    """The `datetime` column as datetime64[ns], whether it was read as text or not."""
    return pd.to_datetime(frame["datetime"]).astype("datetime64[ns]")


def hours_from(times: Any, origin: Any) -> Any:
    """Whole hours from `origin` (timestamps or series of them)."""
    return (times - origin) // HOUR


def in_days(delta: pd.Series) -> pd.Series:
    """A series of time differences in days."""
    return delta.dt.total_seconds() / 86400


def keyed(frame: pd.DataFrame, column: str, name: str = "comp") -> pd.DataFrame:
    """machineID, datetime (typed) and `column` as plain strings under `name`."""
    return pd.DataFrame(
        {"machineID": frame["machineID"], "datetime": as_times(frame), name: frame[column].astype(str)}
    )


def rounded(value: float) -> float:
    """`value` to a few significant digits, so that measurements compare equal across platforms."""
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def most_common(values: pd.Series) -> int:
    """The most frequent value (the smallest among ties)."""
    counts = values.value_counts().sort_index()
    return int(counts.index.to_numpy()[counts.to_numpy().argmax()])


def observation_window(tables: RawTables) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First hour and the hour after the last one of telemetry, errors and failures."""
    stamps = [as_times(f) for f in (tables.telemetry, tables.errors, tables.failures) if len(f)]
    return min(s.min() for s in stamps), max(s.max() for s in stamps) + HOUR


def window_days(window: tuple[pd.Timestamp, pd.Timestamp]) -> float:
    """Length of the window in days."""
    return float((window[1] - window[0]) / pd.Timedelta(days=1))


def within(frame: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp]) -> pd.DataFrame:
    """Rows whose datetime lies in [start, end)."""
    times = as_times(frame)
    return frame[(times >= window[0]) & (times < window[1])]

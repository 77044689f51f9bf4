"""Where the daily worklists live: one Parquet and one CSV file per day in a folder or an object-store URI."""

from __future__ import annotations

from datetime import date

import pandas as pd
from upath import UPath

PREFIX = "fleet_risk_"


def day_path(folder: str, day: date, suffix: str) -> UPath:
    return UPath(folder) / f"{PREFIX}{day.isoformat()}.{suffix}"


def write_worklists(worklist: pd.DataFrame, folder: str) -> list[str]:
    """One Parquet (for the pipeline) and one CSV (for a spreadsheet) per day; returns the Parquet paths."""
    root = UPath(folder)
    root.mkdir(parents=True, exist_ok=True)
    written = []
    for key, rows in worklist.groupby("day", sort=True):
        day = date.fromisoformat(str(key))
        parquet = day_path(folder, day, "parquet")
        with parquet.open("wb") as out:
            rows.to_parquet(out, index=False)
        with day_path(folder, day, "csv").open("w") as out:
            rows.to_csv(out, index=False)
        written.append(str(parquet))
    return written


def stored_days(folder: str) -> list[date]:
    """The days that have a stored worklist, oldest first."""
    root = UPath(folder)
    if not root.exists():
        return []
    return sorted(date.fromisoformat(p.name[len(PREFIX):-len(".parquet")]) for p in root.glob(f"{PREFIX}*.parquet"))


def read_worklists(folder: str, first: date | None = None, last: date | None = None) -> pd.DataFrame:
    """The stored worklists of the days in [first, last] (all when not given), as one frame."""
    days = [d for d in stored_days(folder) if (first is None or d >= first) and (last is None or d <= last)]
    frames = []
    for day in days:
        with day_path(folder, day, "parquet").open("rb") as source:
            frames.append(pd.read_parquet(source))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

"""Landed rows joined to the source tables: new keys appended, a later row for a known key replaces it, and the
same content twice changes nothing. Every landed row is counted as one of the three."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pdm_assets.lib.data.landing import landed_frames
from pdm_assets.lib.data.landing_store import LandingLocation
from pdm_assets.lib.data.tables import NATURAL_KEYS, TABLE_NAMES, RawTables, TableName

_SEPARATOR = "\x1f"
_MISSING = "\x00"  # a missing value compares equal to a missing value, unlike NaN in text


@dataclass(frozen=True)
class LandedCounts:
    """What became of one table's landed rows: file_rows = appended + replacing + identical."""

    file_rows: int = 0
    appended: int = 0  # a key not seen before (or an unusable key with new content): one more raw row
    replacing: int = 0  # a known key with other values: the landed row replaces the earlier one in place
    identical: int = 0  # the same values as the row already there: nothing changes


@dataclass
class LandedMerge:
    """The source tables plus the landed rows, the counts per table, and files set aside as unreadable."""

    tables: RawTables
    source_rows: dict[TableName, int]
    counts: dict[TableName, LandedCounts]
    rejected: dict[str, list[str]]


def append_rows(base: pd.DataFrame, extra: pd.DataFrame, table: TableName) -> tuple[pd.DataFrame, LandedCounts]:
    """`base` with the rows of `extra` applied in order (last writer wins on the natural key).

    A row whose key cannot be parsed is kept for validation to quarantine, once per distinct content. The base
    is kept as the source gave it: its own duplicates are left for validation to quarantine."""
    if extra.empty:
        return base, LandedCounts()
    combined = pd.concat([base, extra[base.columns.intersection(extra.columns)]], ignore_index=True)
    positions = np.arange(len(combined))
    from_extra = positions >= len(base)
    keys = _normalized_keys(combined, list(NATURAL_KEYS[table]))
    unusable = keys.isna().any(axis=1).to_numpy()

    source_of = positions.copy()  # which row's values end up at each position
    dropped = np.zeros(len(combined), dtype=bool)
    replacing = identical = 0

    usable = np.flatnonzero(~unusable)
    group = keys.iloc[usable].groupby(list(keys.columns), sort=False).ngroup().to_numpy()
    first = pd.Series(usable).groupby(group).transform("min").to_numpy()
    # The history of a key: its first row, then every landed row with that key, in order.
    writes = usable[from_extra[usable] & (first != usable)]
    if len(writes):
        history = np.union1d(writes, first[from_extra[usable] & (first != usable)])
        target = pd.Series(first, index=usable).loc[history].to_numpy()
        content = _content(combined.iloc[history])
        previous = content.groupby(target).shift()
        is_write = np.isin(history, writes)
        same = (content == previous).to_numpy() & is_write
        identical = int(same.sum())
        replacing = len(writes) - identical
        # The last write that changed something gives the key its values; an identical one leaves them.
        last = pd.Series(np.where(same, -1, history)).groupby(target).transform("max").to_numpy()
        source_of[target] = last
        dropped[writes] = True

    unusable_rows = np.flatnonzero(unusable)
    repeated = _content(combined.iloc[unusable_rows]).duplicated().to_numpy() & from_extra[unusable_rows]
    dropped[unusable_rows[repeated]] = True
    identical += int(repeated.sum())

    appended = len(extra) - replacing - identical
    counts = LandedCounts(len(extra), appended, replacing, identical)
    if not appended and not replacing:
        return base, counts  # nothing new: the source as it was, dtypes too
    return combined.iloc[source_of[~dropped]].reset_index(drop=True), counts


def with_landed(
    tables: RawTables, landing_dir: LandingLocation, pending: Sequence[LandingLocation] | None = None
) -> LandedMerge:
    """The source tables plus every processed landed file and the `pending` ones, in landing order (a folder or an
    fsspec URI)."""
    landed = landed_frames(landing_dir, pending)
    frames = {name: tables.table(name) for name in TABLE_NAMES}
    source_rows = {name: len(frame) for name, frame in frames.items()}
    counts: dict[TableName, LandedCounts] = {}
    for name in TABLE_NAMES:
        extra = landed.table(name)
        if extra is not None:
            frames[name], counts[name] = append_rows(frames[name], extra, name)
    merged = RawTables(**frames, source=tables.source, records=tables.records)
    return LandedMerge(merged, source_rows, counts, landed.rejected)


def _normalized_keys(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for key in keys:
        values = frame[key]
        if key == "datetime":
            out[key] = pd.to_datetime(values.astype(str), errors="coerce", format="ISO8601")
        elif key == "machineID":
            out[key] = pd.to_numeric(values, errors="coerce")
        else:
            out[key] = values.astype(str).str.strip()
    return out


def _content(frame: pd.DataFrame) -> pd.Series:
    """One comparable text per row: times as ISO text, numbers as floats, other values stripped (CSV and typed
    sources spell the same value differently)."""
    parts = []
    for column in frame.columns:
        values = frame[column]
        text = values.astype(object).where(values.notna(), _MISSING).astype(str).str.strip()
        if column == "datetime":
            times = pd.to_datetime(values.astype(str), errors="coerce", format="ISO8601")
            parts.append(times.astype(str).where(times.notna(), text))
        else:
            numbers = pd.to_numeric(values, errors="coerce").astype(float)
            parts.append(numbers.astype(str).where(numbers.notna(), text))
    joined = parts[0] if parts else pd.Series("", index=frame.index)
    for part in parts[1:]:
        joined = joined + _SEPARATOR + part
    return joined

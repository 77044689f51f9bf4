"""Machine groups: the fleet cut into N groups by machine id, so per-machine work runs one group at a time.

A machine's group is its id modulo N: a new machine in `machines` has a group without any change, and the
groups of sequential ids are balanced. Rows whose machine id cannot be read go to the first group, where
validation quarantines them (none is dropped here).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd

from pdm_assets.lib.data.tables import TABLE_NAMES, RawTables
from pdm_assets.lib.modelling.keys import KEY_COLUMNS

UNREADABLE_GROUP = 0


def group_key(index: int, groups: int) -> str:
    """The partition key of one group, naming the group count too: keys of another N never mix."""
    if not 0 <= index < groups:
        raise ValueError(f"group index {index} is outside 0..{groups - 1}")
    width = len(str(groups - 1))
    return f"g{index:0{width}d}-of-{groups}"


def group_keys(groups: int) -> list[str]:
    if groups < 1:
        raise ValueError(f"PDM_MACHINE_GROUPS must be at least 1, got {groups}")
    return [group_key(index, groups) for index in range(groups)]


def group_index(key: str) -> tuple[int, int]:
    """(index, groups) back from a key such as g03-of-10."""
    try:
        index_text, groups_text = key.removeprefix("g").split("-of-")
        index, groups = int(index_text), int(groups_text)
    except ValueError as error:
        raise ValueError(f"{key!r} is not a machine-group key like 'g03-of-10'") from error
    group_key(index, groups)  # range check
    return index, groups


def groups_of(machine_ids: pd.Series | np.ndarray | Iterable[object], groups: int) -> np.ndarray:
    """Each machine id's group index; ids that are not whole numbers go to UNREADABLE_GROUP."""
    numbers = pd.to_numeric(pd.Series(list(machine_ids) if not isinstance(machine_ids, (pd.Series, np.ndarray))
                                      else machine_ids), errors="coerce")
    whole = numbers.notna() & np.isfinite(numbers) & (numbers == np.floor(numbers))
    index = np.full(len(numbers), UNREADABLE_GROUP, dtype=np.int64)
    index[whole.to_numpy()] = numbers[whole].to_numpy(np.int64) % groups
    return index


def rows_of_group(frame: pd.DataFrame, index: int, groups: int) -> pd.DataFrame:
    """The rows of one group (all rows when there is one group). A table without a machineID column cannot be
    cut: it goes whole to UNREADABLE_GROUP, where validation rejects it."""
    if groups == 1:
        return frame
    if "machineID" not in frame.columns:
        return frame if index == UNREADABLE_GROUP else frame.iloc[0:0]
    return frame[groups_of(frame["machineID"], groups) == index].reset_index(drop=True)


def tables_of_group(tables: RawTables, index: int, groups: int) -> RawTables:
    """The five tables cut to one group's machines (records keep the source files' figures)."""
    if groups == 1:
        return tables
    cut = {name: rows_of_group(tables.table(name), index, groups) for name in TABLE_NAMES}
    return RawTables(**cut, source=tables.source, records=dict(tables.records))


def affected_groups(machine_ids: Iterable[object], groups: int) -> list[str]:
    """The keys of the groups a set of machine ids touches, in order."""
    return [group_key(int(i), groups) for i in sorted(set(groups_of(list(machine_ids), groups).tolist()))]


def combined(value: pd.DataFrame | Mapping[str, pd.DataFrame], sort_by: tuple[str, ...] = KEY_COLUMNS) -> pd.DataFrame:
    """One frame from a fan-in input: the value itself (one group, unpartitioned) or every group's frame,
    in (machineID, datetime) order as one unpartitioned step would have produced it. A dict input is emptied."""
    if isinstance(value, pd.DataFrame):
        return value
    # A dict is emptied as it is read: the groups' frames are not kept alive beside their concatenation.
    frames = [value.pop(key) if isinstance(value, dict) else value[key] for key in sorted(value)]
    if not frames:
        raise ValueError("no group has been materialized: backfill every machine group first")
    frame = pd.concat(frames, ignore_index=True)
    columns = [c for c in sort_by if c in frame.columns]
    return frame.sort_values(columns, kind="stable").reset_index(drop=True) if columns else frame


def by_group(value: object) -> dict[str, object]:
    """A fan-in input as {group key: value}; an unpartitioned value is the single group ''."""
    if isinstance(value, Mapping):
        return dict(value)
    return {"": value}

"""Which ingest runs a landed file needs: with machine groups, one run per group whose machines its rows hold.

Each group's run reads the whole file and keeps its own group's rows; the first run to finish moves it to
processed/. A row whose machine id cannot be read belongs to the first group, whose run quarantines it: a file
is always requested by some group, never dropped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pandas as pd

from pdm_assets.lib.data.groups import UNREADABLE_GROUP, affected_groups, group_key
from pdm_assets.lib.data.landing import LandedFile, read_checked


@dataclass(frozen=True)
class CheckedFile:
    """A complete landed file after the sensor read it whole: why it cannot be appended, or the groups it touches."""

    landed: LandedFile
    problems: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)  # group keys; empty with one group (nothing is partitioned)


def landed_groups(frame: pd.DataFrame | None, groups: int) -> list[str]:
    """The keys of the groups whose machines a landed table holds, in order; the first group when no machine id
    can be read (no column, no rows)."""
    if frame is None or "machineID" not in frame.columns or frame.empty:
        return [group_key(UNREADABLE_GROUP, groups)]
    return affected_groups(frame["machineID"], groups)


def check_landed_file(landed: LandedFile, groups: int) -> CheckedFile | None:
    """The file read once for both questions; None when it is gone since the folder was listed."""
    try:
        frame, problems = read_checked(landed.path)
    except FileNotFoundError:
        return None
    if problems or groups == 1:
        return CheckedFile(landed, problems)
    return CheckedFile(landed, [], landed_groups(frame, groups))


def files_by_group(files: Sequence[CheckedFile], groups: int) -> dict[str | None, list[LandedFile]]:
    """The files of each run to request: with one group all in one unpartitioned run (key None), else each
    group key with the files that touch it, in key order."""
    if groups == 1:
        return {None: [f.landed for f in files]} if files else {}
    runs: dict[str | None, list[LandedFile]] = {}
    for key in sorted({key for f in files for key in f.groups}):
        runs[key] = [f.landed for f in files if key in f.groups]
    return runs

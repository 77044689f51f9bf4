"""The simulated arrays as the dataset's five tables, each with the record a file read would have."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime

import numpy as np
import pandas as pd

from pdm_assets.lib.data.tables import FileRecord


def telemetry_frame(
    values: dict[str, np.ndarray], ids: np.ndarray, origin: pd.Timestamp, hours: int
) -> pd.DataFrame:
    """The telemetry table, machine by machine, hour by hour."""
    stamps = origin.to_datetime64().astype("datetime64[ns]") + np.arange(hours) * np.timedelta64(1, "h")
    frame = pd.DataFrame(
        {"datetime": np.tile(stamps, len(ids)), "machineID": np.repeat(ids, hours), **values}
    )
    return frame.astype({"datetime": "datetime64[ns]"})


def event_frame(
    machine_id: np.ndarray,
    origin: pd.Timestamp,
    hour: np.ndarray,
    column: str,
    names: tuple[str, ...],
    code: np.ndarray,
) -> pd.DataFrame:
    """An event table (datetime, machineID, code column) sorted like the dataset's files."""
    frame = pd.DataFrame(
        {
            "datetime": origin + pd.to_timedelta(hour, unit="h"),
            "machineID": machine_id.astype(np.int64),
            column: pd.Series(np.asarray(names, dtype=object)[code], dtype="str"),
        }
    )
    frame = frame.astype({"datetime": "datetime64[ns]"})
    return frame.sort_values(["machineID", "datetime", column], ignore_index=True)


def fleet_location(
    machines: int,
    days: int,
    seed: int,
    start: datetime,
    sensor_offsets: Mapping[str, float] | None,
    precursor_probability: float | None,
    first_machine_id: int,
) -> str:
    """A URI naming the generator's arguments, the non-default ones included."""
    parts = [f"machines={machines}", f"days={days}", f"seed={seed}"]
    if start != datetime(2015, 1, 1, 6):
        parts.append(f"start={start.isoformat()}")
    if sensor_offsets:
        parts.append("sensor_offsets=" + ";".join(f"{k}:{v}" for k, v in sorted(sensor_offsets.items())))
    if precursor_probability is not None:
        parts.append(f"precursor_probability={precursor_probability}")
    if first_machine_id != 1:
        parts.append(f"first_machine_id={first_machine_id}")
    return "synthetic://" + ",".join(parts)


def table_record(name: str, frame: pd.DataFrame, location: str) -> FileRecord:
    """Location, content hash, rows and time range of one generated table."""
    digest = hashlib.sha256()
    for column_name, column in frame.items():
        digest.update(str(column_name).encode())
        if pd.api.types.is_string_dtype(column):
            digest.update("\0".join(column).encode())
        else:
            digest.update(np.ascontiguousarray(column.to_numpy()).tobytes())
    start = end = None
    if "datetime" in frame.columns and len(frame):
        start, end = frame["datetime"].min().isoformat(), frame["datetime"].max().isoformat()
    return FileRecord(name, location, digest.hexdigest(), len(frame), start, end)  # type: ignore[arg-type]

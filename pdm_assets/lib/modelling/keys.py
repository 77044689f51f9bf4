"""Machine-time keys: the (machineID, datetime) columns of every table, and one sortable int64 per pair."""

from __future__ import annotations

import numpy as np
import pandas as pd

KEY_COLUMNS: tuple[str, str] = ("machineID", "datetime")
# Machine-time key = machine * MACHINE_STRIDE + epoch seconds: sorted keys are sorted by machine, then time,
# so one searchsorted serves every machine (epoch seconds stay below the stride until the year 2286).
MACHINE_STRIDE = np.int64(10_000_000_000)


def epoch_seconds(times: pd.Series | np.ndarray) -> np.ndarray:
    """Seconds since 1970 as int64, whatever the datetime resolution (a column or a datetime64 array)."""
    return np.asarray(times.astype("datetime64[s]")).astype(np.int64)


def machine_time_keys(machine: np.ndarray, seconds: np.ndarray) -> np.ndarray:
    """One sortable int64 per (machine id, epoch second)."""
    keys: np.ndarray = np.asarray(machine, dtype=np.int64) * MACHINE_STRIDE + seconds
    return keys


def frame_keys(frame: pd.DataFrame) -> np.ndarray:
    """The machine-time key of each row of a frame with machineID and datetime columns."""
    return machine_time_keys(frame["machineID"].to_numpy(np.int64), epoch_seconds(frame["datetime"]))


def key_machines(keys: np.ndarray) -> np.ndarray:
    """The machine id of each machine-time key."""
    machines: np.ndarray = keys // MACHINE_STRIDE
    return machines

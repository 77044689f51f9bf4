"""Features at (machine, time t) from raw history at or before t: the one code path for training and serving."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from pdm_assets.lib.tables import COMPONENTS, ERROR_IDS, SENSORS

KEY_COLUMNS: tuple[str, str] = ("machineID", "datetime")
SENSOR_WINDOWS_HOURS: tuple[int, ...] = (3, 24)
ERROR_WINDOWS_HOURS: tuple[int, ...] = (24, 168)
SENSOR_STATS: tuple[str, ...] = ("mean", "std", "min", "max")

# The serving contract: a client sends this much telemetry and this much error history.
TELEMETRY_LOOKBACK_HOURS = max(SENSOR_WINDOWS_HOURS)
ERROR_LOOKBACK_HOURS = max(ERROR_WINDOWS_HOURS)
# Up to two missing hours in the 24 h window are tolerated; fewer readings make a row unscoreable.
MIN_READINGS_24H = TELEMETRY_LOOKBACK_HOURS - 2
READINGS_COLUMN = "readings_24h"

SENSOR_FEATURES: tuple[str, ...] = tuple(
    f"{sensor}_{stat}_{hours}h" for hours in SENSOR_WINDOWS_HOURS for sensor in SENSORS for stat in SENSOR_STATS
)
ERROR_FEATURES: tuple[str, ...] = tuple(
    f"{error}_count_{hours}h" for hours in ERROR_WINDOWS_HOURS for error in ERROR_IDS
) + tuple(f"hours_since_{error}" for error in ERROR_IDS)
MAINTENANCE_FEATURES: tuple[str, ...] = tuple(f"hours_since_replacement_{comp}" for comp in COMPONENTS)
MACHINE_FEATURES: tuple[str, ...] = ("model", "age")
FEATURE_COLUMNS: tuple[str, ...] = SENSOR_FEATURES + ERROR_FEATURES + MAINTENANCE_FEATURES + MACHINE_FEATURES
NON_TELEMETRY_FEATURES: tuple[str, ...] = ERROR_FEATURES + MAINTENANCE_FEATURES + MACHINE_FEATURES

_SECOND = np.int64(1)
_HOUR_S = np.int64(3600)
# Combined sort key machine * _MACHINE_STRIDE + epoch seconds: one searchsorted serves every machine.
_MACHINE_STRIDE = np.int64(10_000_000_000)
_CHUNK_ROWS = 250_000


def epoch_seconds(times: pd.Series) -> np.ndarray:
    """Seconds since 1970 as int64, whatever the datetime resolution."""
    return (times.astype("datetime64[s]").to_numpy().astype(np.int64)) * _SECOND


def grid_score_times(telemetry: pd.DataFrame, grid_hours: int) -> pd.DataFrame:
    """Scoring points: telemetry timestamps whose hour since 1970 is a multiple of grid_hours."""
    seconds = epoch_seconds(telemetry["datetime"])
    on_grid = (seconds % (grid_hours * _HOUR_S)) == 0
    keys = telemetry.loc[on_grid, list(KEY_COLUMNS)]
    return keys.sort_values(list(KEY_COLUMNS)).reset_index(drop=True)


def build_features(
    telemetry: pd.DataFrame,
    errors: pd.DataFrame,
    maint: pd.DataFrame,
    machines: pd.DataFrame,
    *,
    grid_hours: int = 1,
    score_times: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per (machineID, datetime) scoring point, with features from records at or before it.

    Without score_times the points are the telemetry grid and rows with fewer than MIN_READINGS_24H
    readings in their 24 h window are dropped; with score_times every point is kept and the caller
    decides what to do with its READINGS_COLUMN.
    """
    explicit = score_times is not None
    keys = grid_score_times(telemetry, grid_hours) if score_times is None else _sorted_keys(score_times)
    machine_ids = keys["machineID"].to_numpy(np.int64)
    seconds = epoch_seconds(keys["datetime"])

    columns: dict[str, np.ndarray] = {}
    readings = _sensor_features(telemetry, machine_ids, seconds, columns)
    _error_features(errors, machine_ids, seconds, columns)
    _maintenance_features(maint, machine_ids, seconds, columns)

    table = keys.copy()
    table[READINGS_COLUMN] = readings
    for name in SENSOR_FEATURES + ERROR_FEATURES + MAINTENANCE_FEATURES:
        table[name] = columns[name]
    table = _attach_machine_features(table, machines)
    if not explicit:
        table = table[table[READINGS_COLUMN] >= MIN_READINGS_24H].reset_index(drop=True)
    return table


def _sorted_keys(score_times: pd.DataFrame) -> pd.DataFrame:
    keys = score_times[list(KEY_COLUMNS)].copy()
    keys["machineID"] = keys["machineID"].astype(np.int64)
    keys["datetime"] = keys["datetime"].astype("datetime64[ns]")
    return keys.sort_values(list(KEY_COLUMNS)).reset_index(drop=True)


def _sensor_features(
    telemetry: pd.DataFrame, machine_ids: np.ndarray, seconds: np.ndarray, out: dict[str, np.ndarray]
) -> np.ndarray:
    """Rolling stats per sensor over windows (t - w, t]; returns the reading count of the 24 h window."""
    tele_ids = telemetry["machineID"].to_numpy(np.int64)
    tele_hours = epoch_seconds(telemetry["datetime"]) // _HOUR_S
    # floor(t) to the hour: readings in (t - w, t] are the w hourly cells ending at floor(t).
    score_hours = seconds // _HOUR_S
    width = max(SENSOR_WINDOWS_HOURS)
    machines, tele_row = np.unique(tele_ids, return_inverse=True)
    score_row = np.searchsorted(machines, machine_ids)
    known = (score_row < len(machines)) & (machines[np.minimum(score_row, len(machines) - 1)] == machine_ids)
    first_hour = min(int(tele_hours.min(initial=0)), int(score_hours.min(initial=0))) - width
    last_hour = max(int(tele_hours.max(initial=0)), int(score_hours.max(initial=0)))
    span = last_hour - first_hour + 1
    tele_col = tele_hours - first_hour
    score_col = np.where(known, score_hours - first_hour, width)

    unknown_row = len(machines)  # an all-NaN row for machines without telemetry
    score_row = np.where(known, score_row, unknown_row)
    counts = np.zeros(len(seconds), dtype=np.int64)
    for sensor in SENSORS:
        grid = np.full((len(machines) + 1, span), np.nan)
        grid[tele_row, tele_col] = telemetry[sensor].to_numpy(np.float64)
        for hours in SENSOR_WINDOWS_HOURS:
            stats = _window_stats(grid, score_row, score_col, hours)
            for stat in SENSOR_STATS:
                out[f"{sensor}_{stat}_{hours}h"] = stats[stat]
            if hours == TELEMETRY_LOOKBACK_HOURS:
                counts = stats["count"].astype(np.int64)
    return counts


def _window_stats(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """count/mean/std/min/max of the `width` cells ending at (row, col), NaN-aware, in row chunks."""
    result = {name: np.empty(len(rows)) for name in ("count", *SENSOR_STATS)}
    offsets = np.arange(-width + 1, 1)
    for start in range(0, len(rows), _CHUNK_ROWS):
        stop = start + _CHUNK_ROWS
        window = grid[rows[start:stop, None], cols[start:stop, None] + offsets]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows give NaN, as intended
            result["count"][start:stop] = np.count_nonzero(~np.isnan(window), axis=1)
            result["mean"][start:stop] = np.nanmean(window, axis=1)
            result["std"][start:stop] = np.nanstd(window, axis=1, ddof=1)
            result["min"][start:stop] = np.nanmin(window, axis=1)
            result["max"][start:stop] = np.nanmax(window, axis=1)
    return result


def _event_keys(frame: pd.DataFrame) -> np.ndarray:
    keys = frame["machineID"].to_numpy(np.int64) * _MACHINE_STRIDE + epoch_seconds(frame["datetime"])
    return np.sort(keys)


def _error_features(
    errors: pd.DataFrame, machine_ids: np.ndarray, seconds: np.ndarray, out: dict[str, np.ndarray]
) -> None:
    """Counts of each error type in (t - w, t] and hours since its last occurrence within the lookback."""
    score_keys = machine_ids * _MACHINE_STRIDE + seconds
    for error in ERROR_IDS:
        keys = _event_keys(errors[errors["errorID"] == error])
        upto_t = np.searchsorted(keys, score_keys, side="right")
        for hours in ERROR_WINDOWS_HOURS:
            before_window = np.searchsorted(keys, score_keys - hours * _HOUR_S, side="right")
            out[f"{error}_count_{hours}h"] = (upto_t - before_window).astype(np.float32)
        out[f"hours_since_{error}"] = _hours_since_last(
            keys, score_keys, upto_t, ERROR_LOOKBACK_HOURS, inclusive=True
        )


def _maintenance_features(
    maint: pd.DataFrame, machine_ids: np.ndarray, seconds: np.ndarray, out: dict[str, np.ndarray]
) -> None:
    """Hours since the last replacement of each component strictly before t (NaN when none is known)."""
    score_keys = machine_ids * _MACHINE_STRIDE + seconds
    for comp in COMPONENTS:
        keys = _event_keys(maint[maint["comp"] == comp])
        # side="left": a replacement at t itself coincides with a failure at t and must not be seen.
        before_t = np.searchsorted(keys, score_keys, side="left")
        out[f"hours_since_replacement_{comp}"] = _hours_since_last(
            keys, score_keys, before_t, None, inclusive=False
        )


def _hours_since_last(
    keys: np.ndarray, score_keys: np.ndarray, position: np.ndarray, limit_hours: int | None, *, inclusive: bool
) -> np.ndarray:
    """Hours from the event just before `position` to t, NaN if it belongs to another machine or is too old."""
    last = np.maximum(position - 1, 0)
    has_event = position > 0
    if len(keys) == 0:
        return np.full(len(score_keys), np.nan, dtype=np.float32)
    last_keys = keys[last]
    same_machine = has_event & (last_keys // _MACHINE_STRIDE == score_keys // _MACHINE_STRIDE)
    hours = (score_keys - last_keys) / float(_HOUR_S)
    valid = same_machine & (hours >= 0 if inclusive else hours > 0)
    if limit_hours is not None:
        valid &= hours < limit_hours
    return np.where(valid, hours, np.nan).astype(np.float32)


def _attach_machine_features(table: pd.DataFrame, machines: pd.DataFrame) -> pd.DataFrame:
    info = machines[["machineID", "model", "age"]].copy()
    info["machineID"] = info["machineID"].astype(np.int64)
    merged = table.merge(info, on="machineID", how="left", validate="many_to_one")
    merged["age"] = merged["age"].astype(np.float32)
    merged["model"] = merged["model"].astype(object)
    return merged

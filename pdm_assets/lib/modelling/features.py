"""Features at (machine, time t) from raw history at or before t: the one code path for training and serving."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pdm_assets.lib.data.tables import COMPONENTS, ERROR_IDS, SENSORS
from pdm_assets.lib.modelling.keys import KEY_COLUMNS, epoch_seconds, key_machines, machine_time_keys

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

_HOUR_S = np.int64(3600)
_CHUNK_ROWS = 250_000
logger = logging.getLogger(__name__)


def grid_score_times(telemetry: pd.DataFrame, grid_hours: int) -> pd.DataFrame:
    """Scoring points: telemetry timestamps whose hour since 1970 is a multiple of grid_hours."""
    seconds = epoch_seconds(telemetry["datetime"])
    on_grid = (seconds % (grid_hours * _HOUR_S)) == 0
    keys = telemetry.loc[on_grid, list(KEY_COLUMNS)]
    return keys.sort_values(list(KEY_COLUMNS)).reset_index(drop=True)


@dataclass(frozen=True)
class RawArrays:
    """The raw tables as the arrays features are computed from: built from the tables for training
    (`from_tables`) and straight from a parsed request when serving, which then needs no DataFrame."""

    telemetry_machine: np.ndarray  # int64
    telemetry_seconds: np.ndarray  # int64 seconds since 1970
    sensors: Mapping[str, np.ndarray]  # one array per sensor, as stored (converted one at a time)
    error_machine: np.ndarray
    error_seconds: np.ndarray
    error_codes: np.ndarray  # object
    maint_machine: np.ndarray
    maint_seconds: np.ndarray
    maint_codes: np.ndarray
    machine_ids: np.ndarray  # int64, one row per machine
    machine_models: np.ndarray  # object
    machine_ages: np.ndarray  # float64

    @classmethod
    def from_tables(
        cls, telemetry: pd.DataFrame, errors: pd.DataFrame, maint: pd.DataFrame, machines: pd.DataFrame
    ) -> RawArrays:
        return cls(
            telemetry["machineID"].to_numpy(np.int64), epoch_seconds(telemetry["datetime"]),
            {sensor: telemetry[sensor].to_numpy() for sensor in SENSORS},
            errors["machineID"].to_numpy(np.int64), epoch_seconds(errors["datetime"]),
            errors["errorID"].to_numpy(dtype=object),
            maint["machineID"].to_numpy(np.int64), epoch_seconds(maint["datetime"]),
            maint["comp"].to_numpy(dtype=object),
            machines["machineID"].to_numpy(np.int64), machines["model"].to_numpy(dtype=object),
            machines["age"].to_numpy(dtype=np.float64),
        )


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
    keys = grid_score_times(telemetry, grid_hours) if score_times is None else _sorted_keys(score_times)
    logger.info("features: %d scoring points of %d machines, in chunks of %d rows",
                len(keys), keys["machineID"].nunique(), _CHUNK_ROWS)
    return feature_table(
        RawArrays.from_tables(telemetry, errors, maint, machines),
        keys["machineID"].to_numpy(np.int64), keys["datetime"].to_numpy(),
        drop_short=score_times is None,
    )


def feature_table(
    raw: RawArrays, machine_ids: np.ndarray, times: np.ndarray, *, drop_short: bool = False,
    labels: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """The feature rows of the scoring points (machine_ids[i], times[i]), in that order.

    With drop_short, rows with fewer than MIN_READINGS_24H readings in their 24 h window are left out.
    `labels` replaces the machineID and datetime columns written to the table (the service computes on
    aligned positions and reports the client's ids and times); the features are those of the points.
    """
    seconds = epoch_seconds(times)
    columns: dict[str, np.ndarray] = {}
    readings = _sensor_features(raw, machine_ids, seconds, columns)
    _error_features(raw, machine_ids, seconds, columns)
    _maintenance_features(raw, machine_ids, seconds, columns)
    model, age = _machine_features(raw, machine_ids)
    names = SENSOR_FEATURES + ERROR_FEATURES + MAINTENANCE_FEATURES
    shown = labels or {"machineID": machine_ids, "datetime": times}
    everything = {
        "machineID": shown["machineID"], "datetime": shown["datetime"], READINGS_COLUMN: readings,
        **{name: columns[name] for name in names}, "model": model, "age": age,
    }
    # Short rows are dropped while the columns are copied into the frame, not by copying the frame again.
    keep = readings >= MIN_READINGS_24H if drop_short else None
    return _frame(everything, pd.RangeIndex(len(readings) if keep is None else int(keep.sum())), keep)


def _sorted_keys(score_times: pd.DataFrame) -> pd.DataFrame:
    """machineID (int64) and datetime (datetime64[ns]) sorted by both, sorted in numpy (pandas' sort of a
    one-row frame costs more than a request's features)."""
    machine_ids = score_times["machineID"].astype(np.int64).to_numpy()
    times = score_times["datetime"].astype("datetime64[ns]").to_numpy()
    order = np.lexsort((times, machine_ids))
    return pd.DataFrame({"machineID": machine_ids[order], "datetime": times[order]})


def _frame(columns: dict[str, np.ndarray], index: pd.Index, rows: np.ndarray | None = None) -> pd.DataFrame:
    """A frame of equal-length columns in their order (only the `rows` where that mask is given), built as one
    block per run of one dtype: pandas' per-column construction costs milliseconds on the service's one-row
    frames, and each value is copied once."""
    names = list(columns)
    runs: list[pd.DataFrame] = []
    start = 0
    for stop in range(1, len(names) + 1):
        if stop == len(names) or columns[names[stop]].dtype != columns[names[start]].dtype:
            block = np.empty((stop - start, len(index)), dtype=columns[names[start]].dtype)  # a row per column
            for row, name in enumerate(names[start:stop]):
                if rows is None:
                    block[row] = columns[name]
                else:
                    np.compress(rows, columns[name], out=block[row])
            # Codes stay object (a frame made from an object block would infer pandas' string type).
            dtype = object if block.dtype == object else None
            runs.append(pd.DataFrame(block.T, index=index, columns=names[start:stop], copy=False, dtype=dtype))
            start = stop
    return pd.concat(runs, axis=1) if len(runs) > 1 else runs[0]


def _sensor_features(
    raw: RawArrays, machine_ids: np.ndarray, seconds: np.ndarray, out: dict[str, np.ndarray]
) -> np.ndarray:
    """Rolling stats per sensor over windows (t - w, t]; returns the reading count of the 24 h window."""
    tele_ids = raw.telemetry_machine
    tele_hours = raw.telemetry_seconds // _HOUR_S
    # floor(t) to the hour: readings in (t - w, t] are the w hourly cells ending at floor(t).
    score_hours = seconds // _HOUR_S
    width = max(SENSOR_WINDOWS_HOURS)
    machines, tele_row = np.unique(tele_ids, return_inverse=True)
    score_row = np.searchsorted(machines, machine_ids)
    # With no telemetry at all every scoring point is unknown (and its windows empty), not an index error.
    known = np.isin(machine_ids, machines)
    # The grid spans only the hours in use (min with initial=0 would stretch it back to 1970).
    hours_used = np.concatenate([tele_hours, score_hours])
    first_hour = (int(hours_used.min()) if len(hours_used) else 0) - width
    last_hour = int(hours_used.max()) if len(hours_used) else 0
    span = last_hour - first_hour + 1
    tele_col = tele_hours - first_hour
    score_col = np.where(known, score_hours - first_hour, width)

    unknown_row = len(machines)  # an all-NaN row for machines without telemetry
    score_row = np.where(known, score_row, unknown_row)
    counts = np.zeros(len(seconds), dtype=np.int64)
    for sensor in SENSORS:
        grid = np.full((len(machines) + 1, span), np.nan)
        grid[tele_row, tele_col] = np.asarray(raw.sensors[sensor], dtype=np.float64)
        for hours, stats in _window_stats(grid, score_row, score_col, SENSOR_WINDOWS_HOURS).items():
            for stat in SENSOR_STATS:
                out[f"{sensor}_{stat}_{hours}h"] = stats[stat]
            if hours == TELEMETRY_LOOKBACK_HOURS:
                counts = stats["count"].astype(np.int64)
    return counts


def _window_stats(
    grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, widths: tuple[int, ...]
) -> dict[int, dict[str, np.ndarray]]:
    """count/mean/std/min/max of the w cells ending at (row, col) for each width w, NaN-aware, in row chunks.

    One gather of the widest window per chunk serves every width (a narrower one is its last columns).
    Each window's figures depend on its own cells only, in the same order for one row or a million, so
    the service's single history gets bit for bit the numbers of the offline table.
    """
    widest = max(widths)
    result = {w: {name: np.empty(len(rows)) for name in ("count", *SENSOR_STATS)} for w in widths}
    # windows[r, c] views cells c .. c + widest - 1 of row r: the window ending at column c + widest - 1.
    windows = np.lib.stride_tricks.sliding_window_view(grid, widest, axis=1)
    for start in range(0, len(rows), _CHUNK_ROWS):
        chunk = slice(start, start + _CHUNK_ROWS)
        if len(rows) > _CHUNK_ROWS:  # offline tables only: a request's few rows are one chunk
            end = min(start + _CHUNK_ROWS, len(rows))
            logger.info("window statistics: rows %d-%d of %d", start + 1, end, len(rows))
        wide = windows[rows[chunk], cols[chunk] - (widest - 1)]
        for width in widths:
            window = wide if width == widest else np.ascontiguousarray(wide[:, widest - width :])
            _nan_stats(window, result[width], chunk)
    return result


def _nan_stats(window: np.ndarray, out: dict[str, np.ndarray], rows: slice) -> None:
    """Row-wise count, nanmean, nanstd (ddof=1), nanmin and nanmax, computed as numpy's nan-functions do
    (the same operations in the same order, so the same bits) with one NaN mask and one copy instead of five."""
    missing = np.isnan(window)
    count = window.shape[1] - np.count_nonzero(missing, axis=1)
    filled = np.where(missing, 0.0, window)
    with np.errstate(invalid="ignore", divide="ignore"):  # all-NaN windows give NaN, as intended
        mean = filled.sum(axis=1) / count
        deviation = np.subtract(filled, mean[:, None], out=filled)
        deviation[missing] = 0.0
        dof = count - 1
        variance = np.multiply(deviation, deviation, out=deviation).sum(axis=1) / dof
    variance[dof <= 0] = np.nan
    out["count"][rows] = count
    out["mean"][rows] = mean
    out["std"][rows] = np.sqrt(variance)
    out["min"][rows] = np.fmin.reduce(window, axis=1)
    out["max"][rows] = np.fmax.reduce(window, axis=1)


def _event_keys(
    machine: np.ndarray, seconds: np.ndarray, values: np.ndarray, codes: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Sorted machine/time keys of the events of each code."""
    keys = machine_time_keys(machine, seconds)
    return {code: np.sort(keys[values == code]) for code in codes}


def _error_features(raw: RawArrays, machine_ids: np.ndarray, seconds: np.ndarray, out: dict[str, np.ndarray]) -> None:
    """Counts of each error type in (t - w, t] and hours since its last occurrence within the lookback."""
    score_keys = machine_time_keys(machine_ids, seconds)
    for error, keys in _event_keys(raw.error_machine, raw.error_seconds, raw.error_codes, ERROR_IDS).items():
        upto_t = np.searchsorted(keys, score_keys, side="right")
        for hours in ERROR_WINDOWS_HOURS:
            before_window = np.searchsorted(keys, score_keys - hours * _HOUR_S, side="right")
            out[f"{error}_count_{hours}h"] = (upto_t - before_window).astype(np.float32)
        out[f"hours_since_{error}"] = _hours_since_last(
            keys, score_keys, upto_t, ERROR_LOOKBACK_HOURS, inclusive=True
        )


def _maintenance_features(
    raw: RawArrays, machine_ids: np.ndarray, seconds: np.ndarray, out: dict[str, np.ndarray]
) -> None:
    """Hours since the last replacement of each component strictly before t (NaN when none is known)."""
    score_keys = machine_time_keys(machine_ids, seconds)
    for comp, keys in _event_keys(raw.maint_machine, raw.maint_seconds, raw.maint_codes, COMPONENTS).items():
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
    same_machine = has_event & (key_machines(last_keys) == key_machines(score_keys))
    hours = (score_keys - last_keys) / float(_HOUR_S)
    valid = same_machine & (hours >= 0 if inclusive else hours > 0)
    if limit_hours is not None:
        valid &= hours < limit_hours
    return np.where(valid, hours, np.nan).astype(np.float32)


def _machine_features(raw: RawArrays, machine_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model (object) and age (float32) by machineID, NaN for unknown machines: a join without pandas' merge."""
    ids = raw.machine_ids
    if len(np.unique(ids)) != len(ids):
        raise pd.errors.MergeError("machines has repeated machineID values; one row per machine is expected")
    if not len(ids):
        return np.full(len(machine_ids), np.nan, dtype=object), np.full(len(machine_ids), np.nan, dtype=np.float32)
    order = np.argsort(ids, kind="stable")
    position = np.minimum(np.searchsorted(ids[order], machine_ids), len(ids) - 1)
    found = ids[order][position] == machine_ids
    rows = order[position]
    model = np.where(found, raw.machine_models[rows], np.nan).astype(object)
    age = np.where(found, raw.machine_ages[rows], np.nan).astype(np.float32)
    return model, age

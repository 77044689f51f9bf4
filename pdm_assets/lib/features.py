"""Features at (machine, time t) from raw history at or before t: the one code path for training and serving."""

from __future__ import annotations

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

    # One frame from all columns at once: inserting them one by one costs more than computing them.
    names = SENSOR_FEATURES + ERROR_FEATURES + MAINTENANCE_FEATURES
    computed = {READINGS_COLUMN: readings, **{name: columns[name] for name in names}}
    # Short rows are dropped while the columns are copied into the frame, not by copying the frame again.
    keep = None if explicit else readings >= MIN_READINGS_24H
    if keep is not None:
        keys = keys[keep].reset_index(drop=True)
    table = pd.concat([keys, _frame(computed, keys.index, keep)], axis=1)
    return _attach_machine_features(table, machines)


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
            runs.append(pd.DataFrame(block.T, index=index, columns=names[start:stop], copy=False))
            start = stop
    return pd.concat(runs, axis=1) if len(runs) > 1 else runs[0]


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
    # With no telemetry at all every scoring point is unknown (and its windows empty), not an index error.
    known = (score_row < len(machines)) & (
        machines[np.minimum(score_row, max(len(machines) - 1, 0))] == machine_ids if len(machines) else False
    )
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
        grid[tele_row, tele_col] = telemetry[sensor].to_numpy(np.float64)
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


def _event_keys(frame: pd.DataFrame, column: str, codes: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Sorted machine/time keys of the events of each code."""
    keys = frame["machineID"].to_numpy(np.int64) * _MACHINE_STRIDE + epoch_seconds(frame["datetime"])
    values = frame[column].to_numpy(dtype=object)
    return {code: np.sort(keys[values == code]) for code in codes}


def _error_features(
    errors: pd.DataFrame, machine_ids: np.ndarray, seconds: np.ndarray, out: dict[str, np.ndarray]
) -> None:
    """Counts of each error type in (t - w, t] and hours since its last occurrence within the lookback."""
    score_keys = machine_ids * _MACHINE_STRIDE + seconds
    for error, keys in _event_keys(errors, "errorID", ERROR_IDS).items():
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
    for comp, keys in _event_keys(maint, "comp", COMPONENTS).items():
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
    """Model and age by machineID (NaN for unknown machines); a left join without pandas' merge overhead."""
    ids = machines["machineID"].to_numpy(np.int64)
    if len(np.unique(ids)) != len(ids):
        raise pd.errors.MergeError("machines has repeated machineID values; one row per machine is expected")
    order = np.argsort(ids, kind="stable")
    wanted = table["machineID"].to_numpy(np.int64)
    position = np.minimum(np.searchsorted(ids[order], wanted), max(len(ids) - 1, 0))
    found = ids[order][position] == wanted if len(ids) else np.zeros(len(wanted), dtype=bool)
    rows = order[position] if len(ids) else position
    models = machines["model"].to_numpy(dtype=object)
    ages = machines["age"].to_numpy(dtype=np.float64)
    out = table.copy(deep=False)  # new columns only: the computed ones are not copied (copy-on-write)
    model = np.where(found, models[rows] if len(ids) else np.nan, np.nan)
    out["model"] = pd.Series(model, index=out.index, dtype=object)
    out["age"] = np.where(found, ages[rows] if len(ids) else np.nan, np.nan).astype(np.float32)
    return out

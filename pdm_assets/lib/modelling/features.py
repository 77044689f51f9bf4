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

# Each machine against its own recent past (the early-warning features). The baseline is the window
# (t - lookback, t - BASELINE_GAP_HOURS]: pre-failure drift starts about 48 h before a failure, so a baseline
# ending 72 h before t holds none of the drift of a failure within the next 48 h.
BASELINE_GAP_HOURS = 72
BASELINE_LOOKBACK_HOURS = 240  # the default of PDM_BASELINE_LOOKBACK_HOURS: days 10 to 3 before t
BASELINE_READINGS_COLUMN = "baseline_readings"
BASELINE_RECENT_HOURS = 12  # the short window that sees a drift's onset before the 24 h mean does
# Per sensor, in units of the baseline's std: the 24 h and 12 h means and the 24 h std minus the baseline's,
# and the trend, the last 24 h mean minus the 24 h mean before it.
BASELINE_STATS: tuple[str, ...] = ("mean_24h", "std_24h", "mean_12h", "trend_48h")
BASELINE_FEATURES: tuple[str, ...] = tuple(
    f"{sensor}_{stat}_vs_baseline" for sensor in SENSORS for stat in BASELINE_STATS
)
# The early-warning head reads the sensors only against each machine's baseline: machines differ in their
# absolute levels more than a drift moves them, so absolute windows let it learn machines instead of drifts
# (on the real rolling origin they cost it a third of its events at the same false-alarm rate).
EARLY_WARNING_FEATURE_COLUMNS: tuple[str, ...] = BASELINE_FEATURES + NON_TELEMETRY_FEATURES
_BASELINE_PHRASES = {
    "mean_24h": "24 h mean", "std_24h": "24 h std", "mean_12h": "12 h mean", "trend_48h": "24 h mean change over a day",
}

_HOUR_S = np.int64(3600)
_DAY_HOURS = 24
_CHUNK_ROWS = 250_000
# Window statistics gather (rows x width) cells per chunk: wide windows get proportionally fewer rows.
_CHUNK_CELLS = _CHUNK_ROWS * TELEMETRY_LOOKBACK_HOURS
logger = logging.getLogger(__name__)


def grid_score_times(telemetry: pd.DataFrame, grid_hours: int) -> pd.DataFrame:
    """Scoring points: telemetry timestamps whose hour since 1970 is a multiple of grid_hours."""
    seconds = epoch_seconds(telemetry["datetime"])
    on_grid = (seconds % (grid_hours * _HOUR_S)) == 0
    keys = telemetry.loc[on_grid, list(KEY_COLUMNS)]
    return keys.sort_values(list(KEY_COLUMNS)).reset_index(drop=True)


def baseline_min_readings(lookback_hours: int) -> int:
    """Readings a baseline window of `lookback_hours` needs: six hours in seven (a day a week may be missing)."""
    return (lookback_hours - BASELINE_GAP_HOURS) * 6 // 7


def describe_baseline_feature(name: str, value: float) -> str:
    """A baseline feature as a planner reads it, e.g. "pressure 24 h mean +2.3σ over this machine's baseline"."""
    sensor, rest = name.split("_", 1)
    stat = rest.removesuffix("_vs_baseline")
    if sensor not in SENSORS or stat not in _BASELINE_PHRASES or not rest.endswith("_vs_baseline"):
        raise ValueError(f"{name!r} is not one of the baseline features {BASELINE_FEATURES}")
    return f"{sensor} {_BASELINE_PHRASES[stat]} {value:+.1f}σ over this machine's baseline"


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
    baseline_hours: int | None = None,
) -> pd.DataFrame:
    """One row per (machineID, datetime) scoring point, with features from records at or before it.

    Without score_times the points are the telemetry grid and rows with fewer than MIN_READINGS_24H
    readings in their 24 h window are dropped; with score_times every point is kept and the caller
    decides what to do with its READINGS_COLUMN. With baseline_hours (the telemetry lookback of the
    early-warning features) the BASELINE_FEATURES and BASELINE_READINGS_COLUMN are added.
    """
    keys = grid_score_times(telemetry, grid_hours) if score_times is None else _sorted_keys(score_times)
    logger.info("features: %d scoring points of %d machines, in chunks of %d rows",
                len(keys), keys["machineID"].nunique(), _CHUNK_ROWS)
    return feature_table(
        RawArrays.from_tables(telemetry, errors, maint, machines),
        keys["machineID"].to_numpy(np.int64), keys["datetime"].to_numpy(),
        drop_short=score_times is None, baseline_hours=baseline_hours,
    )


def feature_table(
    raw: RawArrays, machine_ids: np.ndarray, times: np.ndarray, *, drop_short: bool = False,
    labels: Mapping[str, np.ndarray] | None = None, baseline_hours: int | None = None,
) -> pd.DataFrame:
    """The feature rows of the scoring points (machine_ids[i], times[i]), in that order.

    With drop_short, rows with fewer than MIN_READINGS_24H readings in their 24 h window are left out.
    `labels` replaces the machineID and datetime columns written to the table (the service computes on
    aligned positions and reports the client's ids and times); the features are those of the points.
    With baseline_hours the baseline features (and their reading count) follow the other columns.
    """
    seconds = epoch_seconds(times)
    columns: dict[str, np.ndarray] = {}
    readings = _sensor_features(raw, machine_ids, seconds, columns, baseline_hours)
    _error_features(raw, machine_ids, seconds, columns)
    _maintenance_features(raw, machine_ids, seconds, columns)
    model, age = _machine_features(raw, machine_ids)
    names = SENSOR_FEATURES + ERROR_FEATURES + MAINTENANCE_FEATURES
    shown = labels or {"machineID": machine_ids, "datetime": times}
    everything = {
        "machineID": shown["machineID"], "datetime": shown["datetime"], READINGS_COLUMN: readings,
        **{name: columns[name] for name in names}, "model": model, "age": age,
    }
    if baseline_hours is not None:
        everything |= {name: columns[name] for name in (BASELINE_READINGS_COLUMN, *BASELINE_FEATURES)}
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
    raw: RawArrays, machine_ids: np.ndarray, seconds: np.ndarray, out: dict[str, np.ndarray],
    baseline_hours: int | None = None,
) -> np.ndarray:
    """Rolling stats per sensor over windows (t - w, t], and with baseline_hours the baseline features;
    returns the reading count of the 24 h window."""
    tele_ids = raw.telemetry_machine
    tele_hours = raw.telemetry_seconds // _HOUR_S
    # floor(t) to the hour: readings in (t - w, t] are the w hourly cells ending at floor(t).
    score_hours = seconds // _HOUR_S
    width = max(SENSOR_WINDOWS_HOURS) if baseline_hours is None else max(baseline_hours, *SENSOR_WINDOWS_HOURS)
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

    # The baseline's 12 h window is the last half of the 24 h one: one gather serves all.
    widths = SENSOR_WINDOWS_HOURS + ((BASELINE_RECENT_HOURS,) if baseline_hours is not None else ())
    unknown_row = len(machines)  # an all-NaN row for machines without telemetry
    score_row = np.where(known, score_row, unknown_row)
    counts = np.zeros(len(seconds), dtype=np.int64)
    for sensor in SENSORS:
        grid = np.full((len(machines) + 1, span), np.nan)
        grid[tele_row, tele_col] = np.asarray(raw.sensors[sensor], dtype=np.float64)
        windows = _window_stats(grid, score_row, score_col, widths)
        for hours in SENSOR_WINDOWS_HOURS:
            stats = windows[hours]
            for stat in SENSOR_STATS:
                out[f"{sensor}_{stat}_{hours}h"] = stats[stat]
            if hours == TELEMETRY_LOOKBACK_HOURS:
                counts = stats["count"].astype(np.int64)
        if baseline_hours is not None:
            _baseline_features(sensor, grid, score_row, score_col, windows, baseline_hours, out)
    return counts


def _baseline_features(
    sensor: str, grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, windows: Mapping[int, Mapping[str, np.ndarray]],
    baseline_hours: int, out: dict[str, np.ndarray],
) -> None:
    """One sensor's BASELINE_STATS at each point, against its baseline (t - baseline_hours, t - gap].

    The baseline is summed from whole days: each day's count, sum and sum of squares from its own 24 cells,
    the days in a fixed order, so a history alone gets the bits of the offline table, and points a day
    apart share their days. NaN where the baseline has fewer than baseline_min_readings or no spread.
    """
    days = _DaySums(grid, rows, cols)
    n, total, squares = days.ending(BASELINE_GAP_HOURS // _DAY_HOURS)
    for back in range(BASELINE_GAP_HOURS // _DAY_HOURS + 1, baseline_hours // _DAY_HOURS):
        more = days.ending(back)  # in order, so the same additions for any batch
        n, total, squares = n + more[0], total + more[1], squares + more[2]
    before_n, before_total, _ = days.ending(1)
    last_day, half_day = windows[TELEMETRY_LOOKBACK_HOURS], windows[BASELINE_RECENT_HOURS]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        std = np.sqrt(np.maximum(squares - total * mean, 0.0) / (n - 1))
        spread = np.where((n >= baseline_min_readings(baseline_hours)) & (std > 0), std, np.nan)
        out[f"{sensor}_mean_24h_vs_baseline"] = (last_day["mean"] - mean) / spread
        out[f"{sensor}_std_24h_vs_baseline"] = (last_day["std"] - std) / spread
        out[f"{sensor}_mean_12h_vs_baseline"] = (half_day["mean"] - mean) / spread
        out[f"{sensor}_trend_48h_vs_baseline"] = (last_day["mean"] - before_total / before_n) / spread
    out[BASELINE_READINGS_COLUMN] = n.astype(np.int64)  # every sensor has the same hours


class _DaySums:
    """Count, sum and sum of squares of the 24 cells ending whole days before each point (row, col) of a grid,
    NaN cells left out.

    The days ending at one hour of the day tile the grid, so each such phase is one reshape and three
    reductions over the grid instead of a gather per point; a day's figures come from its own 24 cells.
    """

    def __init__(self, grid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> None:
        present = (~np.isnan(grid)).astype(np.float64)
        filled = np.nan_to_num(grid, nan=0.0)
        squares = filled * filled
        self.size = len(rows)
        self.phases: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        phase_of = cols % _DAY_HOURS
        for phase in np.unique(phase_of):
            chosen = np.flatnonzero(phase_of == phase)
            offset = (int(phase) + 1) % _DAY_HOURS  # the first column of a day ending at `phase`
            blocks = (grid.shape[1] - offset) // _DAY_HOURS
            span = slice(offset, offset + blocks * _DAY_HOURS)
            shape = (grid.shape[0], blocks, _DAY_HOURS)
            sums = np.stack([values[:, span].reshape(shape).sum(axis=2) for values in (present, filled, squares)])
            self.phases.append((chosen, rows[chosen], (cols[chosen] - offset) // _DAY_HOURS, sums))

    def ending(self, days_before: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Count, sum and sum of squares of the day ending `days_before` days before each point."""
        out = np.empty((3, self.size))
        for chosen, rows, day, sums in self.phases:
            out[:, chosen] = sums[:, rows, day - days_before]
        return out[0], out[1], out[2]


def _window_stats(
    grid: np.ndarray, rows: np.ndarray, cols: np.ndarray, widths: tuple[int, ...], *, extremes: bool = True
) -> dict[int, dict[str, np.ndarray]]:
    """count/mean/std (and min/max with extremes) of the w cells ending at (row, col) for each width w,
    NaN-aware, in row chunks.

    One gather of the widest window per chunk serves every width (a narrower one is its last columns).
    Each window's figures depend on its own cells only, in the same order for one row or a million, so
    the service's single history gets bit for bit the numbers of the offline table.
    """
    widest = max(widths)
    names = ("count", *SENSOR_STATS) if extremes else ("count", "mean", "std")
    result = {w: {name: np.empty(len(rows)) for name in names} for w in widths}
    # windows[r, c] views cells c .. c + widest - 1 of row r: the window ending at column c + widest - 1.
    windows = np.lib.stride_tricks.sliding_window_view(grid, widest, axis=1)
    chunk_rows = max(1, _CHUNK_CELLS // widest)
    for start in range(0, len(rows), chunk_rows):
        chunk = slice(start, start + chunk_rows)
        if len(rows) > chunk_rows:  # offline tables only: a request's few rows are one chunk
            end = min(start + chunk_rows, len(rows))
            logger.info("window statistics (%d h): rows %d-%d of %d", widest, start + 1, end, len(rows))
        wide = windows[rows[chunk], cols[chunk] - (widest - 1)]
        for width in widths:
            window = wide if width == widest else np.ascontiguousarray(wide[:, widest - width :])
            _nan_stats(window, result[width], chunk)
    return result


def _nan_stats(window: np.ndarray, out: dict[str, np.ndarray], rows: slice) -> None:
    """Row-wise count, nanmean, nanstd (ddof=1), and nanmin and nanmax where `out` has them, computed as
    numpy's nan-functions do (the same operations in the same order, so the same bits) with one NaN mask and
    one copy instead of five."""
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
    if "min" in out:
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

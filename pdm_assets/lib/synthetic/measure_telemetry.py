"""Measure the telemetry the simulator reproduces: the pre-failure drift of each component's sensor, when it
starts, the readings outside drift windows and how often they drift without a failure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.signal import find_peaks

from pdm_assets.lib.data.tables import SENSORS
from pdm_assets.lib.synthetic.measure_common import DAY_HOURS, as_times, hours_from, rounded
from pdm_assets.lib.synthetic.simulate import window_mask

DRIFT_WINDOW_HOURS = 24
# Reference window for drift: from 10 to 5 days before the failure.
REFERENCE_HOURS = (240, 120)


@dataclass(frozen=True)
class TelemetryGrid:
    """Each sensor's readings as a machines x hours matrix from `origin` (NaN where missing)."""

    values: dict[str, np.ndarray]
    machine_ids: np.ndarray
    origin: pd.Timestamp


def telemetry_grid(telemetry: pd.DataFrame) -> TelemetryGrid:
    """Pivot the telemetry into one machines x hours matrix per sensor."""
    times = as_times(telemetry)
    origin = times.min()
    hour = hours_from(times, origin).to_numpy()
    ids, row = np.unique(telemetry["machineID"].to_numpy(), return_inverse=True)
    values = {}
    for sensor in SENSORS:
        matrix = np.full((len(ids), int(hour.max()) + 1), np.nan)
        matrix[row, hour] = telemetry[sensor].to_numpy(dtype=np.float64)
        values[sensor] = matrix
    return TelemetryGrid(values, ids, origin)


def _failure_cells(grid: TelemetryGrid, failures: pd.DataFrame) -> pd.DataFrame:
    """Failures of machines in the grid, with their grid row and hour."""
    known = failures[failures["machineID"].isin(grid.machine_ids)]
    return pd.DataFrame(
        {
            "row": np.searchsorted(grid.machine_ids, known["machineID"].to_numpy()),
            "hour": hours_from(as_times(known), grid.origin).to_numpy(),
            "comp": known["failure"].astype(str).to_numpy(),
        }
    )


def _standardized(
    grid: TelemetryGrid, cells: pd.DataFrame, offsets: np.ndarray, reference: tuple[int, int]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Readings at `offsets` hours from each failure, in stds from the mean of its reference window.

    Only failures whose reference window and offsets are complete in the grid are kept.
    """
    hours = grid.values[SENSORS[0]].shape[1]
    ref = np.arange(-reference[0], -reference[1])
    earliest = min(int(offsets.min()), int(ref.min()))
    latest = max(int(offsets.max()), int(ref.max()))
    cells = cells[(cells["hour"] + earliest >= 0) & (cells["hour"] + latest < hours)]
    rows = cells["row"].to_numpy()[:, None]
    at, before = cells["hour"].to_numpy()[:, None] + offsets, cells["hour"].to_numpy()[:, None] + ref
    complete = np.ones(len(cells), dtype=bool)
    scores = {}
    for sensor in SENSORS:
        values, baseline = grid.values[sensor][rows, at], grid.values[sensor][rows, before]
        complete &= ~np.isnan(values).any(axis=1) & ~np.isnan(baseline).any(axis=1)
        mean, std = baseline.mean(axis=1, keepdims=True), baseline.std(axis=1, ddof=1, keepdims=True)
        scores[sensor] = (values - mean) / std
    return cells[complete].reset_index(drop=True), {s: z[complete] for s, z in scores.items()}


def drift_by_component(
    grid: TelemetryGrid,
    failures: pd.DataFrame,
    window_hours: int = DRIFT_WINDOW_HOURS,
    reference: tuple[int, int] = REFERENCE_HOURS,
) -> pd.DataFrame:
    """Mean over each component's failures of (mean of the window before it - reference mean) / reference std.

    Rows are components, columns sensors plus `failures` (how many failures had complete windows).
    """
    cells, scores = _standardized(
        grid, _failure_cells(grid, failures), np.arange(-window_hours, 0), reference
    )
    table = pd.DataFrame({sensor: z.mean(axis=1) for sensor, z in scores.items()})
    table["comp"] = cells["comp"]
    drift = table.groupby("comp")[list(SENSORS)].mean()
    drift["failures"] = table.groupby("comp").size()
    return drift


def drift_signature(drift: pd.DataFrame) -> tuple[dict[str, str], dict[str, float]]:
    """Each component's most drifting sensor and its drift in stds."""
    sensors = drift[list(SENSORS)]
    signature = {str(comp): str(sensors.loc[comp].abs().idxmax()) for comp in sensors.index}
    sigma = {comp: rounded(float(np.asarray(sensors.loc[comp, sensor]))) for comp, sensor in signature.items()}
    return signature, sigma


def step_onset(profile: np.ndarray) -> int:
    """How many points before the last one a step up to the end fits `profile` best (least squares)."""
    size = len(profile)
    errors = []
    for length in range(1, size - 1):
        before, after = profile[: size - 1 - length], profile[size - 1 - length :]
        errors.append(((before - before.mean()) ** 2).sum() + ((after - after.mean()) ** 2).sum())
    return int(np.argmin(errors)) + 1


def drift_onset_hours(
    grid: TelemetryGrid,
    failures: pd.DataFrame,
    signature: Mapping[str, str],
    sigma: Mapping[str, float],
    reference: tuple[int, int] = REFERENCE_HOURS,
) -> int:
    """Hours before a failure at which its sensor's drift starts: the best step fit to the mean profile."""
    offsets = np.arange(-reference[1], 1)
    cells, scores = _standardized(grid, _failure_cells(grid, failures), offsets, reference)
    signed = [np.sign(sigma[c]) * scores[signature[c]][i] for i, c in enumerate(cells["comp"]) if c in sigma]
    return step_onset(np.mean(signed, axis=0))


def _failure_window_mask(
    grid: TelemetryGrid, failures: pd.DataFrame, comps: Sequence[str], drift_hours: int
) -> np.ndarray:
    """Grid cells inside [T - drift_hours, T] of a failure of one of `comps`."""
    cells = _failure_cells(grid, failures)
    cells = cells[cells["comp"].isin(comps)]
    shape = grid.values[SENSORS[0]].shape
    return window_mask(cells["row"].to_numpy(), cells["hour"].to_numpy(), shape, drift_hours)


def _trailing_mean(values: np.ndarray, length: int, min_fraction: float = 0.9) -> np.ndarray:
    """Mean of each row's last `length` values at every hour, NaN where under `min_fraction` are present."""
    present = ~np.isnan(values)
    sums = np.cumsum(np.where(present, values, 0.0), axis=1)
    counts = np.cumsum(present, axis=1).astype(np.float64)
    sums[:, length:] -= sums[:, :-length].copy()
    counts[:, length:] -= counts[:, :-length].copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        means = sums / counts
    window_counts = counts
    means[window_counts < min_fraction * length] = np.nan
    means[:, : length - 1] = np.nan
    return means


def anomaly_windows(
    values: np.ndarray, sign: float, threshold: float, drift_hours: int
) -> tuple[np.ndarray, np.ndarray]:
    """(row, end hour) of windows of drift_hours + 1 hours whose signed mean exceeds `threshold` stds."""
    scores = sign * (values - np.nanmean(values)) / np.nanstd(values, ddof=1)
    means = _trailing_mean(scores, drift_hours + 1)
    rows, ends = [], []
    for row, series in enumerate(np.where(np.isnan(means), -np.inf, means)):
        peaks, _ = find_peaks(series, height=threshold, distance=drift_hours + 1)
        rows.append(np.full(len(peaks), row))
        ends.append(peaks)
    return np.concatenate(rows), np.concatenate(ends)


def telemetry_baseline(
    grid: TelemetryGrid,
    failures: pd.DataFrame,
    signature: Mapping[str, str],
    sigma: Mapping[str, float],
    drift_hours: int,
) -> tuple[dict[str, float], dict[str, float], dict[str, float]]:
    """Per sensor: mean and std outside drift windows, and the rate of drift windows without a failure.

    A window without a failure is one whose mean drifts by over half the failure drift, in the same
    direction; the rate is per machine-day of readings outside failure windows.
    """
    means, stds, rates = {}, {}, {}
    for sensor in SENSORS:
        comps = [c for c, s in signature.items() if s == sensor]
        values = grid.values[sensor].copy()
        values[_failure_window_mask(grid, failures, comps, drift_hours)] = np.nan
        rate = 0.0
        if comps:
            rows, ends = anomaly_windows(
                values, np.sign(sigma[comps[0]]), abs(sigma[comps[0]]) / 2, drift_hours
            )
            rate = len(ends) / (np.count_nonzero(~np.isnan(values)) / DAY_HOURS)
            values[window_mask(rows, ends, values.shape, drift_hours)] = np.nan
        means[sensor] = rounded(float(np.nanmean(values)))
        stds[sensor] = rounded(float(np.nanstd(values, ddof=1)))
        rates[sensor] = rounded(rate)
    return means, stds, rates


def autocorrelation(grid: TelemetryGrid, lag: int) -> dict[str, float]:
    """Per sensor, the mean over machines of the lag-`lag` autocorrelation of hourly readings."""
    result = {}
    for sensor, values in grid.values.items():
        centred = np.nan_to_num(values - np.nanmean(values, axis=1, keepdims=True))
        products = (centred[:, :-lag] * centred[:, lag:]).sum(axis=1)
        result[sensor] = rounded(float(np.mean(products / (centred**2).sum(axis=1))))
    return result

"""Measure on the five raw tables the statistics that calibrate the synthetic fleet generator.

Run `python -m pdm_assets.lib.synthetic.calibrate --data-dir DIR [--out docs/calibration.json]`; the numbers in
`simulate.REAL_CALIBRATION` are its output on the real dataset.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.signal import find_peaks
from scipy.special import xlogy

from pdm_assets.lib.data.tables import COMPONENTS, ERROR_IDS, MACHINE_MODELS, SENSORS, RawTables
from pdm_assets.lib.synthetic.simulate import Calibration, window_mask

HOUR = pd.Timedelta(hours=1)
DAY_HOURS = 24
DRIFT_WINDOW_HOURS = 24
# Reference window for drift: from 10 to 5 days before the failure.
REFERENCE_HOURS = (240, 120)
SIGNIFICANT_DIGITS = 4


@dataclass(frozen=True)
class TelemetryGrid:
    """Each sensor's readings as a machines x hours matrix from `origin` (NaN where missing)."""

    values: dict[str, np.ndarray]
    machine_ids: np.ndarray
    origin: pd.Timestamp


def _times(frame: pd.DataFrame) -> pd.Series:
    """The `datetime` column as datetime64[ns], whether it was read as text or not."""
    return pd.to_datetime(frame["datetime"]).astype("datetime64[ns]")


def _hours(times: Any, origin: Any) -> Any:
    """Whole hours from `origin` (timestamps or series of them)."""
    return (times - origin) // HOUR


def _days(delta: pd.Series) -> pd.Series:
    """A series of time differences in days."""
    return delta.dt.total_seconds() / 86400


def _keyed(frame: pd.DataFrame, column: str, name: str = "comp") -> pd.DataFrame:
    """machineID, datetime (typed) and `column` as plain strings under `name`."""
    return pd.DataFrame(
        {"machineID": frame["machineID"], "datetime": _times(frame), name: frame[column].astype(str)}
    )


def _round(value: float) -> float:
    """`value` to a few significant digits, so that measurements compare equal across platforms."""
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _mode(values: pd.Series) -> int:
    """The most frequent value (the smallest among ties)."""
    counts = values.value_counts().sort_index()
    return int(counts.index.to_numpy()[counts.to_numpy().argmax()])


# --- telemetry -------------------------------------------------------------------------------------------


def telemetry_grid(telemetry: pd.DataFrame) -> TelemetryGrid:
    """Pivot the telemetry into one machines x hours matrix per sensor."""
    times = _times(telemetry)
    origin = times.min()
    hour = _hours(times, origin).to_numpy()
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
            "hour": _hours(_times(known), grid.origin).to_numpy(),
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
    sigma = {comp: _round(float(np.asarray(sensors.loc[comp, sensor]))) for comp, sensor in signature.items()}
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
        means[sensor] = _round(float(np.nanmean(values)))
        stds[sensor] = _round(float(np.nanstd(values, ddof=1)))
        rates[sensor] = _round(rate)
    return means, stds, rates


def autocorrelation(grid: TelemetryGrid, lag: int) -> dict[str, float]:
    """Per sensor, the mean over machines of the lag-`lag` autocorrelation of hourly readings."""
    result = {}
    for sensor, values in grid.values.items():
        centred = np.nan_to_num(values - np.nanmean(values, axis=1, keepdims=True))
        products = (centred[:, :-lag] * centred[:, lag:]).sum(axis=1)
        result[sensor] = _round(float(np.mean(products / (centred**2).sum(axis=1))))
    return result


# --- events ----------------------------------------------------------------------------------------------


def observation_window(tables: RawTables) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First hour and the hour after the last one of telemetry, errors and failures."""
    stamps = [_times(f) for f in (tables.telemetry, tables.errors, tables.failures) if len(f)]
    return min(s.min() for s in stamps), max(s.max() for s in stamps) + HOUR


def _window_days(window: tuple[pd.Timestamp, pd.Timestamp]) -> float:
    """Length of the window in days."""
    return float((window[1] - window[0]) / pd.Timedelta(days=1))


def _within(frame: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp]) -> pd.DataFrame:
    """Rows whose datetime lies in [start, end)."""
    times = _times(frame)
    return frame[(times >= window[0]) & (times < window[1])]


def event_hour(maint: pd.DataFrame) -> int:
    """The hour of day at which replacements happen."""
    return _mode(_times(maint).dt.hour)


def inspection_interval_days(maint: pd.DataFrame) -> int:
    """The most common number of days between a machine's consecutive replacement dates."""
    visits = pd.DataFrame({"machineID": maint["machineID"], "datetime": _times(maint)}).drop_duplicates()
    visits = visits.sort_values(["machineID", "datetime"])
    gaps = _days(visits.groupby("machineID")["datetime"].diff().dropna())
    return _mode(gaps.round().astype(int))


def history_days(maint: pd.DataFrame, start: pd.Timestamp) -> int:
    """Whole days of replacement records before `start`."""
    return max(0, int((start - _times(maint).min()) / pd.Timedelta(days=1)))


def regular_failures(failures: pd.DataFrame, hour: int) -> pd.DataFrame:
    """Failures at the hour of day of replacements (the others are log-start artifacts)."""
    return failures[_times(failures).dt.hour == hour]


def _failure_lags(errors: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Every (failure, error of the same machine) pair with the hours from the error to the failure."""
    pairs = (
        _keyed(failures, "failure").rename(columns={"datetime": "failed"}).reset_index(names="failure_row")
    )
    erred = _keyed(errors, "errorID", "errorID").rename(columns={"datetime": "erred"})
    pairs = pairs.merge(erred, on="machineID")
    pairs["lag"] = _hours(pairs["failed"], pairs["erred"])
    return pairs


def precursor_lead_hours(errors: pd.DataFrame, failures: pd.DataFrame, max_hours: int = 72) -> int:
    """The most common number of hours, up to `max_hours`, by which an error precedes a failure."""
    lags = _failure_lags(errors, failures)["lag"]
    return _mode(lags[(lags >= 1) & (lags <= max_hours)])


def precursor_errors(errors: pd.DataFrame, failures: pd.DataFrame, lead: int) -> dict[str, tuple[str, ...]]:
    """Per component, the error types found exactly `lead` hours before at least half its failures."""
    pairs = _failure_lags(errors, failures)
    pairs = pairs[pairs["lag"] == lead].drop_duplicates(["failure_row", "errorID"])
    totals = failures["failure"].astype(str).value_counts()
    found = pairs.groupby(["comp", "errorID"]).size().reset_index(name="n")
    found = found[found["n"] >= 0.5 * found["comp"].map(totals)]
    return {
        c: tuple(sorted(found.loc[found["comp"] == c, "errorID"])) for c in sorted(found["comp"].unique())
    }


def _warned(
    errors: pd.DataFrame, failures: pd.DataFrame, mapping: Mapping[str, Sequence[str]], lead: int
) -> pd.DataFrame:
    """(failure_row, error index) pairs of failures with one of their component's errors `lead` h before."""
    pairs = _failure_lags(errors, failures)
    pairs = pairs[pairs["lag"] == lead]
    matched = [e in mapping.get(c, ()) for c, e in zip(pairs["comp"], pairs["errorID"], strict=True)]
    return pairs[np.array(matched, dtype=bool)]


def precursor_share(
    errors: pd.DataFrame,
    failures: pd.DataFrame,
    mapping: Mapping[str, Sequence[str]],
    lead: int,
    since: pd.Timestamp | None = None,
) -> float:
    """Share of failures with one of their component's errors exactly `lead` hours earlier.

    With `since`, only failures whose precursor time is at or after it count.
    """
    if since is not None:
        failures = failures[_times(failures) - lead * HOUR >= since]
    if failures.empty:
        return float("nan")
    warned = _warned(errors, failures, mapping, lead)["failure_row"].nunique()
    return _round(warned / len(failures))


def background_error_rates(
    errors: pd.DataFrame,
    failures: pd.DataFrame,
    mapping: Mapping[str, Sequence[str]],
    lead: int,
    machine_days: float,
) -> dict[str, float]:
    """Per error type, errors that are not a failure's precursor, per machine-day."""
    warned = _warned(errors, failures, mapping, lead)
    precursors = set(zip(warned["machineID"], warned["erred"], warned["errorID"], strict=True))
    keys = zip(errors["machineID"], _times(errors), errors["errorID"].astype(str), strict=True)
    background = errors[[key not in precursors for key in keys]]
    counts = background["errorID"].astype(str).value_counts()
    return {e: _round(counts.get(e, 0) / machine_days) for e in ERROR_IDS}


def _replacements(maint: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Replacements with `at_failure` telling whether the component failed at that time."""
    frame = _keyed(maint, "comp")
    failed = _keyed(failures, "failure").drop_duplicates()
    failed["at_failure"] = True
    frame = frame.merge(failed, on=["machineID", "datetime", "comp"], how="left")
    frame["at_failure"] = frame["at_failure"].fillna(False).astype(bool)
    return frame


def service_count_probabilities(
    maint: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp], machines: int, interval_days: int
) -> tuple[float, ...]:
    """Probabilities of 0, 1, 2... components replaced at an inspection.

    Inspections without a replacement are those of the machines' schedule (one per interval) left over.
    """
    inside = _within(maint, window)
    sizes = (
        pd.DataFrame({"m": inside["machineID"], "t": _times(inside)}).groupby(["m", "t"]).size().to_numpy()
    )
    counts = np.bincount(sizes).astype(np.float64)
    counts[0] = max(0.0, machines * _window_days(window) / interval_days - len(sizes))
    return tuple(_round(c / counts.sum()) for c in counts)


def min_days_to_failure(maint: pd.DataFrame, failures: pd.DataFrame, interval_days: int) -> dict[str, int]:
    """Per component, the fewest days from a replacement to its next failure, up to whole intervals."""
    gaps = _days_since_replacement(maint, failures)
    shortest = _inspections_since(gaps.groupby("comp")["days"].min(), interval_days)
    return {c: int(shortest.get(c, 1)) * interval_days for c in COMPONENTS}


def _inspections_since(days: pd.Series, interval_days: int) -> pd.Series:
    """Days as whole inspections, rounded up (off-schedule records count as the next inspection)."""
    return np.ceil(days / interval_days - 1e-9)


def _days_since_replacement(maint: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Each failure with the days since its component's previous replacement."""
    left = _keyed(failures, "failure").sort_values("datetime")
    right = _keyed(maint, "comp").rename(columns={"datetime": "replaced"}).sort_values("replaced")
    merged = pd.merge_asof(
        left,
        right,
        left_on="datetime",
        right_on="replaced",
        by=["machineID", "comp"],
        allow_exact_matches=False,
    )
    merged["days"] = _days(merged["datetime"] - merged["replaced"])
    return merged.dropna(subset=["days"])


def replacement_intervals(
    maint: pd.DataFrame, window: tuple[pd.Timestamp, pd.Timestamp], interval_days: int
) -> pd.DataFrame:
    """Each replacement with the inspections after it (counted 1, 2...) that fall in the window.

    Columns: machineID, comp, first and last (inspection numbers in the window up to the next replacement,
    included) and ended (whether that next replacement is in the window).
    """
    interval = interval_days * DAY_HOURS
    frame = _keyed(maint, "comp").sort_values(["machineID", "comp", "datetime"])
    last_hour = _hours(window[1], window[0]) - 1
    start = _hours(frame["datetime"], window[0]).to_numpy()
    grouped = frame.groupby(["machineID", "comp"])
    following = _hours(grouped["datetime"].shift(-1), window[0]).to_numpy(dtype=np.float64)
    ended = following <= last_hour
    return pd.DataFrame(
        {
            "machineID": frame["machineID"].to_numpy(),
            "comp": frame["comp"].to_numpy(),
            "first": np.maximum(1, np.ceil(-start / interval)),
            "last": np.floor((np.where(ended, following, last_hour) - start) / interval),
            "ended": ended,
        }
    )


def service_weights(intervals: pd.DataFrame, longest: int = 8) -> tuple[float, ...]:
    """Share of components replaced at the k-th inspection since their last replacement.

    Entry k - 1 is for k = 1 .. longest - 1; the last entry pools every k from `longest` on.
    """
    shares = []
    for k in range(1, longest + 1):
        if k < longest:
            at_risk = ((intervals["first"] <= k) & (intervals["last"] >= k)).sum()
            events = (intervals["ended"] & (intervals["last"] == k)).sum()
        else:
            at_risk = np.maximum(0, intervals["last"] - np.maximum(intervals["first"], k) + 1).sum()
            events = (intervals["ended"] & (intervals["last"] >= k)).sum()
        shares.append(_round(events / at_risk) if at_risk else 0.0)
    return tuple(shares)


def eligible_replacements(
    maint: pd.DataFrame,
    window: tuple[pd.Timestamp, pd.Timestamp],
    min_days: Mapping[str, int],
    interval_days: int,
    machine_ids: np.ndarray,
) -> np.ndarray:
    """Machines x components: replacements in the window at least `min_days` after the previous one.

    A first record (no previous one known) counts as eligible.
    """
    frame = _keyed(maint, "comp").sort_values(["machineID", "comp", "datetime"])
    days = _days(frame.groupby(["machineID", "comp"])["datetime"].diff())
    shortest = frame["comp"].map(min_days).to_numpy(dtype=np.float64) / interval_days
    counted = (frame["datetime"] >= window[0]) & (frame["datetime"] < window[1])
    counted &= days.isna() | (_inspections_since(days, interval_days) >= shortest)
    table = pd.crosstab(frame.loc[counted, "machineID"], frame.loc[counted, "comp"])
    return table.reindex(index=machine_ids, columns=list(COMPONENTS), fill_value=0).to_numpy()


def _fit_rates(
    failures: np.ndarray, exposure: np.ndarray, models: np.ndarray, young: np.ndarray
) -> tuple[dict[str, float], float, float]:
    """Poisson fit of failures = exposure * p[model] * (young_factor if young): p, factor, log-likelihood."""
    factor = 1.0
    share = dict.fromkeys(MACHINE_MODELS, 0.0)
    for _ in range(200):
        weight = exposure * np.where(young, factor, 1.0)
        for model in MACHINE_MODELS:
            chosen = models == model
            total = weight[chosen].sum()
            share[model] = failures[chosen].sum() / total if total > 0 else 0.0
        expected_young = (exposure * np.array([share[m] for m in models]))[young].sum()
        factor = failures[young].sum() / expected_young if expected_young > 0 else 1.0
    rate = exposure * np.array([share[m] for m in models]) * np.where(young, factor, 1.0)
    return share, factor, float((xlogy(failures, rate) - rate).sum())


def failure_probabilities(
    failures: np.ndarray, exposure: np.ndarray, models: np.ndarray, ages: np.ndarray
) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, int]]:
    """Per component: failures per eligible replacement by model, and the age split that explains them best.

    `failures` and `exposure` are machines x components. An age split (young = under the threshold) is kept
    only when it raises the log-likelihood by more than log(machines), a BIC-like penalty.
    """
    shares, factors, thresholds = {}, {}, {}
    for index, comp in enumerate(COMPONENTS):
        counts, exposed = failures[:, index], exposure[:, index]
        unsplit = (*_fit_rates(counts, exposed, models, np.zeros(len(ages), dtype=bool)), 0)
        splits = [(*_fit_rates(counts, exposed, models, ages < a), int(a)) for a in np.unique(ages)[1:]]
        best = max(splits, key=lambda split: split[2], default=unsplit)
        if best[2] <= unsplit[2] + math.log(len(ages)):
            best = unsplit
        shares[comp] = {model: _round(value) for model, value in best[0].items()}
        factors[comp], thresholds[comp] = _round(best[1]), best[3]
    return shares, factors, thresholds


def failure_counts(failures: pd.DataFrame, machine_ids: np.ndarray) -> np.ndarray:
    """Machines x components: how many failures."""
    table = pd.crosstab(failures["machineID"], failures["failure"].astype(str))
    return table.reindex(index=machine_ids, columns=list(COMPONENTS), fill_value=0).to_numpy()


def log_start_failures(
    failures: pd.DataFrame, hour: int, start: pd.Timestamp, machines: int
) -> tuple[float, int]:
    """Failures away from the replacement hour per machine, and their median hours after `start`."""
    odd = failures[_times(failures).dt.hour != hour]
    if odd.empty:
        return 0.0, 0
    return _round(len(odd) / machines), int(np.median(_hours(_times(odd), start)))


def model_shares(machines: pd.DataFrame) -> dict[str, float]:
    """Share of machines of each model."""
    counts = machines["model"].astype(str).value_counts()
    return {m: _round(counts.get(m, 0) / len(machines)) for m in MACHINE_MODELS}


def age_probabilities(machines: pd.DataFrame) -> tuple[float, ...]:
    """Share of machines of each age in years, from 0 to the oldest."""
    counts = np.bincount(machines["age"].to_numpy(dtype=np.int64))
    return tuple(_round(c / len(machines)) for c in counts)


# --- all together ----------------------------------------------------------------------------------------


def calibrate(tables: RawTables) -> Calibration:
    """Measure every statistic the generator needs on the five tables."""
    window = observation_window(tables)
    machines = tables.machines
    machine_ids = machines["machineID"].to_numpy()
    machine_days = len(machines) * _window_days(window)
    hour = event_hour(tables.maint)
    interval = inspection_interval_days(tables.maint)
    regular = regular_failures(_within(tables.failures, window), hour)

    grid = telemetry_grid(tables.telemetry)
    signature, sigma = drift_signature(drift_by_component(grid, tables.failures))
    onset = drift_onset_hours(grid, tables.failures, signature, sigma)
    mean, std, anomaly = telemetry_baseline(grid, tables.failures, signature, sigma, onset)

    lead = precursor_lead_hours(tables.errors, tables.failures)
    mapping = precursor_errors(tables.errors, tables.failures, lead)
    min_days = min_days_to_failure(tables.maint, regular, interval)
    exposure = eligible_replacements(tables.maint, window, min_days, interval, machine_ids)
    probabilities, young, thresholds = failure_probabilities(
        failure_counts(regular, machine_ids),
        exposure,
        machines["model"].astype(str).to_numpy(),
        machines["age"].to_numpy(),
    )
    log_start_rate, log_start_offset = log_start_failures(
        _within(tables.failures, window), hour, window[0], len(machines)
    )
    return Calibration(
        model_shares=model_shares(machines),
        age_probabilities=age_probabilities(machines),
        baseline_mean=mean,
        baseline_std=std,
        drift_sensor=signature,
        drift_sigma=sigma,
        drift_hours=onset,
        anomaly_rate=anomaly,
        precursor_errors=mapping,
        precursor_lead_hours=lead,
        precursor_probability=precursor_share(tables.errors, tables.failures, mapping, lead, since=window[0]),
        background_error_rate=background_error_rates(
            tables.errors, tables.failures, mapping, lead, machine_days
        ),
        inspection_interval_days=interval,
        event_hour=hour,
        history_days=history_days(tables.maint, window[0]),
        service_count_probabilities=service_count_probabilities(
            tables.maint, window, len(machines), interval
        ),
        service_weights=service_weights(replacement_intervals(tables.maint, window, interval)),
        failure_probability=probabilities,
        young_factor=young,
        age_threshold=thresholds,
        min_days_to_failure=min_days,
        log_start_failures_per_machine=log_start_rate,
        log_start_offset_hours=log_start_offset,
    )


def summarize(tables: RawTables) -> dict[str, Any]:
    """Descriptive statistics to compare a synthetic fleet with the real one (not used to generate)."""
    window = observation_window(tables)
    years = len(tables.machines) * _window_days(window) / 365
    grid = telemetry_grid(tables.telemetry)
    drift = drift_by_component(grid, tables.failures)
    replaced = _replacements(_within(tables.maint, window), tables.failures)
    scheduled_gaps = _scheduled_intervals(tables.maint, tables.failures)
    failures = _within(tables.failures, window)
    lead = precursor_lead_hours(tables.errors, tables.failures)
    mapping = precursor_errors(tables.errors, tables.failures, lead)
    components = pd.DataFrame({"m": failures["machineID"], "t": _times(failures)}).groupby(["m", "t"]).size()
    return {
        "window": [window[0].isoformat(), window[1].isoformat()],
        "machines": len(tables.machines),
        "telemetry_machines": len(grid.machine_ids),
        "telemetry_hours": int(grid.values[SENSORS[0]].shape[1]),
        "telemetry_mean": {s: _round(float(tables.telemetry[s].mean())) for s in SENSORS},
        "telemetry_std": {s: _round(float(tables.telemetry[s].std())) for s in SENSORS},
        "autocorrelation_lag1": autocorrelation(grid, 1),
        "autocorrelation_lag24": autocorrelation(grid, 24),
        "drift_sigma": {str(c): {s: _round(float(drift.loc[c, s])) for s in SENSORS} for c in drift.index},
        "drift_failures": {str(c): int(n) for c, n in drift["failures"].items()},
        "precursor_share": precursor_share(tables.errors, failures, mapping, lead),
        "failures_per_machine_year": {
            c: _round(float((failures["failure"].astype(str) == c).sum() / years)) for c in COMPONENTS
        },
        "failure_hours": {
            str(h): int(n) for h, n in _times(failures).dt.hour.value_counts().sort_index().items()
        },
        "multi_component_failure_times": int((components > 1).sum()),
        "multi_component_failure_share": _round(float((components > 1).mean())),
        "errors_per_machine_year": {
            e: _round(float((_within(tables.errors, window)["errorID"].astype(str) == e).sum() / years))
            for e in ERROR_IDS
        },
        "scheduled_replacements_per_machine_year": _round(float((~replaced["at_failure"]).sum() / years)),
        "failures_without_replacement": int(len(failures) - replaced["at_failure"].sum()),
        "scheduled_interval_days": {
            "median": _round(float(scheduled_gaps.median())),
            "mean": _round(float(scheduled_gaps.mean())),
        },
        "age_mean": _round(float(tables.machines["age"].mean())),
    }


def _scheduled_intervals(maint: pd.DataFrame, failures: pd.DataFrame) -> pd.Series:
    """Days from each replacement not at a failure back to the previous replacement of that component."""
    replaced = _replacements(maint, failures).sort_values(["machineID", "comp", "datetime"])
    gaps = _days(replaced.groupby(["machineID", "comp"])["datetime"].diff())
    return gaps[~replaced["at_failure"]].dropna()


def calibration_report(tables: RawTables) -> dict[str, Any]:
    """The calibration and the descriptive summary, as JSON-ready data."""
    return {"calibration": asdict(calibrate(tables)), "summary": summarize(tables)}


def main(argv: Sequence[str] | None = None) -> int:
    """Print (and optionally write) the calibration measured on the dataset in --data-dir."""
    # Imported here: the loader reaches for download code that measuring does not need.
    from pdm_assets.lib.data.sources import load_local

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="folder holding the PdM_*.csv files")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    text = json.dumps(calibration_report(load_local(args.data_dir)), indent=2) + "\n"
    sys.stdout.write(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

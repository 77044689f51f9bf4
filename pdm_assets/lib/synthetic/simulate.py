"""A synthetic fleet with the five tables of the Azure PdM dataset, calibrated on the real data."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from pdm_assets.lib.data.tables import COMPONENTS, ERROR_IDS, MACHINE_MODELS, SENSORS, RawTables
from pdm_assets.lib.synthetic.fleet_tables import event_frame, fleet_location, table_record, telemetry_frame
from pdm_assets.lib.synthetic.parameters import REAL_CALIBRATION, Calibration

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class _Events:
    """Failures and replacements as (machine row, hour since start, component index) arrays."""

    failure_machine: np.ndarray
    failure_hour: np.ndarray
    failure_comp: np.ndarray
    maint_machine: np.ndarray
    maint_hour: np.ndarray
    maint_comp: np.ndarray


def generate_fleet(
    machines: int,
    days: int,
    seed: int,
    start: datetime = datetime(2015, 1, 1, 6),
    *,
    calibration: Calibration = REAL_CALIBRATION,
    sensor_offsets: Mapping[str, float] | None = None,
    precursor_probability: float | None = None,
    first_machine_id: int = 1,
) -> RawTables:
    """Simulate `machines` machines for `days` days from `start` as the five raw tables."""
    _check_arguments(machines, days, start, sensor_offsets, precursor_probability, first_machine_id)
    hours = days * HOURS_PER_DAY
    # One stream per part, so a scenario that changes one part leaves the others as they were.
    fleet_rng, event_rng, error_rng, telemetry_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(4)
    )
    fleet = simulate_machines(fleet_rng, machines, calibration, first_machine_id)
    probability = failure_probabilities(fleet, calibration)
    first_event = (calibration.event_hour - start.hour) % HOURS_PER_DAY
    events = _simulate_events(event_rng, probability, hours, first_event, calibration)
    warned = calibration.precursor_probability if precursor_probability is None else precursor_probability
    error_machine, error_hour, error_code = _simulate_errors(
        error_rng, events, machines, hours, calibration, warned
    )
    values = _simulate_telemetry(
        telemetry_rng, events, machines, hours, calibration, dict(sensor_offsets or {})
    )
    ids = fleet["machineID"].to_numpy()
    origin = pd.Timestamp(start)
    frames = {
        "telemetry": telemetry_frame(values, ids, origin, hours),
        "errors": event_frame(ids[error_machine], origin, error_hour, "errorID", ERROR_IDS, error_code),
        "maint": event_frame(
            ids[events.maint_machine], origin, events.maint_hour, "comp", COMPONENTS, events.maint_comp
        ),
        "failures": event_frame(
            ids[events.failure_machine],
            origin,
            events.failure_hour,
            "failure",
            COMPONENTS,
            events.failure_comp,
        ),
        "machines": fleet,
    }
    location = fleet_location(machines, days, seed, start, sensor_offsets, precursor_probability, first_machine_id)
    records = {name: table_record(name, frame, location) for name, frame in frames.items()}
    return RawTables(**frames, source="synthetic", records=records)


def _check_arguments(
    machines: int,
    days: int,
    start: datetime,
    sensor_offsets: Mapping[str, float] | None,
    precursor_probability: float | None,
    first_machine_id: int,
) -> None:
    """Raise ValueError for arguments the generator cannot honour."""
    if machines < 1 or days < 1 or first_machine_id < 1:
        raise ValueError(
            f"machines={machines}, days={days}, first_machine_id={first_machine_id}: all must be at least 1"
        )
    if (start.minute, start.second, start.microsecond) != (0, 0, 0):
        raise ValueError(f"start={start} must be on the hour: telemetry is hourly")
    unknown = set(sensor_offsets or {}) - set(SENSORS)
    if unknown:
        raise ValueError(f"sensor_offsets has unknown sensors {sorted(unknown)}; use some of {SENSORS}")
    if precursor_probability is not None and not 0.0 <= precursor_probability <= 1.0:
        raise ValueError(f"precursor_probability={precursor_probability} must be within [0, 1]")


def simulate_machines(
    rng: np.random.Generator, machines: int, calibration: Calibration, first_machine_id: int = 1
) -> pd.DataFrame:
    """The machines table: models in the calibrated shares (rounded to whole machines), random ages."""
    shares = np.array([calibration.model_shares.get(model, 0.0) for model in MACHINE_MODELS])
    quota = shares / shares.sum() * machines
    counts = np.floor(quota).astype(np.int64)
    # Largest remainders get the machines left over, so 100 machines reproduce the shares exactly.
    counts[np.argsort(counts - quota, kind="stable")[: machines - counts.sum()]] += 1
    models = rng.permutation(np.repeat(np.array(MACHINE_MODELS, dtype=object), counts))
    ages = np.asarray(calibration.age_probabilities, dtype=np.float64)
    age = rng.choice(len(ages), size=machines, p=ages / ages.sum())
    return pd.DataFrame(
        {
            "machineID": np.arange(first_machine_id, first_machine_id + machines, dtype=np.int64),
            "model": pd.Series(models, dtype="str"),
            "age": age.astype(np.int64),
        }
    )


def failure_probabilities(fleet: pd.DataFrame, calibration: Calibration) -> np.ndarray:
    """Chance that an eligible replaced component had failed: a row per machine, a column per component."""
    models = fleet["model"].to_numpy()
    ages = fleet["age"].to_numpy()
    columns = []
    for comp in COMPONENTS:
        by_model = calibration.failure_probability[comp]
        base = np.array([by_model.get(model, 0.0) for model in models], dtype=np.float64)
        young = ages < calibration.age_threshold[comp]
        columns.append(np.minimum(1.0, np.where(young, base * calibration.young_factor[comp], base)))
    return np.column_stack(columns)


def _simulate_events(
    rng: np.random.Generator, probability: np.ndarray, hours: int, first_event: int, calibration: Calibration
) -> _Events:
    """Inspections every interval from a random phase: replacements, failures among them, log-start ones."""
    machines = probability.shape[0]
    interval = calibration.inspection_interval_days * HOURS_PER_DAY
    days = np.asarray(rng.integers(0, calibration.inspection_interval_days, size=machines))
    phase = first_event + days * HOURS_PER_DAY
    last = _history(rng, phase, interval, calibration.history_days * HOURS_PER_DAY)
    min_hours = np.array([calibration.min_days_to_failure[c] * HOURS_PER_DAY for c in COMPONENTS])
    weights = np.asarray(calibration.service_weights, dtype=np.float64)
    counts = np.asarray(calibration.service_count_probabilities, dtype=np.float64)
    fails: list[tuple[np.ndarray, np.ndarray]] = []
    maints: list[tuple[np.ndarray, np.ndarray]] = [(np.ones(last.shape, dtype=bool), last)]
    for step in range(math.ceil(hours / interval) + 1):
        now = phase + step * interval
        active = now < hours
        since = np.clip((now[:, None] - last) // interval, 1, len(weights))
        count = np.where(active, rng.choice(len(counts), size=machines, p=counts / counts.sum()), 0)
        replaced = _pick(rng, weights[since - 1], count)
        eligible = now[:, None] - last >= min_hours
        failed = replaced & eligible & (rng.random(replaced.shape) < probability)
        when = np.broadcast_to(now[:, None], replaced.shape)
        fails.append((failed, when))
        maints.append((replaced, when))
        last = np.where(replaced, now[:, None], last)
    fails.append(_log_start_failures(rng, probability, hours, calibration))
    return _Events(*_stack(fails), *_stack(maints))


def _history(rng: np.random.Generator, phase: np.ndarray, interval: int, history_hours: int) -> np.ndarray:
    """Each component's last replacement: an inspection drawn uniformly within the history before start."""
    inspections = (phase + history_hours) // interval
    if (inspections < 1).any():
        raise ValueError(f"history of {history_hours} h holds no inspection every {interval} h; lengthen it")
    back = rng.integers(1, inspections[:, None] + 1, size=(len(phase), len(COMPONENTS)))
    result: np.ndarray = phase[:, None] - back * interval
    return result


def _pick(rng: np.random.Generator, weights: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Choose `counts` components per machine by weight, without replacement."""
    # Efraimidis-Spirakis: the smallest Exp(1) / weight keys are a weighted sample without replacement.
    keys = np.where(weights > 0, rng.exponential(size=weights.shape) / np.maximum(weights, 1e-12), np.inf)
    rank = keys.argsort(axis=1).argsort(axis=1)
    picked: np.ndarray = (rank < counts[:, None]) & np.isfinite(keys)
    return picked


def _log_start_failures(
    rng: np.random.Generator, probability: np.ndarray, hours: int, calibration: Calibration
) -> tuple[np.ndarray, np.ndarray]:
    """Failures a few hours into the log, split over components in proportion to their failure chances."""
    total = probability.sum(axis=1, keepdims=True)
    share = np.divide(probability, total, out=np.zeros_like(probability), where=total > 0)
    failed = rng.random(probability.shape) < calibration.log_start_failures_per_machine * share
    failed &= calibration.log_start_offset_hours < hours
    return failed, np.full(probability.shape, calibration.log_start_offset_hours)


def _stack(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(machine, hour, component) arrays of every True cell in a list of (mask, hour) matrices."""
    machine, hour, comp = [], [], []
    for mask, when in parts:
        rows, cols = np.nonzero(mask)
        machine.append(rows)
        hour.append(when[rows, cols].astype(np.int64))
        comp.append(cols)
    return np.concatenate(machine), np.concatenate(hour), np.concatenate(comp)


def _simulate_errors(
    rng: np.random.Generator,
    events: _Events,
    machines: int,
    hours: int,
    calibration: Calibration,
    probability: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Background errors at uniform hours plus each failure's precursor errors, without duplicates."""
    rates = np.array([calibration.background_error_rate.get(e, 0.0) for e in ERROR_IDS])
    counts = rng.poisson(rates * hours / HOURS_PER_DAY, size=(machines, len(ERROR_IDS)))
    cells = np.repeat(np.arange(counts.size), counts.ravel())
    machine = [cells // len(ERROR_IDS)]
    code = [cells % len(ERROR_IDS)]
    hour = [rng.integers(0, hours, len(cells))]
    warned = rng.random(len(events.failure_hour)) < probability
    precursor_hour = events.failure_hour - calibration.precursor_lead_hours
    for comp_index, comp in enumerate(COMPONENTS):
        keep = warned & (events.failure_comp == comp_index) & (precursor_hour >= 0)
        for error in calibration.precursor_errors.get(comp, ()):
            machine.append(events.failure_machine[keep])
            code.append(np.full(keep.sum(), ERROR_IDS.index(error)))
            hour.append(precursor_hour[keep])
    keys = pd.DataFrame({"m": np.concatenate(machine), "h": np.concatenate(hour), "c": np.concatenate(code)})
    unique = keys.drop_duplicates()
    return unique["m"].to_numpy(), unique["h"].to_numpy(), unique["c"].to_numpy()


def _simulate_telemetry(
    rng: np.random.Generator,
    events: _Events,
    machines: int,
    hours: int,
    calibration: Calibration,
    offsets: dict[str, float],
) -> dict[str, np.ndarray]:
    """Hourly iid normal readings per sensor, stepped in drift windows before failures and at random."""
    values = {}
    for sensor in SENSORS:
        comps = [i for i, c in enumerate(COMPONENTS) if calibration.drift_sensor.get(c) == sensor]
        before_failure = np.isin(events.failure_comp, comps)
        expected = rng.poisson(calibration.anomaly_rate.get(sensor, 0.0) * hours / HOURS_PER_DAY, machines)
        window_machine = np.concatenate(
            [events.failure_machine[before_failure], np.repeat(np.arange(machines), expected)]
        )
        window_end = np.concatenate(
            [events.failure_hour[before_failure], rng.integers(0, hours, expected.sum())]
        )
        mask = window_mask(window_machine, window_end, (machines, hours), calibration.drift_hours).ravel()
        std = calibration.baseline_std[sensor]
        reading = rng.standard_normal(machines * hours)
        reading *= std
        reading += calibration.baseline_mean[sensor] + offsets.get(sensor, 0.0)
        if comps:
            reading[mask] += calibration.drift_sigma[COMPONENTS[comps[0]]] * std
        values[sensor] = reading
    return values


def window_mask(machine: np.ndarray, end: np.ndarray, shape: tuple[int, int], length: int) -> np.ndarray:
    """A machines x hours mask of the hours [end - length, end] of each window, clipped to the range."""
    mask = np.zeros(shape, dtype=bool)
    hour = end[:, None] + np.arange(-length, 1)
    inside = (hour >= 0) & (hour < shape[1])
    rows = np.broadcast_to(machine[:, None], hour.shape)
    mask[rows[inside], hour[inside]] = True
    return mask

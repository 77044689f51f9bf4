"""A synthetic fleet with the five tables of the Azure PdM dataset, calibrated on the real data."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from pdm_assets.lib.data.tables import COMPONENTS, ERROR_IDS, MACHINE_MODELS, SENSORS, FileRecord, RawTables

HOURS_PER_DAY = 24


@dataclass(frozen=True)
class Calibration:
    """Measured statistics of the real fleet that the generator reproduces."""

    # Machines: share of each model, probability of each age in years (index = age).
    model_shares: Mapping[str, float]
    age_probabilities: tuple[float, ...]
    # Telemetry outside drift windows: iid normal readings per sensor.
    baseline_mean: Mapping[str, float]
    baseline_std: Mapping[str, float]
    # Before a failure its component's sensor steps by `drift_sigma` baseline stds over [T - drift_hours, T].
    drift_sensor: Mapping[str, str]
    drift_sigma: Mapping[str, float]
    drift_hours: int
    # The same step appears without any failure at this rate per machine-day and sensor.
    anomaly_rate: Mapping[str, float]
    # Errors: the component's error types `precursor_lead_hours` before a failure, plus Poisson background.
    precursor_errors: Mapping[str, tuple[str, ...]]
    precursor_lead_hours: int
    precursor_probability: float
    background_error_rate: Mapping[str, float]
    # Maintenance: an inspection every `inspection_interval_days` at `event_hour`, with a random phase,
    # replaces 0, 1, 2... components with `service_count_probabilities`, drawn with `service_weights` by
    # inspections since each one's last replacement (entry k - 1 for k, the last entry for k and more).
    inspection_interval_days: int
    event_hour: int
    history_days: int
    service_count_probabilities: tuple[float, ...]
    service_weights: tuple[float, ...]
    # A replaced component is found failed with `failure_probability` once `min_days_to_failure` have
    # passed since its last replacement, times `young_factor` for machines younger than `age_threshold`.
    failure_probability: Mapping[str, Mapping[str, float]]
    young_factor: Mapping[str, float]
    age_threshold: Mapping[str, int]
    min_days_to_failure: Mapping[str, int]
    # The real log starts with failures a few hours in, with no error before and no replacement after.
    log_start_failures_per_machine: float
    log_start_offset_hours: int


# Measured on /work/shared/data/azure-pdm by `python -m pdm_assets.lib.synthetic.calibrate` (docs/calibration.json).
REAL_CALIBRATION = Calibration(
    model_shares={"model1": 0.16, "model2": 0.17, "model3": 0.35, "model4": 0.32},
    age_probabilities=(
        0.01,
        0.03,
        0.06,
        0.04,
        0.03,
        0.04,
        0.04,
        0.06,
        0.01,
        0.05,
        0.1,
        0.02,
        0.02,
        0.0,
        0.14,
        0.06,
        0.05,
        0.07,
        0.06,
        0.04,
        0.07,
    ),
    baseline_mean={"volt": 170.1, "rotate": 450.4, "pressure": 99.98, "vibration": 40.03},
    baseline_std={"volt": 15.03, "rotate": 50.12, "pressure": 9.963, "vibration": 4.997},
    drift_sensor={"comp1": "volt", "comp2": "rotate", "comp3": "pressure", "comp4": "vibration"},
    drift_sigma={"comp1": 1.257, "comp2": -1.589, "comp3": 2.553, "comp4": 1.874},
    drift_hours=48,
    anomaly_rate={"volt": 0.01579, "rotate": 0.01812, "pressure": 0.008944, "vibration": 0.0101},
    precursor_errors={
        "comp1": ("error1",),
        "comp2": ("error2", "error3"),
        "comp3": ("error4",),
        "comp4": ("error5",),
    },
    precursor_lead_hours=24,
    precursor_probability=1.0,
    background_error_rate={
        "error1": 0.02266,
        "error2": 0.02005,
        "error3": 0.01595,
        "error4": 0.01641,
        "error5": 0.004932,
    },
    inspection_interval_days=15,
    event_hour=6,
    history_days=214,
    service_count_probabilities=(0.114, 0.5889, 0.2971),
    service_weights=(0.3158, 0.2893, 0.2907, 0.2937, 0.3052, 0.2828, 0.3182, 0.3236),
    failure_probability={
        "comp1": {"model1": 0.4762, "model2": 0.4462, "model3": 0.4961, "model4": 0.5085},
        "comp2": {"model1": 0.5556, "model2": 0.4598, "model3": 0.4706, "model4": 0.539},
        "comp3": {"model1": 1.0, "model2": 1.0, "model3": 0.0, "model4": 0.0},
        "comp4": {"model1": 0.9762, "model2": 1.0, "model3": 1.0, "model4": 0.9744},
    },
    young_factor={"comp1": 1.0, "comp2": 1.0, "comp3": 1.0, "comp4": 0.0},
    age_threshold={"comp1": 0, "comp2": 0, "comp3": 0, "comp4": 14},
    min_days_to_failure={"comp1": 45, "comp2": 30, "comp3": 45, "comp4": 45},
    log_start_failures_per_machine=0.18,
    log_start_offset_hours=21,
)


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
        "telemetry": _telemetry_frame(values, ids, origin, hours),
        "errors": _event_frame(ids[error_machine], origin, error_hour, "errorID", ERROR_IDS, error_code),
        "maint": _event_frame(
            ids[events.maint_machine], origin, events.maint_hour, "comp", COMPONENTS, events.maint_comp
        ),
        "failures": _event_frame(
            ids[events.failure_machine],
            origin,
            events.failure_hour,
            "failure",
            COMPONENTS,
            events.failure_comp,
        ),
        "machines": fleet,
    }
    location = _location(machines, days, seed, start, sensor_offsets, precursor_probability, first_machine_id)
    records = {name: _record(name, frame, location) for name, frame in frames.items()}
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


def _telemetry_frame(
    values: dict[str, np.ndarray], ids: np.ndarray, origin: pd.Timestamp, hours: int
) -> pd.DataFrame:
    """The telemetry table, machine by machine, hour by hour."""
    stamps = origin.to_datetime64().astype("datetime64[ns]") + np.arange(hours) * np.timedelta64(1, "h")
    frame = pd.DataFrame(
        {"datetime": np.tile(stamps, len(ids)), "machineID": np.repeat(ids, hours), **values}
    )
    return frame.astype({"datetime": "datetime64[ns]"})


def _event_frame(
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


def _location(
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


def _record(name: str, frame: pd.DataFrame, location: str) -> FileRecord:
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

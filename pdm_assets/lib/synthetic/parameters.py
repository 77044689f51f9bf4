"""The fleet simulator's parameters (`Calibration`) and their values measured on the real fleet.

`python -m pdm_assets.lib.synthetic.calibrate` measures them; `simulate.generate_fleet` reproduces them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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

"""Calibrate the fleet simulator: measure on the five real tables every statistic `generate_fleet` reproduces.

Run `python -m pdm_assets.lib.synthetic.calibrate --data-dir DIR [--out docs/calibration.json]`; the numbers in
`parameters.REAL_CALIBRATION` are its output on the real dataset. The measurements themselves are in the
`measure_*` modules beside this one.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd

from pdm_assets.lib.data.tables import COMPONENTS, ERROR_IDS, SENSORS, RawTables
from pdm_assets.lib.synthetic.measure_common import (
    as_times,
    in_days,
    keyed,
    observation_window,
    rounded,
    window_days,
    within,
)
from pdm_assets.lib.synthetic.measure_errors import (
    background_error_rates,
    precursor_errors,
    precursor_lead_hours,
    precursor_share,
)
from pdm_assets.lib.synthetic.measure_fleet import (
    age_probabilities,
    eligible_replacements,
    failure_counts,
    failure_probabilities,
    log_start_failures,
    min_days_to_failure,
    model_shares,
    regular_failures,
)
from pdm_assets.lib.synthetic.measure_maintenance import (
    event_hour,
    history_days,
    inspection_interval_days,
    replacement_intervals,
    service_count_probabilities,
    service_weights,
)
from pdm_assets.lib.synthetic.measure_telemetry import (
    autocorrelation,
    drift_by_component,
    drift_onset_hours,
    drift_signature,
    telemetry_baseline,
    telemetry_grid,
)
from pdm_assets.lib.synthetic.parameters import Calibration


def calibrate(tables: RawTables) -> Calibration:
    """Measure every statistic the generator needs on the five tables."""
    window = observation_window(tables)
    machines = tables.machines
    machine_ids = machines["machineID"].to_numpy()
    machine_days = len(machines) * window_days(window)
    hour = event_hour(tables.maint)
    interval = inspection_interval_days(tables.maint)
    regular = regular_failures(within(tables.failures, window), hour)

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
        within(tables.failures, window), hour, window[0], len(machines)
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
    years = len(tables.machines) * window_days(window) / 365
    grid = telemetry_grid(tables.telemetry)
    drift = drift_by_component(grid, tables.failures)
    replaced = _replacements(within(tables.maint, window), tables.failures)
    scheduled_gaps = _scheduled_intervals(tables.maint, tables.failures)
    failures = within(tables.failures, window)
    lead = precursor_lead_hours(tables.errors, tables.failures)
    mapping = precursor_errors(tables.errors, tables.failures, lead)
    components = pd.DataFrame({"m": failures["machineID"], "t": as_times(failures)}).groupby(["m", "t"]).size()
    return {
        "window": [window[0].isoformat(), window[1].isoformat()],
        "machines": len(tables.machines),
        "telemetry_machines": len(grid.machine_ids),
        "telemetry_hours": int(grid.values[SENSORS[0]].shape[1]),
        "telemetry_mean": {s: rounded(float(tables.telemetry[s].mean())) for s in SENSORS},
        "telemetry_std": {s: rounded(float(tables.telemetry[s].std())) for s in SENSORS},
        "autocorrelation_lag1": autocorrelation(grid, 1),
        "autocorrelation_lag24": autocorrelation(grid, 24),
        "drift_sigma": {str(c): {s: rounded(float(drift.loc[c, s])) for s in SENSORS} for c in drift.index},
        "drift_failures": {str(c): int(n) for c, n in drift["failures"].items()},
        "precursor_share": precursor_share(tables.errors, failures, mapping, lead),
        "failures_per_machine_year": {
            c: rounded(float((failures["failure"].astype(str) == c).sum() / years)) for c in COMPONENTS
        },
        "failure_hours": {
            str(h): int(n) for h, n in as_times(failures).dt.hour.value_counts().sort_index().items()
        },
        "multi_component_failure_times": int((components > 1).sum()),
        "multi_component_failure_share": rounded(float((components > 1).mean())),
        "errors_per_machine_year": {
            e: rounded(float((within(tables.errors, window)["errorID"].astype(str) == e).sum() / years))
            for e in ERROR_IDS
        },
        "scheduled_replacements_per_machine_year": rounded(float((~replaced["at_failure"]).sum() / years)),
        "failures_without_replacement": int(len(failures) - replaced["at_failure"].sum()),
        "scheduled_interval_days": {
            "median": rounded(float(scheduled_gaps.median())),
            "mean": rounded(float(scheduled_gaps.mean())),
        },
        "age_mean": rounded(float(tables.machines["age"].mean())),
    }


def _replacements(maint: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Replacements with `at_failure` telling whether the component failed at that time."""
    frame = keyed(maint, "comp")
    failed = keyed(failures, "failure").drop_duplicates()
    failed["at_failure"] = True
    frame = frame.merge(failed, on=["machineID", "datetime", "comp"], how="left")
    frame["at_failure"] = frame["at_failure"].fillna(False).astype(bool)
    return frame


def _scheduled_intervals(maint: pd.DataFrame, failures: pd.DataFrame) -> pd.Series:
    """Days from each replacement not at a failure back to the previous replacement of that component."""
    replaced = _replacements(maint, failures).sort_values(["machineID", "comp", "datetime"])
    gaps = in_days(replaced.groupby(["machineID", "comp"])["datetime"].diff())
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

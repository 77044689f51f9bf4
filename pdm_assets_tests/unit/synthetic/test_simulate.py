"""The synthetic fleet reproduces the statistics measured on the real data, within stated tolerances."""

from __future__ import annotations

import io
import json
import time
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.tables import COLUMNS, COMPONENTS, SENSORS, TABLE_NAMES, RawTables
from pdm_assets.lib.synthetic.calibrate import calibrate, summarize
from pdm_assets.lib.synthetic.parameters import REAL_CALIBRATION, Calibration
from pdm_assets.lib.synthetic.simulate import generate_fleet
from pdm_assets_tests.support.paths import ROOT

MACHINES, DAYS, SEED = 100, 365, 7
START = datetime(2015, 1, 1, 6)
END = pd.Timestamp(START) + pd.Timedelta(days=DAYS)
# The real data's descriptive statistics, written by `python -m pdm_assets.lib.synthetic.calibrate`.
REAL = json.loads((ROOT / "docs/calibration.json").read_text())["summary"]
CSV_STRING_DTYPE = pd.read_csv(io.StringIO("a\nx\n"))["a"].dtype


@pytest.fixture(scope="module")
def fleet() -> RawTables:
    return generate_fleet(MACHINES, DAYS, SEED)


@pytest.fixture(scope="module")
def measured(fleet: RawTables) -> Calibration:
    return calibrate(fleet)


@pytest.fixture(scope="module")
def summary(fleet: RawTables) -> dict[str, Any]:
    return summarize(fleet)


@pytest.fixture(scope="module")
def small() -> RawTables:
    return generate_fleet(20, 30, seed=1)


def test_tables_have_the_original_columns_and_typed_dtypes(fleet: RawTables) -> None:
    for name in TABLE_NAMES:
        assert tuple(fleet.table(name).columns) == COLUMNS[name]
    for name, code in (("errors", "errorID"), ("maint", "comp"), ("failures", "failure")):
        frame = fleet.table(name)
        assert frame["datetime"].dtype == "datetime64[ns]"
        assert frame["machineID"].dtype == "int64"
        assert frame[code].dtype == CSV_STRING_DTYPE
    assert fleet.telemetry["datetime"].dtype == "datetime64[ns]"
    assert (fleet.telemetry[list(SENSORS)].dtypes == "float64").all()
    assert fleet.machines.dtypes.to_dict() == {
        "machineID": "int64",
        "model": CSV_STRING_DTYPE,
        "age": "int64",
    }
    assert fleet.source == "synthetic"


def test_telemetry_is_hourly_without_gaps_or_duplicates(fleet: RawTables) -> None:
    telemetry = fleet.telemetry
    assert len(telemetry) == MACHINES * DAYS * 24
    assert not telemetry.duplicated(["machineID", "datetime"]).any()
    steps = telemetry.groupby("machineID")["datetime"].diff().dropna()
    assert (steps == pd.Timedelta(hours=1)).all()
    assert telemetry["datetime"].min() == pd.Timestamp(START)
    assert telemetry["datetime"].max() == END - pd.Timedelta(hours=1)


def test_events_are_at_whole_hours_within_the_range(fleet: RawTables) -> None:
    for name in ("errors", "failures"):
        times = fleet.table(name)["datetime"]
        assert ((times >= pd.Timestamp(START)) & (times < END)).all()
        assert (times == times.dt.floor("h")).all()
    maint = fleet.maint
    assert (maint["datetime"] < END).all()
    assert (maint["datetime"].dt.hour == REAL_CALIBRATION.event_hour).all()
    # Every component of every machine has a replacement before the start.
    before = maint[maint["datetime"] < pd.Timestamp(START)]
    assert len(before.drop_duplicates(["machineID", "comp"])) == MACHINES * len(COMPONENTS)
    assert set(fleet.failures["machineID"]) <= set(fleet.machines["machineID"])


def test_telemetry_mean_and_std_match_the_real_data(fleet: RawTables, measured: Calibration) -> None:
    for sensor in SENSORS:
        real_mean, real_std = REAL["telemetry_mean"][sensor], REAL["telemetry_std"][sensor]
        # Overall: mean within 0.05 real std, std within 3 %.
        assert fleet.telemetry[sensor].mean() == pytest.approx(real_mean, abs=0.05 * real_std)
        assert fleet.telemetry[sensor].std() == pytest.approx(real_std, rel=0.03)
        # Outside drift windows, as the calibration measures it.
        assert measured.baseline_mean[sensor] == pytest.approx(
            REAL_CALIBRATION.baseline_mean[sensor], abs=0.02 * real_std
        )
        assert measured.baseline_std[sensor] == pytest.approx(REAL_CALIBRATION.baseline_std[sensor], rel=0.02)


def test_hourly_autocorrelation_matches_the_real_data(summary: dict[str, Any]) -> None:
    for lag in ("autocorrelation_lag1", "autocorrelation_lag24"):
        for sensor in SENSORS:
            assert summary[lag][sensor] == pytest.approx(REAL[lag][sensor], abs=0.03)


def test_pre_failure_drift_has_the_calibrated_sign_size_and_onset(measured: Calibration) -> None:
    assert measured.drift_sensor == REAL_CALIBRATION.drift_sensor
    for comp, sigma in REAL_CALIBRATION.drift_sigma.items():
        assert np.sign(measured.drift_sigma[comp]) == np.sign(sigma)
        assert measured.drift_sigma[comp] == pytest.approx(sigma, abs=0.5)
    assert abs(measured.drift_hours - REAL_CALIBRATION.drift_hours) <= 2


def test_drift_windows_without_failure_occur_at_the_calibrated_rate(measured: Calibration) -> None:
    for sensor, rate in REAL_CALIBRATION.anomaly_rate.items():
        assert measured.anomaly_rate[sensor] == pytest.approx(rate, rel=0.3)


def test_precursor_errors_precede_failures_at_the_real_share(
    measured: Calibration, summary: dict[str, Any]
) -> None:
    assert measured.precursor_errors == REAL_CALIBRATION.precursor_errors
    assert measured.precursor_lead_hours == REAL_CALIBRATION.precursor_lead_hours
    assert measured.precursor_probability == pytest.approx(REAL_CALIBRATION.precursor_probability, abs=0.05)
    assert summary["precursor_share"] == pytest.approx(REAL["precursor_share"], abs=0.05)


def test_background_errors_occur_at_the_calibrated_rate(measured: Calibration) -> None:
    for error, rate in REAL_CALIBRATION.background_error_rate.items():
        assert measured.background_error_rate[error] == pytest.approx(rate, rel=0.2)


def test_failures_per_machine_year_match_the_real_data(summary: dict[str, Any]) -> None:
    for comp in COMPONENTS:
        assert summary["failures_per_machine_year"][comp] == pytest.approx(
            REAL["failures_per_machine_year"][comp], rel=0.25
        )
    total = sum(summary["failures_per_machine_year"].values())
    assert total == pytest.approx(sum(REAL["failures_per_machine_year"].values()), rel=0.1)


def test_failures_depend_on_model_and_age_as_in_the_real_data(measured: Calibration) -> None:
    # A fleet without machines of the ages in between fits thresholds a year or two apart equally well.
    for comp, threshold in REAL_CALIBRATION.age_threshold.items():
        assert abs(measured.age_threshold[comp] - threshold) <= 2
    assert measured.young_factor["comp4"] == 0.0
    assert measured.failure_probability["comp3"]["model3"] == 0.0
    for comp in COMPONENTS:
        for model, probability in REAL_CALIBRATION.failure_probability[comp].items():
            assert measured.failure_probability[comp][model] == pytest.approx(probability, abs=0.15)
    assert measured.min_days_to_failure == REAL_CALIBRATION.min_days_to_failure


def test_multi_component_failures_have_the_real_share(summary: dict[str, Any]) -> None:
    assert summary["multi_component_failure_share"] == pytest.approx(
        REAL["multi_component_failure_share"], abs=0.03
    )


def test_failures_happen_at_the_replacement_hour_or_at_log_start(fleet: RawTables) -> None:
    hours = set(fleet.failures["datetime"].dt.hour)
    log_start = (pd.Timestamp(START) + pd.Timedelta(hours=REAL_CALIBRATION.log_start_offset_hours)).hour
    assert hours == {REAL_CALIBRATION.event_hour, log_start}


def test_every_regular_failure_has_a_replacement_at_the_same_time(fleet: RawTables) -> None:
    failures = fleet.failures.rename(columns={"failure": "comp"})
    matched = failures.merge(fleet.maint, on=["datetime", "machineID", "comp"], how="left", indicator=True)
    regular = matched["datetime"].dt.hour == REAL_CALIBRATION.event_hour
    assert (matched.loc[regular, "_merge"] == "both").all()
    # Like the real log-start failures, the others have none.
    assert (matched.loc[~regular, "_merge"] == "left_only").all()


def test_maintenance_follows_the_calibrated_schedule(measured: Calibration, summary: dict[str, Any]) -> None:
    assert measured.inspection_interval_days == REAL_CALIBRATION.inspection_interval_days
    assert measured.service_count_probabilities == pytest.approx(
        REAL_CALIBRATION.service_count_probabilities, abs=0.05
    )
    assert measured.service_weights == pytest.approx(REAL_CALIBRATION.service_weights, abs=0.08)
    assert summary["scheduled_interval_days"]["median"] == REAL["scheduled_interval_days"]["median"]
    assert summary["scheduled_interval_days"]["mean"] == pytest.approx(
        REAL["scheduled_interval_days"]["mean"], rel=0.15
    )
    assert summary["scheduled_replacements_per_machine_year"] == pytest.approx(
        REAL["scheduled_replacements_per_machine_year"], rel=0.1
    )


def test_machines_have_the_real_model_shares_and_ages(fleet: RawTables, measured: Calibration) -> None:
    assert measured.model_shares == REAL_CALIBRATION.model_shares
    assert fleet.machines["age"].between(0, len(REAL_CALIBRATION.age_probabilities) - 1).all()
    assert fleet.machines["age"].mean() == pytest.approx(REAL["age_mean"], abs=1.5)
    assert fleet.machines["machineID"].tolist() == list(range(1, MACHINES + 1))


def test_generation_is_deterministic_for_a_seed(small: RawTables) -> None:
    again = generate_fleet(20, 30, seed=1)
    for name in TABLE_NAMES:
        pd.testing.assert_frame_equal(small.table(name), again.table(name))
    assert small.records == again.records
    other = generate_fleet(20, 30, seed=2)
    assert not small.telemetry.equals(other.telemetry)
    assert not small.failures.equals(other.failures)
    assert small.records["telemetry"].sha256 != other.records["telemetry"].sha256


def test_records_describe_each_table(small: RawTables) -> None:
    assert set(small.records) == set(TABLE_NAMES)
    telemetry = small.records["telemetry"]
    assert telemetry.location == "synthetic://machines=20,days=30,seed=1"
    assert telemetry.rows == 20 * 30 * 24
    assert len(telemetry.sha256) == 64
    assert (telemetry.start, telemetry.end) == ("2015-01-01T06:00:00", "2015-01-31T05:00:00")
    assert small.records["machines"].start is None


def test_sensor_offsets_shift_only_that_sensor(small: RawTables) -> None:
    drifted = generate_fleet(20, 30, seed=1, sensor_offsets={"volt": 15.0})
    shift = drifted.telemetry["volt"] - small.telemetry["volt"]
    assert np.allclose(shift, 15.0)
    pd.testing.assert_frame_equal(
        drifted.telemetry[["rotate", "pressure"]], small.telemetry[["rotate", "pressure"]]
    )
    pd.testing.assert_frame_equal(drifted.failures, small.failures)
    assert "sensor_offsets=volt:15.0" in drifted.records["telemetry"].location


def test_precursor_probability_changes_only_the_errors(fleet: RawTables) -> None:
    silent = generate_fleet(MACHINES, DAYS, SEED, precursor_probability=0.0)
    half = generate_fleet(MACHINES, DAYS, SEED, precursor_probability=0.5)
    pd.testing.assert_frame_equal(silent.failures, fleet.failures)
    pd.testing.assert_frame_equal(silent.telemetry.head(1000), fleet.telemetry.head(1000))
    lead = REAL_CALIBRATION.precursor_lead_hours
    mapping = REAL_CALIBRATION.precursor_errors
    assert calibrate_share(silent, lead, mapping) == pytest.approx(0.0, abs=0.05)
    assert calibrate_share(half, lead, mapping) == pytest.approx(0.5, abs=0.05)


def calibrate_share(tables: RawTables, lead: int, mapping: Any) -> float:
    """Precursor share among failures whose precursor time lies inside the simulated range."""
    from pdm_assets.lib.synthetic.measure_errors import precursor_share

    return precursor_share(tables.errors, tables.failures, mapping, lead, since=pd.Timestamp(START))


def test_other_starts_and_machine_ids() -> None:
    tables = generate_fleet(3, 2, seed=0, start=datetime(2016, 3, 1, 0), first_machine_id=101)
    assert tables.machines["machineID"].tolist() == [101, 102, 103]
    assert tables.telemetry["datetime"].min() == pd.Timestamp("2016-03-01 00:00")
    assert (tables.maint["datetime"].dt.hour == REAL_CALIBRATION.event_hour).all()
    assert "start=2016-03-01T00:00:00" in tables.records["telemetry"].location


@pytest.mark.parametrize(
    "arguments",
    [
        {"machines": 0},
        {"days": 0},
        {"start": datetime(2015, 1, 1, 6, 30)},
        {"sensor_offsets": {"speed": 1.0}},
        {"precursor_probability": 1.5},
    ],
)
def test_arguments_it_cannot_honour_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        generate_fleet(**({"machines": 2, "days": 2, "seed": 0} | arguments))


def test_a_fleet_year_takes_seconds() -> None:
    began = time.perf_counter()
    generate_fleet(MACHINES, DAYS, seed=11)
    assert time.perf_counter() - began < 10.0

"""Calibration measurements on frames small enough to check by hand, and on the real data."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.synthetic.calibrate import calibration_report
from pdm_assets.lib.synthetic.measure_errors import background_error_rates, precursor_lead_hours, precursor_share
from pdm_assets.lib.synthetic.measure_fleet import (
    age_probabilities,
    eligible_replacements,
    failure_probabilities,
    min_days_to_failure,
    model_shares,
)
from pdm_assets.lib.synthetic.measure_maintenance import (
    replacement_intervals,
    service_count_probabilities,
    service_weights,
)
from pdm_assets.lib.synthetic.measure_telemetry import (
    anomaly_windows,
    drift_by_component,
    drift_signature,
    step_onset,
    telemetry_grid,
)
from pdm_assets.lib.synthetic.parameters import REAL_CALIBRATION
from pdm_assets_tests.support.capabilities import require
from pdm_assets_tests.support.paths import REAL_DATA_DIR, ROOT

DOCS_JSON = ROOT / "docs/calibration.json"
START = pd.Timestamp("2015-01-01 06:00")
MAPPING = {"comp1": ("error1",), "comp2": ("error2", "error3")}


def _events(rows: list[tuple[str, int, str]], column: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "datetime": pd.to_datetime([r[0] for r in rows]),
            "machineID": [r[1] for r in rows],
            column: [r[2] for r in rows],
        }
    )


def test_drift_is_window_mean_minus_reference_mean_over_reference_std() -> None:
    # Hours 1-3 are the reference (6 to 3 h before the failure at hour 7), hours 5-6 the window.
    volt = [0.0, 10.0, 12.0, 14.0, 0.0, 20.0, 22.0, 0.0]
    telemetry = pd.DataFrame(
        {
            "datetime": pd.date_range(START, periods=8, freq="h"),
            "machineID": 1,
            "volt": volt,
            "rotate": [0.0, 10.0, 12.0, 14.0, 0.0, 11.0, 13.0, 0.0],
            "pressure": [0.0, 1.0, 2.0, 3.0, 0.0, 2.0, 2.0, 0.0],
            "vibration": [0.0, 4.0, 5.0, 6.0, 0.0, 5.0, 5.0, 0.0],
        }
    )
    failures = _events([("2015-01-01 13:00", 1, "comp1")], "failure")
    drift = drift_by_component(telemetry_grid(telemetry), failures, window_hours=2, reference=(6, 3))
    # (21 - 12) / 2 for volt, (12 - 12) / 2 for rotate.
    assert drift.loc["comp1", "volt"] == pytest.approx(4.5)
    assert drift.loc["comp1", "rotate"] == pytest.approx(0.0)
    assert drift.loc["comp1", "failures"] == 1
    assert drift_signature(drift) == ({"comp1": "volt"}, {"comp1": 4.5})


def test_failures_without_complete_windows_are_left_out() -> None:
    telemetry = pd.DataFrame(
        {"datetime": pd.date_range(START, periods=4, freq="h"), "machineID": 1}
        | {s: [1.0, 2.0, 3.0, 4.0] for s in ("volt", "rotate", "pressure", "vibration")}
    )
    failures = _events([("2015-01-01 08:00", 1, "comp1")], "failure")
    drift = drift_by_component(telemetry_grid(telemetry), failures, window_hours=2, reference=(6, 3))
    assert drift.empty


def test_step_onset_counts_the_points_before_the_last_one() -> None:
    assert step_onset(np.array([0.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0])) == 2
    assert step_onset(np.array([0.1, -0.1, 0.0, 1.9, 2.1])) == 1


def test_anomaly_windows_find_one_step_in_a_flat_series() -> None:
    values = np.zeros((1, 30))
    values[0, 10:15] = 3.0
    rows, ends = anomaly_windows(values, sign=1.0, threshold=1.0, drift_hours=4)
    assert rows.tolist() == [0]
    assert ends.tolist() == [14]
    assert anomaly_windows(values, sign=-1.0, threshold=1.0, drift_hours=4)[1].tolist() == []


def test_precursor_share_on_a_two_failure_timeline() -> None:
    failures = _events([("2015-01-05 06:00", 1, "comp1"), ("2015-01-10 06:00", 1, "comp2")], "failure")
    # error1 24 h before the comp1 failure; error2 25 h before the comp2 failure does not count.
    errors = _events([("2015-01-04 06:00", 1, "error1"), ("2015-01-09 05:00", 1, "error2")], "errorID")
    assert precursor_share(errors, failures, MAPPING, lead=24) == 0.5
    assert precursor_share(errors, failures, MAPPING, lead=25) == 0.5
    # Only the comp2 failure has its precursor time after 2015-01-05.
    assert precursor_share(errors, failures, MAPPING, lead=24, since=pd.Timestamp("2015-01-05")) == 0.0


def test_precursor_lead_is_the_most_common_lag() -> None:
    failures = _events([("2015-01-05 06:00", 1, "comp1"), ("2015-01-10 06:00", 2, "comp1")], "failure")
    errors = _events(
        [
            ("2015-01-04 06:00", 1, "error1"),
            ("2015-01-09 06:00", 2, "error1"),
            ("2015-01-09 20:00", 2, "error4"),
        ],
        "errorID",
    )
    assert precursor_lead_hours(errors, failures) == 24


def test_background_error_rates_leave_out_precursors() -> None:
    failures = _events([("2015-01-05 06:00", 1, "comp1")], "failure")
    errors = _events(
        [
            ("2015-01-04 06:00", 1, "error1"),
            ("2015-01-02 10:00", 1, "error1"),
            ("2015-01-03 10:00", 1, "error2"),
        ],
        "errorID",
    )
    rates = background_error_rates(errors, failures, MAPPING, lead=24, machine_days=10.0)
    assert rates == {"error1": 0.1, "error2": 0.1, "error3": 0.0, "error4": 0.0, "error5": 0.0}


def test_service_count_probabilities_include_empty_inspections() -> None:
    maint = _events(
        [
            ("2015-01-01 06:00", 1, "comp1"),
            ("2015-01-01 06:00", 1, "comp2"),
            ("2015-01-16 06:00", 1, "comp3"),
        ],
        "comp",
    )
    window = (START, START + pd.Timedelta(days=45))
    # Three inspections in 45 days: one with two replacements, one with one, one with none.
    assert service_count_probabilities(maint, window, machines=1, interval_days=15) == pytest.approx(
        (1 / 3, 1 / 3, 1 / 3), abs=1e-4
    )


def test_service_weights_are_replacement_shares_by_inspections_since_the_last_one() -> None:
    maint = _events(
        [
            ("2015-01-01 06:00", 1, "comp1"),
            ("2015-01-16 06:00", 1, "comp1"),
            ("2015-02-15 06:00", 1, "comp1"),
        ],
        "comp",
    )
    window = (START, START + pd.Timedelta(days=60))
    intervals = replacement_intervals(maint, window, interval_days=15)
    # k=1: two components at risk, one replaced; k=2: one at risk, replaced; nothing at risk from k=3.
    assert service_weights(intervals, longest=3) == (0.5, 1.0, 0.0)


def test_min_days_and_eligible_replacements() -> None:
    maint = _events(
        [
            ("2015-01-01 06:00", 1, "comp1"),
            ("2015-01-16 06:00", 1, "comp1"),
            ("2015-03-02 06:00", 1, "comp1"),
        ],
        "comp",
    )
    failures = _events([("2015-03-02 06:00", 1, "comp1")], "failure")
    min_days = min_days_to_failure(maint, failures, interval_days=15)
    assert min_days == {"comp1": 45, "comp2": 15, "comp3": 15, "comp4": 15}
    window = (START, START + pd.Timedelta(days=90))
    # The first record counts, the one 15 days later does not, the one 45 days after that does.
    exposure = eligible_replacements(maint, window, min_days, 15, np.array([1]))
    assert exposure.tolist() == [[2, 0, 0, 0]]


def test_failure_probabilities_find_an_age_split() -> None:
    models = np.array(["model1"] * 4)
    ages = np.array([2, 3, 15, 16])
    failures = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 5], [1, 0, 0, 5]])
    exposure = np.full((4, 4), 10)
    probability, young, threshold = failure_probabilities(failures, exposure, models, ages)
    assert probability["comp1"]["model1"] == pytest.approx(0.1)
    assert (young["comp1"], threshold["comp1"]) == (1.0, 0)
    assert probability["comp4"]["model1"] == pytest.approx(0.5)
    assert (young["comp4"], threshold["comp4"]) == (0.0, 15)
    assert probability["comp2"] == {"model1": 0.0, "model2": 0.0, "model3": 0.0, "model4": 0.0}


def test_model_shares_and_age_probabilities() -> None:
    machines = pd.DataFrame(
        {"machineID": [1, 2, 3, 4], "model": ["model3", "model3", "model1", "model4"], "age": [0, 2, 2, 1]}
    )
    assert model_shares(machines) == {"model1": 0.25, "model2": 0.0, "model3": 0.5, "model4": 0.25}
    assert age_probabilities(machines) == (0.25, 0.25, 0.5)


@pytest.fixture(scope="module")
def real_report() -> dict[str, Any]:
    require("real_data", REAL_DATA_DIR.is_dir(), f"{REAL_DATA_DIR} is absent: the real Azure PdM files are not here")
    from pdm_assets.lib.data.sources import load_local

    return calibration_report(load_local(REAL_DATA_DIR))


@pytest.mark.real_data
def test_embedded_calibration_equals_the_measurement_on_real_data(real_report: dict[str, Any]) -> None:
    assert real_report["calibration"] == asdict(REAL_CALIBRATION)


@pytest.mark.real_data
def test_docs_calibration_json_is_the_script_output(real_report: dict[str, Any]) -> None:
    assert json.loads(DOCS_JSON.read_text()) == json.loads(json.dumps(real_report))


@pytest.mark.real_data
def test_real_data_shows_the_documented_statistics(real_report: dict[str, Any]) -> None:
    summary = real_report["summary"]
    assert summary["precursor_share"] == pytest.approx(743 / 761, abs=1e-3)
    assert summary["failure_hours"] == {"3": 18, "6": 743}
    assert summary["multi_component_failure_times"] == 42
    assert summary["telemetry_mean"]["volt"] == pytest.approx(171.0, abs=0.1)
    assert summary["age_mean"] == pytest.approx(11.33)

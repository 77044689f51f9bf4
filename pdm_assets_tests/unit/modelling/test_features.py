"""Features on frames small enough to check by hand, and the no-leak property."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.tables import SENSORS
from pdm_assets.lib.modelling.features import (
    FEATURE_COLUMNS,
    MIN_READINGS_24H,
    READINGS_COLUMN,
    build_features,
    grid_score_times,
)

T0 = pd.Timestamp("2015-01-01 00:00")


def telemetry(
    hours: int, machine: int = 1, volt: list[float] | None = None, missing: tuple[int, ...] = ()
) -> pd.DataFrame:
    """Hourly readings from T0; volt = hour index unless given; other sensors constant."""
    rows = [h for h in range(hours) if h not in missing]
    values = volt if volt is not None else [float(h) for h in range(hours)]
    return pd.DataFrame(
        {
            "datetime": [T0 + pd.Timedelta(hours=h) for h in rows],
            "machineID": machine,
            "volt": [values[h] for h in rows],
            "rotate": 400.0,
            "pressure": 100.0,
            "vibration": 40.0,
        }
    )


def events(rows: list[tuple[int, str]], column: str, machine: int = 1) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "datetime": [T0 + pd.Timedelta(hours=h) for h, _ in rows],
            "machineID": machine,
            column: [v for _, v in rows],
        }
    ).astype({"datetime": "datetime64[ns]"})


MACHINES = pd.DataFrame({"machineID": [1, 2], "model": ["model3", "model1"], "age": [18, 2]})
NO_ERRORS = events([], "errorID")
NO_MAINT = events([], "comp")


def at(hour: float, machine: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"machineID": [machine], "datetime": [T0 + pd.Timedelta(hours=hour)]})


def test_rolling_stats_use_the_window_ending_at_t() -> None:
    table = build_features(telemetry(30), NO_ERRORS, NO_MAINT, MACHINES, score_times=at(29))
    row = table.iloc[0]
    # 3 h window holds hours 27, 28, 29; 24 h window holds hours 6..29.
    assert row["volt_mean_3h"] == pytest.approx(28.0)
    assert row["volt_std_3h"] == pytest.approx(1.0)
    assert (row["volt_min_3h"], row["volt_max_3h"]) == (27.0, 29.0)
    assert row["volt_mean_24h"] == pytest.approx(17.5)
    assert row["volt_std_24h"] == pytest.approx(np.std(np.arange(6, 30), ddof=1))
    assert (row["volt_min_24h"], row["volt_max_24h"]) == (6.0, 29.0)
    assert row["rotate_std_24h"] == 0.0
    assert row[READINGS_COLUMN] == 24


def test_a_time_between_readings_uses_readings_up_to_it() -> None:
    on_hour = build_features(telemetry(30), NO_ERRORS, NO_MAINT, MACHINES, score_times=at(29))
    half_past = build_features(telemetry(30), NO_ERRORS, NO_MAINT, MACHINES, score_times=at(29.5))
    assert half_past["volt_mean_3h"].iloc[0] == on_hour["volt_mean_3h"].iloc[0]


def test_missing_hours_shrink_the_count_and_grid_drops_thin_windows() -> None:
    gappy = telemetry(48, missing=(40, 41, 42))
    table = build_features(gappy, NO_ERRORS, NO_MAINT, MACHINES, score_times=at(43))
    assert table[READINGS_COLUMN].iloc[0] == 21
    assert table["volt_mean_3h"].iloc[0] == pytest.approx(43.0)  # only hour 43 is in (40, 43]
    assert np.isnan(table["volt_std_3h"].iloc[0])
    grid = build_features(gappy, NO_ERRORS, NO_MAINT, MACHINES, grid_hours=1)
    assert (grid[READINGS_COLUMN] >= MIN_READINGS_24H).all()
    assert pd.Timestamp(T0 + pd.Timedelta(hours=43)) not in set(grid["datetime"])
    assert grid["datetime"].min() == T0 + pd.Timedelta(hours=MIN_READINGS_24H - 1)


def test_error_counts_and_hours_since_include_t_and_respect_the_windows() -> None:
    errs = events([(1, "error1"), (20, "error1"), (25, "error2"), (30, "error1")], "errorID")
    table = build_features(telemetry(40), errs, NO_MAINT, MACHINES, score_times=at(25))
    row = table.iloc[0]
    assert row["error1_count_24h"] == 1  # hour 1 is outside (1, 25]; hour 30 is after t
    assert row["error1_count_168h"] == 2
    assert row["error2_count_24h"] == 1  # an error at t itself counts
    assert row["hours_since_error1"] == 5.0
    assert row["hours_since_error2"] == 0.0
    assert np.isnan(row["hours_since_error3"])


def test_replacement_at_t_is_not_seen_but_earlier_ones_are() -> None:
    maint = events([(5, "comp1"), (25, "comp1"), (10, "comp2")], "comp")
    row = build_features(telemetry(30), NO_ERRORS, maint, MACHINES, score_times=at(25)).iloc[0]
    assert row["hours_since_replacement_comp1"] == 20.0  # the record at t = 25 coincides with a failure
    assert row["hours_since_replacement_comp2"] == 15.0
    assert np.isnan(row["hours_since_replacement_comp3"])


def test_machines_do_not_borrow_each_others_history() -> None:
    tele = pd.concat([telemetry(30, machine=1), telemetry(30, machine=2, volt=[100.0] * 30)])
    errs = events([(24, "error4")], "errorID", machine=1)
    maint = events([(3, "comp3")], "comp", machine=1)
    keys = pd.concat([at(29, machine=2), at(29, machine=1)])
    table = build_features(tele, errs, maint, MACHINES, score_times=keys)
    assert list(table["machineID"]) == [1, 2]
    second = table.iloc[1]
    assert second["volt_mean_24h"] == 100.0
    assert second["error4_count_24h"] == 0
    assert np.isnan(second["hours_since_replacement_comp3"])
    assert (second["model"], second["age"]) == ("model1", 2.0)


def test_grid_points_are_multiples_of_the_grid() -> None:
    keys = grid_score_times(telemetry(12), grid_hours=3)
    assert [t.hour for t in keys["datetime"]] == [0, 3, 6, 9]


def test_every_feature_column_is_produced() -> None:
    table = build_features(telemetry(30), NO_ERRORS, NO_MAINT, MACHINES, score_times=at(29))
    assert set(FEATURE_COLUMNS) <= set(table.columns)
    assert all(f"{s}_mean_24h" in FEATURE_COLUMNS for s in SENSORS)


def _perturb_after(frame: pd.DataFrame, cutoff: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Change every numeric value after cutoff and add a record there."""
    changed = frame.copy()
    later = changed["datetime"] > cutoff
    for column in changed.columns:
        if column in SENSORS:
            changed.loc[later, column] = rng.uniform(0, 500, int(later.sum()))
    extra = changed[~later].tail(1).assign(datetime=cutoff + pd.Timedelta(hours=1))
    return pd.concat([changed, extra], ignore_index=True)


def test_no_feature_at_t_depends_on_anything_after_t() -> None:
    rng = np.random.default_rng(0)
    hours = 24 * 10
    tele = pd.concat([telemetry(hours, m, volt=list(rng.normal(170, 15, hours))) for m in (1, 2)])
    errs = pd.concat(
        [events([(h, f"error{1 + h % 5}")], "errorID", m) for m in (1, 2) for h in range(5, hours, 17)]
    )
    maint = pd.concat(
        [events([(h, f"comp{1 + h % 4}")], "comp", m) for m in (1, 2) for h in range(0, hours, 31)]
    )
    base = build_features(tele, errs, maint, MACHINES, grid_hours=3)
    for cutoff_hour in (60, 123, 200):
        cutoff = T0 + pd.Timedelta(hours=cutoff_hour)
        changed = build_features(
            _perturb_after(tele, cutoff, rng),
            _perturb_after(errs, cutoff, rng),
            _perturb_after(maint, cutoff, rng),
            MACHINES,
            grid_hours=3,
        )
        before = base[base["datetime"] <= cutoff].reset_index(drop=True)
        after = changed[changed["datetime"] <= cutoff].reset_index(drop=True)
        pd.testing.assert_frame_equal(before, after)
        assert (
            not base[base["datetime"] > cutoff]
            .reset_index(drop=True)
            .equals(changed[changed["datetime"] > cutoff].reset_index(drop=True))
        )


def test_no_telemetry_at_all_gives_empty_windows_not_an_error() -> None:
    table = build_features(telemetry(0), NO_ERRORS, NO_MAINT, MACHINES, score_times=at(29))
    assert table[READINGS_COLUMN].tolist() == [0]
    assert np.isnan(table["volt_mean_24h"].iloc[0])

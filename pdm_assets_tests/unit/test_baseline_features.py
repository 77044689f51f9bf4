"""The baseline features on telemetry written out here, checked against numpy on the same windows, and the
no-leak property with them included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.tables import SENSORS
from pdm_assets.lib.modelling.features import (
    BASELINE_FEATURES,
    BASELINE_READINGS_COLUMN,
    EARLY_WARNING_FEATURE_COLUMNS,
    FEATURE_COLUMNS,
    RawArrays,
    baseline_min_readings,
    build_features,
    describe_baseline_feature,
    feature_table,
)

T0 = pd.Timestamp("2015-01-01 00:00")
LOOKBACK = 240
MACHINES = pd.DataFrame({"machineID": [1, 2], "model": ["model3", "model1"], "age": [18, 2]})
NO_ERRORS = pd.DataFrame({"datetime": pd.Series([], dtype="datetime64[ns]"), "machineID": [], "errorID": []})
NO_MAINT = pd.DataFrame({"datetime": pd.Series([], dtype="datetime64[ns]"), "machineID": [], "comp": []})


def telemetry(volt: np.ndarray, machine: int = 1, missing: tuple[int, ...] = ()) -> pd.DataFrame:
    """Hourly readings from T0, volt as given (hour h = volt[h]), the other sensors random around constants."""
    rng = np.random.default_rng(machine)
    hours = [h for h in range(len(volt)) if h not in missing]
    return pd.DataFrame({
        "datetime": [T0 + pd.Timedelta(hours=h) for h in hours],
        "machineID": machine,
        "volt": volt[hours],
        "rotate": rng.normal(450, 50, len(hours)),
        "pressure": rng.normal(100, 10, len(hours)),
        "vibration": rng.normal(40, 5, len(hours)),
    })


def at(hour: int, machine: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"machineID": [machine], "datetime": [T0 + pd.Timedelta(hours=hour)]})


def features_at(tele: pd.DataFrame, hour: int) -> pd.Series:
    table = build_features(tele, NO_ERRORS, NO_MAINT, MACHINES, score_times=at(hour), baseline_hours=LOOKBACK)
    return table.iloc[0]


def test_each_feature_is_the_window_against_the_baseline_in_baseline_stds() -> None:
    volt = np.random.default_rng(7).normal(170, 15, 400)
    volt[300:] += 30  # a drift over the last hours before t = 311
    t = 311
    row = features_at(telemetry(volt), t)
    # Windows (a, b] in hours: the reading at hour h belongs to (h - 1, h].
    baseline = volt[t - LOOKBACK + 1 : t - 72 + 1]
    mean, std = baseline.mean(), baseline.std(ddof=1)
    last_day, day_before, half_day = volt[t - 23 : t + 1], volt[t - 47 : t - 23], volt[t - 11 : t + 1]
    assert row[BASELINE_READINGS_COLUMN] == 168
    assert row["volt_mean_24h_vs_baseline"] == pytest.approx((last_day.mean() - mean) / std, rel=1e-12)
    assert row["volt_std_24h_vs_baseline"] == pytest.approx((last_day.std(ddof=1) - std) / std, rel=1e-12)
    assert row["volt_mean_12h_vs_baseline"] == pytest.approx((half_day.mean() - mean) / std, rel=1e-12)
    assert row["volt_trend_48h_vs_baseline"] == pytest.approx((last_day.mean() - day_before.mean()) / std, rel=1e-12)
    assert row["volt_mean_12h_vs_baseline"] > row["volt_mean_24h_vs_baseline"] > 0.5  # the 12 h window sees more


def test_missing_baseline_hours_shrink_the_count_and_too_few_give_nan() -> None:
    volt = np.random.default_rng(1).normal(170, 15, 400)
    t = 311
    day_missing = tuple(range(t - 200, t - 176))  # one whole day of the baseline: still usable
    row = features_at(telemetry(volt, missing=day_missing), t)
    assert row[BASELINE_READINGS_COLUMN] == 168 - 24 >= baseline_min_readings(LOOKBACK)
    assert np.isfinite(row["volt_mean_24h_vs_baseline"])
    two_days = tuple(range(t - 200, t - 152))
    short = features_at(telemetry(volt, missing=two_days), t)
    assert short[BASELINE_READINGS_COLUMN] == 168 - 48 < baseline_min_readings(LOOKBACK)
    assert short[list(BASELINE_FEATURES)].isna().all()
    only_a_day = features_at(telemetry(volt[t - 23 : t + 1].copy()), 23)  # what a 24 h request holds
    assert only_a_day[BASELINE_READINGS_COLUMN] == 0 and only_a_day[list(BASELINE_FEATURES)].isna().all()


def test_the_24h_features_are_the_same_with_or_without_the_baseline() -> None:
    tele = pd.concat([telemetry(np.random.default_rng(m).normal(170, 15, 300), m) for m in (1, 2)])
    plain = build_features(tele, NO_ERRORS, NO_MAINT, MACHINES, grid_hours=3)
    with_baseline = build_features(tele, NO_ERRORS, NO_MAINT, MACHINES, grid_hours=3, baseline_hours=LOOKBACK)
    pd.testing.assert_frame_equal(plain, with_baseline[plain.columns])
    assert list(with_baseline.columns[len(plain.columns):]) == [BASELINE_READINGS_COLUMN, *BASELINE_FEATURES]
    assert set(EARLY_WARNING_FEATURE_COLUMNS) - set(FEATURE_COLUMNS) == set(BASELINE_FEATURES)


def test_one_point_alone_gets_the_bits_of_the_whole_table() -> None:
    """The service computes one history on its own grid: the baseline features must not depend on the batch."""
    tele = pd.concat([telemetry(np.random.default_rng(m).normal(170, 15, 500), m) for m in (1, 2)])
    table = build_features(tele, NO_ERRORS, NO_MAINT, MACHINES, grid_hours=3, baseline_hours=LOOKBACK)
    raw = RawArrays.from_tables(tele, NO_ERRORS, NO_MAINT, MACHINES)
    for index in (120, 150, len(table) - 1):
        expected = table.iloc[index]
        alone = feature_table(raw, np.array([expected["machineID"]], dtype=np.int64),
                              np.array([expected["datetime"]], dtype="datetime64[ns]"), baseline_hours=LOOKBACK)
        columns = [BASELINE_READINGS_COLUMN, *BASELINE_FEATURES]
        np.testing.assert_array_equal(alone[columns].to_numpy(float)[0], expected[columns].to_numpy(float))
        assert np.isfinite(expected[list(BASELINE_FEATURES)].to_numpy(float)).all()


def _shift_after(frame: pd.DataFrame, cutoff: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    """Every reading after the cutoff changed, and one more reading appended after it."""
    changed = frame.copy()
    later = changed["datetime"] > cutoff
    for sensor in SENSORS:
        changed.loc[later, sensor] = changed.loc[later, sensor] + rng.normal(50, 20, int(later.sum()))
    extra = changed[~later].tail(1).assign(datetime=frame["datetime"].max() + pd.Timedelta(hours=1))
    return pd.concat([changed, extra], ignore_index=True)


def test_no_feature_at_t_depends_on_any_reading_after_t_baseline_features_included() -> None:
    rng = np.random.default_rng(3)
    tele = pd.concat([telemetry(rng.normal(170, 15, 24 * 16), m) for m in (1, 2)])
    base = build_features(tele, NO_ERRORS, NO_MAINT, MACHINES, grid_hours=3, baseline_hours=LOOKBACK)
    assert base[list(BASELINE_FEATURES)].notna().any().all()  # the baseline features exist to be compared
    for cutoff_hour in (250, 301, 340):
        cutoff = T0 + pd.Timedelta(hours=cutoff_hour)
        changed = build_features(_shift_after(tele, cutoff, rng), NO_ERRORS, NO_MAINT, MACHINES, grid_hours=3,
                                 baseline_hours=LOOKBACK)
        before = base[base["datetime"] <= cutoff].reset_index(drop=True)
        pd.testing.assert_frame_equal(before, changed[changed["datetime"] <= cutoff].reset_index(drop=True))
        after = base[base["datetime"] > cutoff].reset_index(drop=True)
        moved = changed[changed["datetime"] > cutoff].reset_index(drop=True).iloc[: len(after)]
        assert not np.allclose(after[list(BASELINE_FEATURES)].to_numpy(float), moved[list(BASELINE_FEATURES)]
                               .to_numpy(float), equal_nan=True)  # the shift does reach the later rows


def test_a_baseline_feature_reads_as_a_planner_says_it() -> None:
    assert describe_baseline_feature("pressure_mean_24h_vs_baseline", 2.31) == (
        "pressure 24 h mean +2.3σ over this machine's baseline")
    assert describe_baseline_feature("rotate_trend_48h_vs_baseline", -1.5).startswith("rotate 24 h mean change")
    with pytest.raises(ValueError, match="volt_mean_24h"):
        describe_baseline_feature("volt_mean_24h", 1.0)

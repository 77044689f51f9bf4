"""The promotion gate, each criterion tested both ways."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pdm_assets.lib.evaluation.promotion import (
    Criterion,
    already_champion,
    beats_baselines,
    decide,
    incomparable_champion,
    no_champion,
    not_worse_than_champion,
)

# Our operating curve: lower thresholds announce more failures with more false alarms.
CURVE = {
    "threshold": [0.2, 0.5, 0.9, 1.0000001],
    "event_recall": [1.0, 0.9, 0.5, 0.0],
    "false_alarms_per_100_machine_days": [5.0, 1.0, 0.0, 0.0],
}


def baseline(recall: float, alarms: float) -> dict[str, float]:
    return {"event_recall": recall, "false_alarms_per_100_machine_days": alarms}


def test_beats_baselines_passes_when_a_point_dominates_each() -> None:
    result = beats_baselines(CURVE, {
        "error_rule": baseline(1.0, 50.0),  # same recall, far fewer alarms at threshold 0.2
        "always_none": baseline(0.0, 0.0),  # more recall at zero alarms (threshold 0.9)
        "weak_model": baseline(0.8, 2.0),  # 0.9 at 1.0 alarms
    })
    assert result.passed
    assert result.details["always_none"]["threshold"] == 0.9
    assert result.details["weak_model"]["event_recall"] == 0.9


def test_beats_baselines_fails_against_a_better_baseline() -> None:
    result = beats_baselines(CURVE, {"always_none": baseline(0.0, 0.0), "strong": baseline(0.95, 0.5)})
    assert not result.passed
    assert "strong" in result.reason and "always_none" not in result.reason
    assert result.details["strong"]["best_event_recall_at_no_more_false_alarms"] == 0.5


def test_an_equal_operating_point_does_not_beat_unless_the_baseline_is_perfect() -> None:
    assert not beats_baselines(CURVE, {"twin": baseline(0.9, 1.0)}).passed
    assert beats_baselines(CURVE, {"perfect": baseline(1.0, 5.0)}).passed


def test_beats_baselines_fails_without_test_events() -> None:
    result = beats_baselines(CURVE, {"always_none": baseline(float("nan"), 0.0)})
    assert not result.passed


def validation_rows(machines: int = 10) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each machine scored every 3 h for 3 days, failing once at 2015-01-03 06:00."""
    times = pd.date_range("2015-01-01 00:00", "2015-01-04 00:00", freq="3h")
    rows = pd.DataFrame({"machineID": np.repeat(np.arange(1, machines + 1), len(times)),
                         "datetime": np.tile(times, machines)})
    fail = pd.Timestamp("2015-01-03 06:00")
    rows["failure"] = (rows["datetime"] >= fail - pd.Timedelta(hours=24)) & (rows["datetime"] < fail)
    failures = pd.DataFrame({"machineID": np.arange(1, machines + 1), "datetime": fail, "failure": "comp1"})
    return rows, failures


def gate(challenger: np.ndarray, champion: np.ndarray) -> Criterion:
    rows, failures = validation_rows()
    return not_worse_than_champion(rows, failures, challenger=(challenger, 0.5), champion=(champion, 0.5),
                                   horizon_hours=24, grid_hours=3, cost_missed=50, cost_false_alarm=1, seed=0)


def test_a_challenger_worse_beyond_the_noise_is_refused() -> None:
    rows, _ = validation_rows()
    perfect = rows["failure"].to_numpy(float)
    result = gate(challenger=np.zeros(len(rows)), champion=perfect)  # misses all 10 failures
    assert not result.passed
    assert result.details["challenger_cost"] == 500.0 and result.details["champion_cost"] == 0.0
    assert result.details["difference_ci"][0] > 0


def test_a_better_or_equal_challenger_passes() -> None:
    rows, _ = validation_rows()
    perfect = rows["failure"].to_numpy(float)
    assert gate(challenger=perfect, champion=np.zeros(len(rows))).passed
    assert gate(challenger=perfect, champion=perfect).passed


def test_a_slightly_worse_challenger_within_the_noise_passes() -> None:
    rows, _ = validation_rows()
    perfect = rows["failure"].to_numpy(float)
    noisy = perfect.copy()
    noisy[(rows["machineID"] == 3).to_numpy() & ~rows["failure"].to_numpy()] = 1.0  # 17 false alarms, 1 machine
    result = gate(challenger=noisy, champion=perfect)
    assert result.details["difference"] == 17.0
    assert result.passed  # one machine: the interval of the difference reaches 0


def test_decide_needs_every_criterion() -> None:
    passed = Criterion("a", True, "fine")
    failed = Criterion("b", False, "not fine")
    assert decide([passed, no_champion()]).promote
    assert decide([passed, already_champion("3")]).promote
    refused = decide([passed, failed])
    assert not refused.promote and refused.outcome == "rejected"
    assert "FAIL b: not fine" in refused.reason
    assert refused.to_dict()["criteria"][1]["passed"] is False


def test_a_champion_of_another_horizon_cannot_be_compared() -> None:
    metadata = {"horizon_hours": 48, "grid_hours": 3, "feature_columns": ["a"], "threshold": 0.5}
    result = incomparable_champion(metadata, horizon_hours=24, grid_hours=3, available_columns=["a"])
    assert result is not None and not result.passed and "48 h" in result.reason
    same = {**metadata, "horizon_hours": 24}
    assert incomparable_champion(same, horizon_hours=24, grid_hours=3, available_columns=["a"]) is None
    missing = incomparable_champion(same, horizon_hours=24, grid_hours=3, available_columns=["b"])
    assert missing is not None and "'a'" in missing.reason

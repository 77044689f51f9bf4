"""Weekly realized outcomes and the realized-recall verdict on frames small enough to check by hand."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.planning.outcomes import champion_test_recall, realized_recall, weekly_outcomes

H = 24


def predictions(rows: list[tuple[int, str, float, bool]], source: str = "fleet_risk") -> pd.DataFrame:
    return pd.DataFrame({"source": source, "machineID": [r[0] for r in rows],
                         "datetime": pd.to_datetime([r[1] for r in rows]), "score": [r[2] for r in rows],
                         "alert": [r[3] for r in rows], "model_version": "1"})


def test_recall_false_alarms_lead_time_and_top_n_of_one_week() -> None:
    # Week of Monday 2015-03-02. Machine 1 fails 03-04 10:00 and was alerted 03-03 23:00 (lead 11 h).
    # Machine 2 fails 03-05 12:00 and was not alerted the evening before. Machine 3 alerts twice, never fails.
    rows = [(1, "2015-03-03 23:00", 0.9, True), (2, "2015-03-04 23:00", 0.1, False),
            (3, "2015-03-03 23:00", 0.8, True), (3, "2015-03-04 23:00", 0.7, True),
            (2, "2015-03-03 23:00", 0.05, False), (1, "2015-03-04 23:00", 0.01, False)]
    failures = pd.DataFrame({"machineID": [1, 2], "datetime": pd.to_datetime(["2015-03-04 10:00", "2015-03-05 12:00"]),
                             "failure": ["comp1", "comp2"]})
    weekly = weekly_outcomes(predictions(rows), failures, datetime(2015, 3, 10), H, top_n=1)
    week = weekly.iloc[0]
    assert week["week"] == "2015-03-02" and week["predictions"] == 6
    assert (week["events"], week["detected"], week["event_recall"]) == (2, 1, 0.5)
    assert week["lead_time_median_h"] == 11.0
    assert (week["machine_days"], week["false_alarm_days"]) == (6, 2)
    assert week["false_alarms_per_100_machine_days"] == 100 * 2 / 6
    # top 1 per day: 03-03 machine 1 (fails within 24 h: yes), 03-04 machine 3 (no)
    assert (week["top_n"], week["top_n_failed"], week["top_n_precision"]) == (2, 1, 0.5)


def test_predictions_whose_horizon_has_not_passed_wait() -> None:
    rows = [(1, "2015-03-03 23:00", 0.9, True), (1, "2015-03-09 23:00", 0.9, True)]
    failures = pd.DataFrame({"machineID": [1], "datetime": pd.to_datetime(["2015-03-04 10:00"]), "failure": ["comp1"]})
    weekly = weekly_outcomes(predictions(rows), failures, datetime(2015, 3, 10, 6), H, top_n=5)
    assert weekly["week"].tolist() == ["2015-03-02"]  # 03-09 23:00 + 24 h is after the data end


def weeks(recalls: list[tuple[int, int]]) -> pd.DataFrame:
    return pd.DataFrame({"source": "fleet_risk", "week": [f"2015-03-{2 + 7 * i:02d}" for i in range(len(recalls))],
                         "events": [e for e, _ in recalls], "detected": [d for _, d in recalls]})


def test_the_verdict_pools_the_last_k_weeks_against_the_ci_lower_end() -> None:
    history = weeks([(4, 0), (3, 3), (3, 2), (4, 4)])  # the first week falls out of a 3-week window
    verdict = realized_recall(history, 0.95, (0.9, 1.0), weeks=3, min_events=3)
    assert verdict.weeks == ["2015-03-09", "2015-03-16", "2015-03-23"]
    assert verdict.realized["fleet_risk"] == 9 / 10 and verdict.events["fleet_risk"] == 10
    assert verdict.passed and verdict.bound == 0.9
    failing = realized_recall(history, 0.95, (0.9, 1.0), weeks=4, min_events=3)
    assert not failing.passed and failing.realized["fleet_risk"] == 9 / 14
    assert "below the champion's test-time CI" in failing.reason


def test_too_few_events_or_no_champion_figure_pass_with_the_reason() -> None:
    few = realized_recall(weeks([(1, 0), (1, 0)]), 0.95, (0.9, 1.0), weeks=4, min_events=3)
    assert few.passed and "nothing to judge" in few.reason and np.isclose(few.realized["fleet_risk"], 0.0)
    unknown = realized_recall(weeks([(5, 0)]), None, None, weeks=4, min_events=3)
    assert unknown.passed and "no champion" in unknown.reason


def test_a_perfect_test_recall_gets_a_binomial_lower_end() -> None:
    report = {"event_recall": 1.0, "events": 9, "events_detected": 9, "ci": {"event_recall": [1.0, 1.0]}}
    recall, ci = champion_test_recall(report)
    assert recall == 1.0 and ci is not None
    # Wilson: (1 + z²/18) / (1 + z²/9) - z * sqrt(z²/324) / (1 + z²/9), z = 1.96 -> 0.701
    assert ci[0] == pytest.approx(0.7008, abs=1e-3) and ci[1] == 1.0
    assert realized_recall(weeks([(8, 7)]), recall, ci, weeks=4, min_events=3).passed  # one miss in 8: within
    assert not realized_recall(weeks([(8, 3)]), recall, ci, weeks=4, min_events=3).passed
    wide = {"event_recall": 0.5, "events": 4, "events_detected": 2, "ci": {"event_recall": [0.0, 1.0]}}
    assert champion_test_recall(wide)[1] == (0.0, 1.0)  # the bootstrap is already wider

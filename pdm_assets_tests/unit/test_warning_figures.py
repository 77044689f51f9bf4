"""Alert episodes and the crew's figures on a timeline written out here (three machines, two failures, H = 48 h)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.evaluation import bootstrap
from pdm_assets.lib.evaluation.events import alert_episodes
from pdm_assets.lib.evaluation.warning import margin, target_check, warning_curve, warning_figures
from pdm_assets.lib.modelling.labels import build_labels

H, GRID = 48, 3
T = pd.Timestamp


def timeline() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Machines 1-3 scored every 3 h from 01-01 00:00 to 01-06 00:00 (41 rows each); alerts score 0.9.

    Machine 1 fails at 01-04 00:00. It alerts at 01-01 03:00 (no failure within 48 h: false), from 01-02 06:00 to
    12:00 (42 to 36 h ahead: true) and at 01-03 18:00 (true), and at 01-04 03:00 and 06:00, after the failure
    (left out). Machine 2 fails at 01-05 00:00 and alerts only at 01-04 15:00, 9 h ahead. Machine 3 never fails
    and alerts from 01-01 00:00 to 01-03 06:00: 54 h, cut after 48 h into two false episodes.
    """
    times = pd.date_range("2015-01-01 00:00", "2015-01-06 00:00", freq="3h")
    rows = pd.DataFrame({"machineID": np.repeat([1, 2, 3], len(times)), "datetime": np.tile(times, 3), "score": 0.1})
    alerts = {
        1: [T("2015-01-01 03:00"), *pd.date_range("2015-01-02 06:00", "2015-01-02 12:00", freq="3h"),
            T("2015-01-03 18:00"), T("2015-01-04 03:00"), T("2015-01-04 06:00")],
        2: [T("2015-01-04 15:00")],
        3: list(pd.date_range("2015-01-01 00:00", "2015-01-03 06:00", freq="3h")),
    }
    for machine, at in alerts.items():
        rows.loc[(rows["machineID"] == machine) & rows["datetime"].isin(at), "score"] = 0.9
    failures = pd.DataFrame({"machineID": [1, 2], "datetime": [T("2015-01-04 00:00"), T("2015-01-05 00:00")],
                             "failure": ["comp1", "comp3"]})
    return rows.assign(failure=build_labels(rows, failures, H)["failure"].to_numpy()), failures


def test_episodes_are_runs_cut_every_horizon_judged_by_their_start() -> None:
    rows, failures = timeline()
    episodes = alert_episodes(rows, failures, 0.5, H, GRID)
    assert episodes.machine.tolist() == [1, 1, 1, 2, 3, 3]
    assert episodes.false_alarm.tolist() == [True, False, False, False, True, True]


def test_figures_count_events_first_alerts_and_false_episodes() -> None:
    rows, failures = timeline()
    figures = warning_figures(rows, failures, 0.5, horizon_hours=H, grid_hours=GRID)
    assert (figures["events"], figures["events_detected"], figures["event_recall"]) == (2, 2, 1.0)
    assert figures["share_first_alerted_36h_ahead"] == 0.5  # machine 1 at 42 h, machine 2 at 9 h
    assert figures["lead_time_median_h"] == (42 + 9) / 2
    assert figures["first_alert_lead_hours"] == {"0-12": 1, "12-24": 0, "24-36": 0, "36-48": 1, "missed": 0}
    assert (figures["alert_episodes"], figures["false_alarm_episodes"]) == (6, 3)
    machine_days = 3 * 41 * GRID / 24
    assert figures["false_alarm_episodes_per_100_machine_days"] == pytest.approx(100 * 3 / machine_days)


def test_events_before_events_from_are_not_counted_but_still_end_episodes() -> None:
    rows, failures = timeline()
    later = warning_figures(rows, failures, 0.5, horizon_hours=H, grid_hours=GRID, events_from=T("2015-01-04 12:00"))
    assert later["events"] == 1 and later["false_alarm_episodes"] == 3


def test_machine_bootstrap_intervals_hold_the_figures() -> None:
    rows, failures = timeline()
    draws = bootstrap.draw_machines(rows["machineID"].to_numpy(), 300, seed=0)
    figures = warning_figures(rows, failures, 0.5, horizon_hours=H, grid_hours=GRID, draws=draws)
    for name in ("share_first_alerted_36h_ahead", "false_alarm_episodes_per_100_machine_days", "lead_time_median_h"):
        low, high = figures["ci"][name]
        assert low <= figures[name] <= high and low < high, name
    assert figures["ci"]["event_recall"] == [1.0, 1.0]  # every drawn event is announced


def test_the_curve_trades_lead_time_for_false_alarms() -> None:
    rows, failures = timeline()
    rows.loc[(rows["machineID"] == 2) & (rows["datetime"] == T("2015-01-03 03:00")), "score"] = 0.6  # 45 h ahead
    curve = warning_curve(rows, failures, horizon_hours=H, grid_hours=GRID)
    assert curve["threshold"] == sorted(curve["threshold"])
    recall, share = np.asarray(curve["event_recall"]), np.asarray(curve["share_first_alerted_36h_ahead"])
    assert (np.diff(recall) <= 0).all() and recall[0] == 1.0
    at_low = curve["threshold"].index(0.6)
    assert share[at_low] == 1.0 and share[at_low + 1] == 0.5  # the early alert of machine 2 needs the lower one


def test_margins_put_every_model_at_zero_at_its_own_threshold() -> None:
    scores = np.array([0.0, 0.1, 0.3, 0.30000001, 0.9, 1.0])
    assert ((margin(scores, 0.3) >= 0) == (scores >= 0.3)).all()
    assert (margin(scores, 1.5) < 0).all()  # a threshold above every probability never alerts


def test_targets_say_whether_each_is_reached() -> None:
    checked = target_check({"event_recall": 0.9, "false_alarm_episodes_per_100_machine_days": float("nan")},
                           {"event_recall": (">=", 0.95), "false_alarm_episodes_per_100_machine_days": ("<=", 1.0)})
    assert checked["event_recall"] == {"target": ">= 0.95", "value": 0.9, "reached": False}
    assert checked["false_alarm_episodes_per_100_machine_days"]["reached"] is False

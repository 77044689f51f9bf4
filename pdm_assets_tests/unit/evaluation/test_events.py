"""Event-level figures on a timeline written out here: two machines, two failures, a few alerts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.evaluation.events import (
    EventView,
    alert_cost,
    choose_threshold,
    earliest_alert_lead_hours,
    event_metrics,
    event_view,
    failure_events,
    operating_curve,
)
from pdm_assets.lib.modelling.labels import build_labels

H, GRID = 24, 3
T = pd.Timestamp


def timeline() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Machines 1 and 2 scored every 3 h from 2015-01-02 00:00 to 2015-01-04 00:00 (17 rows each).

    Machine 1 fails at 01-03 06:00 and alerts at 01-02 03:00 (no failure within 24 h after it: a false
    alarm), at 01-02 06:00 (24 h before: labelled positive, but outside the open window (t-24h, t)), and at
    01-02 21:00 and 01-03 00:00 (inside the window: announced, earliest 9 h ahead).
    Machine 2 fails at 01-03 12:00 and never alerts. Machine 3 fails with no scored row at all.
    """
    times = pd.date_range("2015-01-02 00:00", "2015-01-04 00:00", freq="3h")
    rows = pd.DataFrame({"machineID": np.repeat([1, 2], len(times)), "datetime": np.tile(times, 2), "score": 0.1})
    alerts = [T("2015-01-02 03:00"), T("2015-01-02 06:00"), T("2015-01-02 21:00"), T("2015-01-03 00:00")]
    rows.loc[(rows["machineID"] == 1) & rows["datetime"].isin(alerts), "score"] = 0.9
    failures = pd.DataFrame({
        "machineID": [1, 1, 2, 3],
        "datetime": [T("2015-01-03 06:00"), T("2015-01-03 06:00"), T("2015-01-03 12:00"), T("2015-02-01 06:00")],
        "failure": ["comp1", "comp2", "comp3", "comp4"],  # machine 1: two components, one stop
    })
    labels = build_labels(rows, failures, H)
    return rows.assign(failure=labels["failure"].to_numpy()), failures


def test_failure_events_merge_components_failing_together() -> None:
    _, failures = timeline()
    assert len(failure_events(failures)) == 3


def test_the_timeline_labels_are_the_ones_described() -> None:
    rows, _ = timeline()
    one = rows[rows["machineID"] == 1].set_index("datetime")["failure"]
    assert not one[T("2015-01-02 03:00")]  # the failure is 27 h later
    assert one[T("2015-01-02 06:00")]  # exactly 24 h before: (t, t + 24 h] includes it
    assert not one[T("2015-01-03 06:00")]  # the failure's own time announces nothing after it
    assert int(one.sum()) == 8


def test_event_recall_lead_time_and_false_alarms_on_the_timeline() -> None:
    rows, failures = timeline()
    view = event_view(rows, failures, H, GRID)
    figures = event_metrics(view, rows["score"].to_numpy(), threshold=0.5)
    assert figures.events == 2  # machine 3 has no scored row in its window
    assert figures.detected == 1
    assert figures.event_recall == 0.5
    assert figures.lead_times_h == (9.0,)  # 01-03 06:00 minus 01-02 21:00
    assert figures.lead_time_median_h == 9.0
    assert figures.lead_time_p10_h == 9.0
    assert figures.false_alarms == 1  # only 01-02 03:00; 01-02 06:00 is labelled positive
    assert view.machine_days == pytest.approx(34 * 3 / 24)
    assert figures.false_alarms_per_100_machine_days == pytest.approx(100 / (34 * 3 / 24))


def test_an_alert_only_at_exactly_horizon_before_does_not_announce_the_failure() -> None:
    rows, failures = timeline()
    rows["score"] = 0.1
    rows.loc[(rows["machineID"] == 1) & (rows["datetime"] == T("2015-01-02 06:00")), "score"] = 0.9
    figures = event_metrics(event_view(rows, failures, H, GRID), rows["score"].to_numpy(), 0.5)
    assert figures.detected == 0
    assert figures.false_alarms == 0


def test_earliest_lead_is_nan_for_unannounced_events() -> None:
    rows, failures = timeline()
    view = event_view(rows, failures, H, GRID)
    leads = earliest_alert_lead_hours(view, rows["score"].to_numpy(), 0.5)
    assert leads[0] == 9.0 and np.isnan(leads[1])
    assert list(view.event_machine) == [1, 2]


def test_operating_curve_and_cost_count_events_and_alarms() -> None:
    rows, failures = timeline()
    view = event_view(rows, failures, H, GRID)
    detected, alarms = operating_curve(view, np.array([0.05, 0.5, 0.95]))
    assert list(detected) == [2, 1, 0]
    assert list(alarms) == [18, 1, 0]  # 34 rows less 8 positive rows on each machine
    assert alert_cost(view, 0.5, cost_missed=50, cost_false_alarm=1) == 50 + 1


def _view(best: list[float], negatives: list[float]) -> EventView:
    return EventView(
        event_best_score=np.array(best), event_machine=np.arange(len(best)), window_rows=np.array([], int),
        window_event=np.array([], int), window_lead_hours=np.array([]), negative_scores=np.array(negatives),
        negative_machine=np.zeros(len(negatives), int), machine_days=10.0, grid_hours=3,
    )


def test_choose_threshold_takes_the_cheapest_interval_and_its_midpoint() -> None:
    view = _view(best=[0.9, 0.4], negatives=[0.95, 0.5, 0.3, 0.1])
    # tau in (0.3, 0.4]: both events, 2 false alarms = 2; tau in (0.5, 0.9]: 1 missed (10) + 1 = 11.
    assert choose_threshold(view, cost_missed=10, cost_false_alarm=1) == pytest.approx(0.35)
    # A false alarm as costly as a miss: (0.5, 0.9] costs 1 + 1 = 2, (0.3, 0.4] costs 2, silence 2: the highest wins.
    assert choose_threshold(view, cost_missed=1, cost_false_alarm=1) > 1.0
    # Misses a little dearer: (0.5, 0.9] costs 3.5 vs 2 below; the midpoint of (0.3, 0.4] again.
    assert choose_threshold(view, cost_missed=2.5, cost_false_alarm=1) == pytest.approx(0.35)


def test_choose_threshold_midpoint_of_an_upper_interval() -> None:
    view = _view(best=[0.9, 0.2], negatives=[0.5, 0.45, 0.3, 0.25])
    # (0.5, 0.9]: 1 miss (3) + 0 = 3; (0.1.., 0.2]: 0 misses + 4 alarms = 4; silence: 6.
    assert choose_threshold(view, cost_missed=3, cost_false_alarm=1) == pytest.approx(0.7)

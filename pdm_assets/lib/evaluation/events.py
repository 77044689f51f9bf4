"""Event-level view of scores: was each failure announced in time, how early, and how many false alarms.

A failure event is one stop of one machine: (machineID, datetime) in the failures table, whatever the
number of components replaced. An alert is a scored row whose score reaches the threshold. An event is
announced when its machine alerts at any scored time in (t_fail - H, t_fail); the lead time is t_fail minus
the earliest such alert. A false alarm is an alert with no failure in (t, t + H] after it (a row whose
`failure` label is False); every alerting scoring point counts, so a persisting alert counts once per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pdm_assets.lib.modelling.keys import frame_keys, key_machines


@dataclass(frozen=True)
class EventView:
    """Per failure event, the best score in its announcement window and the lead time of each score."""

    event_best_score: np.ndarray  # max score over rows in (t_fail - H, t_fail); -inf when none scored
    event_machine: np.ndarray  # machineID of each event
    window_rows: np.ndarray  # row index of each (event, row) pair inside a window
    window_event: np.ndarray  # event index of each pair
    window_lead_hours: np.ndarray  # t_fail - t of each pair
    negative_scores: np.ndarray  # scores of rows with no failure within H after them
    negative_machine: np.ndarray  # machineID of each of those rows
    machine_days: float
    grid_hours: int


def failure_events(failures: pd.DataFrame) -> pd.DataFrame:
    """One event per (machineID, datetime): components failing together are one stop of the machine."""
    events = failures[["machineID", "datetime"]].drop_duplicates()
    return events.sort_values(["machineID", "datetime"]).reset_index(drop=True)


def event_view(scored: pd.DataFrame, failures: pd.DataFrame, horizon_hours: int, grid_hours: int) -> EventView:
    """Index scored rows (machineID, datetime, score, failure) against the failure events they could announce.

    Only events with at least one scored row in their window count, so a test period's edges do not
    create failures that could never have been announced.
    """
    rows = scored.reset_index(drop=True)
    machines = rows["machineID"].to_numpy(np.int64)
    row_keys = frame_keys(rows)
    order = np.argsort(row_keys, kind="stable")
    sorted_keys = row_keys[order]
    events = failure_events(failures)
    event_keys = frame_keys(events)
    horizon_s = np.int64(horizon_hours) * 3600
    lo = np.searchsorted(sorted_keys, event_keys - horizon_s, side="right")
    hi = np.searchsorted(sorted_keys, event_keys, side="left")
    counts = hi - lo
    covered = counts > 0
    lo, hi, counts, event_keys = lo[covered], hi[covered], counts[covered], event_keys[covered]
    pair_event = np.repeat(np.arange(len(event_keys)), counts)
    starts = np.repeat(lo, counts)
    offsets = np.arange(len(pair_event)) - np.repeat(np.cumsum(counts) - counts, counts)
    pair_row = order[starts + offsets].astype(np.int64)
    scores = rows["score"].to_numpy(np.float64)
    best = np.full(len(event_keys), -np.inf)
    np.maximum.at(best, pair_event, scores[pair_row])
    lead = (event_keys[pair_event] - row_keys[pair_row]) / 3600.0
    negative = ~rows["failure"].to_numpy(bool)
    return EventView(
        event_best_score=best,
        event_machine=key_machines(event_keys),
        window_rows=pair_row,
        window_event=pair_event,
        window_lead_hours=lead,
        negative_scores=scores[negative],
        negative_machine=machines[negative],
        machine_days=len(rows) * grid_hours / 24.0,
        grid_hours=grid_hours,
    )


@dataclass(frozen=True)
class EventMetrics:
    """What a maintenance crew sees at one threshold."""

    events: int
    detected: int
    event_recall: float
    lead_time_median_h: float
    lead_time_p10_h: float
    false_alarms: int
    false_alarms_per_100_machine_days: float
    lead_times_h: tuple[float, ...]


def event_metrics(view: EventView, scores: np.ndarray, threshold: float) -> EventMetrics:
    """Event recall, lead times of the earliest alert in each window, and false alarms, at a threshold."""
    detected = view.event_best_score >= threshold
    leads = earliest_alert_lead_hours(view, scores, threshold)[detected]
    false_alarms = int((view.negative_scores >= threshold).sum())
    events = len(view.event_best_score)
    return EventMetrics(
        events=events,
        detected=int(detected.sum()),
        event_recall=float(detected.mean()) if events else float("nan"),
        lead_time_median_h=float(np.median(leads)) if len(leads) else float("nan"),
        lead_time_p10_h=float(np.percentile(leads, 10)) if len(leads) else float("nan"),
        false_alarms=false_alarms,
        false_alarms_per_100_machine_days=per_100_machine_days(false_alarms, view.machine_days),
        lead_times_h=tuple(float(x) for x in leads),
    )


def earliest_alert_lead_hours(view: EventView, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Per event, hours from its earliest alert in the window to the failure; NaN when it never alerted."""
    earliest = np.full(len(view.event_best_score), np.nan)
    alerted = scores[view.window_rows] >= threshold
    if alerted.any():
        lead = np.full(len(view.event_best_score), -np.inf)
        np.maximum.at(lead, view.window_event[alerted], view.window_lead_hours[alerted])
        earliest = np.where(np.isfinite(lead), lead, np.nan)
    return earliest


def per_100_machine_days(count: float, machine_days: float) -> float:
    """A count as a rate per 100 machine-days of scored operation."""
    return 100.0 * count / machine_days if machine_days else float("nan")


def operating_curve(view: EventView, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Detected events and false alarms at each threshold (vectorised over thresholds)."""
    best = np.sort(view.event_best_score)
    negatives = np.sort(view.negative_scores)
    detected = len(best) - np.searchsorted(best, thresholds, side="left")
    false_alarms = len(negatives) - np.searchsorted(negatives, thresholds, side="left")
    return detected, false_alarms


def alert_cost(view: EventView, threshold: float, cost_missed: float, cost_false_alarm: float) -> float:
    """Missed failures times their cost plus false alarms times theirs."""
    missed = int((view.event_best_score < threshold).sum())
    false_alarms = int((view.negative_scores >= threshold).sum())
    return cost_missed * missed + cost_false_alarm * false_alarms


def choose_threshold(view: EventView, cost_missed: float, cost_false_alarm: float) -> float:
    """The threshold with the lowest alert cost, placed mid-way inside the interval where that cost holds.

    The cost only changes at scores of events (best in window) and of negative rows, so it is constant on
    each interval (a, b] between consecutive distinct scores. Of the cheapest intervals the highest one
    (fewest alerts) is taken, and the threshold is its midpoint, away from both edges, so a test score a
    little below the validation one still alerts. Not alerting at all is a candidate too.
    """
    finite_best = view.event_best_score[np.isfinite(view.event_best_score)]
    breakpoints = np.unique(np.concatenate([finite_best, view.negative_scores]))
    if len(breakpoints) == 0:
        return 1.0
    ceiling = max(float(breakpoints[-1]), 1.0)
    silent = float(np.nextafter(ceiling, np.inf))  # above every score: never alerts
    candidates = np.unique(np.concatenate([finite_best, [silent]]))
    detected, false_alarms = operating_curve(view, candidates)
    missed = len(view.event_best_score) - detected
    cost = cost_missed * missed + cost_false_alarm * false_alarms
    top = candidates[np.flatnonzero(cost == cost.min())[-1]]
    if top == silent:
        return silent
    below = breakpoints[breakpoints < top]
    return float((below[-1] + top) / 2.0) if len(below) else float(top)


@dataclass(frozen=True)
class Episodes:
    """Alert episodes: runs of alerting scoring points of one machine, one grid step apart, cut every H hours.

    A crew answers an alert once when it comes on, and again if it still stands once its horizon has passed
    (hence the cut: an alert left on for ever is not one episode). An episode is a false alarm when no
    failure follows its first point within the horizon (that row is not labelled `failure`). Alerts in the
    H hours from a failure of their machine are left out: the crew has just replaced the part, and the
    windows still hold the drift that announced it.
    """

    machine: np.ndarray  # machineID of each episode
    false_alarm: np.ndarray  # bool per episode


@dataclass(frozen=True)
class AlertTimeline:
    """Scored rows in machine-time order with what their episodes need at any threshold (built once per curve)."""

    keys: np.ndarray
    scores: np.ndarray
    positive: np.ndarray
    just_failed: np.ndarray  # within the horizon from a failure of the row's machine
    step_s: np.int64
    horizon_s: np.int64

    @classmethod
    def of(cls, scored: pd.DataFrame, failures: pd.DataFrame, horizon_hours: int, grid_hours: int) -> AlertTimeline:
        keys = frame_keys(scored)
        order = np.argsort(keys, kind="stable")
        keys = keys[order]
        horizon_s = np.int64(horizon_hours) * 3600
        failed = np.sort(frame_keys(failure_events(failures)))
        last_failure = np.searchsorted(failed, keys, side="right") - 1
        since = keys - failed[np.maximum(last_failure, 0)] if len(failed) else np.full(len(keys), -1)
        # Keys of one machine differ by less than its stride, so `since < horizon` means the same machine.
        just_failed = (last_failure >= 0) & (since >= 0) & (since < horizon_s)
        return cls(keys, scored["score"].to_numpy(np.float64)[order], scored["failure"].to_numpy(bool)[order],
                   just_failed, np.int64(grid_hours) * 3600, horizon_s)

    def episodes(self, threshold: float) -> Episodes:
        """The episodes of the rows alerting at `threshold`."""
        alert = (self.scores >= threshold) & ~self.just_failed
        # A row continues the run of the row before it when both alert, one grid step apart, same machine.
        continues = np.zeros(len(self.keys), dtype=bool)
        continues[1:] = alert[1:] & alert[:-1] & (np.diff(self.keys) == self.step_s)
        run_start = np.maximum.accumulate(np.where(alert & ~continues, self.keys, np.iinfo(np.int64).min))
        segment = (self.keys - run_start) // self.horizon_s
        starts = alert & ~continues
        starts[1:] |= alert[1:] & continues[1:] & (segment[1:] != segment[:-1])
        return Episodes(machine=key_machines(self.keys[starts]), false_alarm=~self.positive[starts])


def alert_episodes(
    scored: pd.DataFrame, failures: pd.DataFrame, threshold: float, horizon_hours: int, grid_hours: int
) -> Episodes:
    """The episodes of rows (machineID, datetime, failure, score) alerting at `threshold`."""
    return AlertTimeline.of(scored, failures, horizon_hours, grid_hours).episodes(threshold)

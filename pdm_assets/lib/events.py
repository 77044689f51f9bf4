"""Event-level view of scores: was each failure announced in time, how early, and how many false alarms."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pdm_assets.lib.features import epoch_seconds

_STRIDE = np.int64(10_000_000_000)


@dataclass(frozen=True)
class EventView:
    """Per failure event, the best score in its announcement window and the lead time of each score."""

    event_best_score: np.ndarray  # max score over rows in (t_fail - H, t_fail); -inf when none scored
    window_rows: np.ndarray  # row index of each (event, row) pair inside a window
    window_event: np.ndarray  # event index of each pair
    window_lead_hours: np.ndarray  # t_fail - t of each pair
    negative_scores: np.ndarray  # scores of rows with no failure within H after them
    machine_days: float


def failure_events(failures: pd.DataFrame) -> pd.DataFrame:
    """One event per (machineID, datetime): components failing together are one stop of the machine."""
    return failures[["machineID", "datetime"]].drop_duplicates().sort_values(["machineID", "datetime"]).reset_index(drop=True)


def event_view(
    scored: pd.DataFrame, failures: pd.DataFrame, horizon_hours: int, grid_hours: int
) -> EventView:
    """Index scored rows (machineID, datetime, score, failure) against the failure events they could announce.

    Only events with at least one scored row in their window count, so a test period's edges do not
    create failures that could never have been announced.
    """
    rows = scored.reset_index(drop=True)
    row_keys = rows["machineID"].to_numpy(np.int64) * _STRIDE + epoch_seconds(rows["datetime"])
    order = np.argsort(row_keys, kind="stable")
    sorted_keys = row_keys[order]
    events = failure_events(failures)
    event_keys = events["machineID"].to_numpy(np.int64) * _STRIDE + epoch_seconds(events["datetime"])
    horizon_s = np.int64(horizon_hours) * 3600
    lo = np.searchsorted(sorted_keys, event_keys - horizon_s, side="right")
    hi = np.searchsorted(sorted_keys, event_keys, side="left")
    counts = hi - lo
    covered = counts > 0
    lo, hi, counts, event_keys = lo[covered], hi[covered], counts[covered], event_keys[covered]
    pair_event = np.repeat(np.arange(len(event_keys)), counts)
    pair_pos = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)]) if len(lo) else np.array([], int)
    pair_row = order[pair_pos].astype(np.int64)
    scores = rows["score"].to_numpy(np.float64)
    best = np.full(len(event_keys), -np.inf)
    np.maximum.at(best, pair_event, scores[pair_row])
    lead = (event_keys[pair_event] - row_keys[pair_row]) / 3600.0
    negatives = scores[~rows["failure"].to_numpy(bool)]
    return EventView(best, pair_row, pair_event, lead, negatives, len(rows) * grid_hours / 24.0)


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
    alerted_pairs = scores[view.window_rows] >= threshold
    earliest = np.full(len(view.event_best_score), np.nan)
    if alerted_pairs.any():
        lead = pd.Series(view.window_lead_hours[alerted_pairs]).groupby(view.window_event[alerted_pairs]).max()
        earliest[lead.index.to_numpy()] = lead.to_numpy()
    leads = earliest[detected]
    false_alarms = int((view.negative_scores >= threshold).sum())
    events = len(view.event_best_score)
    return EventMetrics(
        events=events,
        detected=int(detected.sum()),
        event_recall=float(detected.mean()) if events else float("nan"),
        lead_time_median_h=float(np.median(leads)) if len(leads) else float("nan"),
        lead_time_p10_h=float(np.percentile(leads, 10)) if len(leads) else float("nan"),
        false_alarms=false_alarms,
        false_alarms_per_100_machine_days=100.0 * false_alarms / view.machine_days if view.machine_days else float("nan"),
        lead_times_h=tuple(float(x) for x in leads),
    )


def alert_cost(view: EventView, threshold: float, cost_missed: float, cost_false_alarm: float) -> float:
    """Missed failures times their cost plus false alarms times theirs."""
    missed = int((view.event_best_score < threshold).sum())
    false_alarms = int((view.negative_scores >= threshold).sum())
    return cost_missed * missed + cost_false_alarm * false_alarms


def choose_threshold(view: EventView, scores: np.ndarray, cost_missed: float, cost_false_alarm: float) -> float:
    """The threshold with the lowest alert cost; among equals, the highest (fewest alerts)."""
    candidates = np.unique(np.concatenate([scores, [1.0]]))
    if len(candidates) > 2000:
        candidates = np.unique(np.quantile(scores, np.linspace(0, 1, 2001)))
    best = view.event_best_score
    missed = np.searchsorted(np.sort(best), candidates, side="left")
    negatives = np.sort(view.negative_scores)
    false_alarms = len(negatives) - np.searchsorted(negatives, candidates, side="left")
    cost = cost_missed * missed + cost_false_alarm * false_alarms
    lowest = cost.min()
    return float(candidates[np.flatnonzero(cost == lowest)[-1]])

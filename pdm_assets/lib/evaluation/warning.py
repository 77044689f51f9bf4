"""How early and how noisy alerts are, as a maintenance crew counts: events announced within the horizon, the
first alert's lead time, and false-alarm episodes (a run of alerts answered once), with machine-bootstrap CIs.

Scores are compared with `threshold` as they are; pooled scores of several models (the rolling origin)
come as margins over each model's own threshold, so one threshold of 0 is every model's operating point.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from pdm_assets.lib.evaluation import bootstrap
from pdm_assets.lib.evaluation.events import (
    AlertTimeline,
    EventView,
    earliest_alert_lead_hours,
    event_view,
    per_100_machine_days,
)

# "Two days ahead" as a crew needs it: the share of events whose first alert came at least this early.
EARLY_LEAD_HOURS = 36.0
LEAD_BIN_EDGES: tuple[float, ...] = (0.0, 12.0, 24.0, 36.0, 48.0)
# Figures with machine-bootstrap intervals.
WARNING_CI_METRICS: tuple[str, ...] = (
    "event_recall", "share_first_alerted_36h_ahead", "lead_time_median_h", "false_alarm_episodes_per_100_machine_days",
)
CURVE_POINTS = 120
_EPS = 1e-12


def margin(scores: np.ndarray, threshold: float) -> np.ndarray:
    """log-odds(score) - log-odds(threshold): >= 0 exactly where the score alerts at its own threshold."""
    def logit(p: np.ndarray) -> np.ndarray:
        clipped = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1.0 - _EPS)
        return np.log(clipped) - np.log1p(-clipped)

    if threshold > 1.0:  # a threshold above every probability: never alerts
        return np.full(len(scores), -np.inf)
    return logit(scores) - logit(np.asarray([threshold]))[0]


def warning_figures(
    scored: pd.DataFrame, failures: pd.DataFrame, threshold: float, *, horizon_hours: int, grid_hours: int,
    events_from: pd.Timestamp | None = None, draws: bootstrap.Resamples | None = None,
    level: float = bootstrap.DEFAULT_LEVEL, view: EventView | None = None, timeline: AlertTimeline | None = None,
) -> dict[str, Any]:
    """The crew's figures at one threshold for rows (machineID, datetime, failure, score); CIs when drawn.

    Only failures from `events_from` count as events (all of them still end alert episodes).
    """
    if view is None:
        view = event_view(scored, _counted(failures, events_from), horizon_hours, grid_hours)
    scores = scored["score"].to_numpy(np.float64)
    leads = earliest_alert_lead_hours(view, scores, threshold)
    detected = np.isfinite(leads)
    if timeline is None:
        timeline = AlertTimeline.of(scored, failures, horizon_hours, grid_hours)
    episodes = timeline.episodes(threshold)
    events = len(leads)
    false_episodes = int(episodes.false_alarm.sum())
    binned = np.histogram(leads[detected], bins=np.asarray(LEAD_BIN_EDGES))[0]
    figures: dict[str, Any] = {
        "threshold": float(threshold),
        "horizon_hours": horizon_hours,
        "events": events,
        "events_detected": int(detected.sum()),
        "event_recall": float(detected.mean()) if events else float("nan"),
        "share_first_alerted_36h_ahead": float((leads >= EARLY_LEAD_HOURS).sum() / events) if events else float("nan"),
        "lead_time_median_h": float(np.median(leads[detected])) if detected.any() else float("nan"),
        "lead_time_p10_h": float(np.percentile(leads[detected], 10)) if detected.any() else float("nan"),
        "first_alert_lead_hours": {
            **{f"{lo:.0f}-{hi:.0f}": int(n)
               for lo, hi, n in zip(LEAD_BIN_EDGES, LEAD_BIN_EDGES[1:], binned, strict=False)},
            "missed": int(events - detected.sum()),
        },
        "alert_episodes": len(episodes.machine),
        "false_alarm_episodes": false_episodes,
        "false_alarm_episodes_per_100_machine_days": per_100_machine_days(false_episodes, view.machine_days),
        "machine_days": view.machine_days,
    }
    if draws is not None:
        figures["ci"] = {
            name: list(bootstrap.interval(values, level))
            for name, values in _resampled(draws, scored, view, leads, episodes.machine[episodes.false_alarm]).items()
        }
    return figures


def _resampled(
    draws: bootstrap.Resamples, scored: pd.DataFrame, view: EventView, leads: np.ndarray, false_machines: np.ndarray
) -> dict[str, np.ndarray]:
    """Each WARNING_CI_METRICS figure in every resample of machines."""
    def totals(machines: np.ndarray, values: np.ndarray) -> np.ndarray:
        return draws.counts @ bootstrap.per_machine(draws, machines, values)

    detected = np.isfinite(leads)
    events = totals(view.event_machine, np.ones(len(leads)))
    machine_days = totals(scored["machineID"].to_numpy(np.int64), np.ones(len(scored))) * view.grid_hours / 24.0
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "event_recall": np.where(events > 0, totals(view.event_machine, detected.astype(float)) / events, np.nan),
            "share_first_alerted_36h_ahead": np.where(
                events > 0, totals(view.event_machine, (leads >= EARLY_LEAD_HOURS).astype(float)) / events, np.nan
            ),
            "lead_time_median_h": _weighted_medians(draws, view.event_machine[detected], leads[detected]),
            "false_alarm_episodes_per_100_machine_days": np.where(
                machine_days > 0, 100.0 * totals(false_machines, np.ones(len(false_machines))) / machine_days, np.nan
            ),
        }


def _weighted_medians(draws: bootstrap.Resamples, machines: np.ndarray, values: np.ndarray) -> np.ndarray:
    """The lower median of `values` in each resample, each value weighted by its machine's draw count."""
    if not len(values):
        return np.full(len(draws.counts), np.nan)
    order = np.argsort(values, kind="stable")
    weights = draws.counts[:, draws.index(machines[order])]  # (resamples, values)
    cumulative = np.cumsum(weights, axis=1)
    total = cumulative[:, -1:]
    position = np.argmax(cumulative >= total / 2.0, axis=1)
    return np.where(total[:, 0] > 0, values[order][position], np.nan)


def warning_curve(
    scored: pd.DataFrame, failures: pd.DataFrame, *, horizon_hours: int, grid_hours: int,
    events_from: pd.Timestamp | None = None, points: int = CURVE_POINTS,
) -> dict[str, list[float]]:
    """The crew's figures as the threshold moves over the scores that change them (at most `points` thresholds)."""
    view = event_view(scored, _counted(failures, events_from), horizon_hours, grid_hours)
    timeline = AlertTimeline.of(scored, failures, horizon_hours, grid_hours)
    scores = scored["score"].to_numpy(np.float64)
    in_windows = scores[view.window_rows]
    candidates = np.unique(in_windows[np.isfinite(in_windows)])
    if len(candidates) > points:
        candidates = np.unique(np.quantile(candidates, np.linspace(0.0, 1.0, points)))
    keys = ("threshold", "event_recall", "share_first_alerted_36h_ahead", "lead_time_median_h",
            "false_alarm_episodes_per_100_machine_days")
    curve: dict[str, list[float]] = {key: [] for key in keys}
    for threshold in candidates:
        figures = warning_figures(scored, failures, float(threshold), horizon_hours=horizon_hours,
                                  grid_hours=grid_hours, view=view, timeline=timeline)
        for key in keys:
            curve[key].append(_finite_or_none(figures[key]))
    return curve


def _counted(failures: pd.DataFrame, events_from: pd.Timestamp | None) -> pd.DataFrame:
    return failures if events_from is None else failures[failures["datetime"] >= events_from]


def target_check(figures: Mapping[str, Any], targets: Mapping[str, tuple[str, float]]) -> dict[str, Any]:
    """Whether each target (figure, ">=" or "<=", value) is reached at the operating point."""
    out = {}
    for name, (direction, goal) in targets.items():
        value = figures.get(name)
        reached = value is not None and np.isfinite(value) and (value >= goal if direction == ">=" else value <= goal)
        out[name] = {"target": f"{direction} {goal}", "value": _finite_or_none(value), "reached": bool(reached)}
    return out


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value

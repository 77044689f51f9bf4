"""Realized outcomes: what was predicted (the daily worklists, the service's logged answers) against the
failures that landed later, per week.

- A prediction at t is resolved once the data reach t + H (H its horizon); unresolved ones wait.
- Event recall: failure events of the week with at least one prediction in (t_fail - H, t_fail), announced when
  one of those alerted (the evaluation's definition, `lib.evaluation.events`); lead time from the earliest alert.
- False alarms per 100 machine-days: machine-days with an alert and no failure within H after it, over the
  machine-days predicted. Counting days, not predictions, keeps a client that asks every hour comparable with
  the daily worklist.
- Precision of the top N: of each day's N riskiest machines, the share that failed within H.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from pdm_assets.lib.evaluation.events import event_metrics, event_view
from pdm_assets.lib.modelling.labels import build_labels

WORKLIST = "fleet_risk"
SERVICE = "service"
PUSHGATEWAY_JOB = "pdm-outcomes"
WEEKLY_COLUMNS = ("source", "week", "predictions", "machine_days", "events", "detected", "event_recall",
                  "false_alarm_days", "false_alarms_per_100_machine_days", "lead_time_median_h", "top_n",
                  "top_n_failed", "top_n_precision")


def worklist_predictions(worklists: pd.DataFrame) -> pd.DataFrame:
    """The scored rows of the stored daily worklists in the common shape."""
    if worklists.empty:
        return _empty()
    rows = worklists[worklists["failure_probability"].notna()]
    return pd.DataFrame({
        "source": WORKLIST, "machineID": rows["machineID"].astype(np.int64),
        "datetime": pd.to_datetime(rows["scored_at"]), "score": rows["failure_probability"].astype(float),
        "alert": rows["alert"].astype(bool), "model_version": rows["model_version"].astype(str),
    })


def logged_predictions(log: pd.DataFrame, horizon_hours: int) -> pd.DataFrame:
    """The service's logged answers of the given horizon in the common shape."""
    rows = log[log["horizon_hours"] == horizon_hours] if len(log) else log
    if rows.empty:
        return _empty()
    return pd.DataFrame({
        "source": SERVICE, "machineID": rows["machine_id"].astype(np.int64),
        "datetime": pd.to_datetime(rows["as_of"]), "score": rows["failure_probability"].astype(float),
        "alert": rows["alert"].astype(bool), "model_version": rows["model_version"].astype(str),
    })


def _empty() -> pd.DataFrame:
    return pd.DataFrame({"source": pd.Series(dtype=object), "machineID": pd.Series(dtype=np.int64),
                         "datetime": pd.Series(dtype="datetime64[ns]"), "score": pd.Series(dtype=float),
                         "alert": pd.Series(dtype=bool), "model_version": pd.Series(dtype=object)})


def weekly_outcomes(
    predictions: pd.DataFrame, failures: pd.DataFrame, observed_until: datetime, horizon_hours: int, top_n: int
) -> pd.DataFrame:
    """The realized figures per source and week (Monday to Sunday) of the resolved predictions."""
    horizon = pd.Timedelta(hours=horizon_hours)
    resolved = predictions[predictions["datetime"] + horizon <= pd.Timestamp(observed_until)]
    rows = []
    for source, own in resolved.groupby("source", sort=True):
        own = own.reset_index(drop=True)
        own["failure"] = build_labels(own, failures, horizon_hours)["failure"].to_numpy(bool)
        own["week"] = _week(own["datetime"])
        own["day"] = own["datetime"].dt.normalize()
        event_weeks = _week(pd.to_datetime(failures["datetime"])) if len(failures) else pd.Series(dtype=object)
        for key, in_week in own.groupby("week", sort=True):
            week = pd.Timestamp(str(key))
            window = own[(own["datetime"] >= week - horizon) & (own["datetime"] < week + pd.Timedelta(days=7))]
            week_failures = failures[(event_weeks == week).to_numpy()] if len(failures) else failures
            rows.append({"source": source, "week": week.date().isoformat(), "predictions": len(in_week),
                         **_events(window, week_failures, horizon_hours), **_alarms(in_week),
                         **_top_n(in_week, top_n)})
    return pd.DataFrame(rows, columns=list(WEEKLY_COLUMNS))


def _week(times: pd.Series) -> pd.Series:
    return times.dt.normalize() - pd.to_timedelta(times.dt.weekday, unit="D")


def _events(window: pd.DataFrame, failures: pd.DataFrame, horizon_hours: int) -> dict[str, Any]:
    scored = window.assign(score=window["alert"].astype(float))
    view = event_view(scored, failures, horizon_hours, grid_hours=24)
    found = event_metrics(view, scored["score"].to_numpy(), 0.5)
    return {"events": found.events, "detected": found.detected,
            "event_recall": found.event_recall if found.events else np.nan,
            "lead_time_median_h": found.lead_time_median_h}


def _alarms(rows: pd.DataFrame) -> dict[str, Any]:
    machine_days = rows[["machineID", "day"]].drop_duplicates()
    false_days = rows.loc[rows["alert"] & ~rows["failure"], ["machineID", "day"]].drop_duplicates()
    return {"machine_days": len(machine_days), "false_alarm_days": len(false_days),
            "false_alarms_per_100_machine_days": 100.0 * len(false_days) / len(machine_days)}


def _top_n(rows: pd.DataFrame, top_n: int) -> dict[str, Any]:
    """Each day's N highest-scored machines (a machine's highest score that day), and how many failed."""
    best = rows.sort_values("score", ascending=False, kind="stable").drop_duplicates(["day", "machineID"])
    top = best.groupby("day", sort=False).head(top_n)
    failed = int(top["failure"].sum())
    return {"top_n": len(top), "top_n_failed": failed, "top_n_precision": failed / len(top) if len(top) else np.nan}


@dataclass(frozen=True)
class RecallVerdict:
    """Realized event recall over the last weeks against the champion's test-time figure and its CI."""

    passed: bool
    reason: str
    realized: dict[str, float]  # source -> recall over the window (NaN when it had no event)
    events: dict[str, int]
    bound: float | None
    weeks: list[str]


def realized_recall(
    weekly: pd.DataFrame, champion_recall: float | None, champion_ci: tuple[float, float] | None, weeks: int,
    min_events: int,
) -> RecallVerdict:
    """Fails when a source's event recall over the last `weeks` weeks is below the lower end of the champion's
    test-time CI (its point figure when it has no CI); a source with fewer than `min_events` events passes."""
    last = sorted(weekly["week"].unique())[-weeks:] if len(weekly) else []
    window = weekly[weekly["week"].isin(last)]
    sums = window.groupby("source")[["events", "detected"]].sum()
    events = {str(s): int(v) for s, v in sums["events"].items()}
    realized = {str(s): (float(r.detected / r.events) if r.events else float("nan")) for s, r in sums.iterrows()}
    if champion_recall is None:
        return RecallVerdict(True, "no champion test-time event recall to compare with", realized, events, None, last)
    bound = float(champion_ci[0]) if champion_ci and np.isfinite(champion_ci[0]) else float(champion_recall)
    judged = {s: r for s, r in realized.items() if events[s] >= min_events}
    if not judged:
        return RecallVerdict(True, f"fewer than {min_events} resolved failure events in the last {len(last)} "
                                   f"week(s): nothing to judge yet", realized, events, bound, last)
    below = {s: r for s, r in judged.items() if r < bound}
    shown = ", ".join(f"{s} {r:.3f} ({events[s]} events)" for s, r in sorted(judged.items()))
    if below:
        return RecallVerdict(False, f"realized event recall over the last {len(last)} week(s) is below the "
                                    f"champion's test-time CI (lower end {bound:.3f}): {shown}",
                             realized, events, bound, last)
    return RecallVerdict(True, f"realized event recall within the champion's test-time CI (lower end "
                               f"{bound:.3f}): {shown}", realized, events, bound, last)


def outcome_registry(weekly: pd.DataFrame, verdict: RecallVerdict, champion_recall: float | None) -> CollectorRegistry:
    """The realized figures of the last weeks and of the latest week as Prometheus gauges, per source."""
    registry = CollectorRegistry()
    recall = Gauge("pdm_realized_event_recall", "Realized event recall over the check's window of weeks.",
                   ["source"], registry=registry)
    events = Gauge("pdm_realized_events", "Resolved failure events in the check's window.", ["source"],
                   registry=registry)
    for source, value in verdict.realized.items():
        if np.isfinite(value):
            recall.labels(source=source).set(value)
        events.labels(source=source).set(verdict.events[source])
    latest: Mapping[str, tuple[str, str]] = {
        "false_alarms_per_100_machine_days": ("pdm_realized_false_alarms_per_100_machine_days",
                                              "False alarms per 100 machine-days in the latest resolved week."),
        "lead_time_median_h": ("pdm_realized_lead_time_median_hours", "Median lead time in the latest week."),
        "top_n_precision": ("pdm_realized_top_n_precision", "Share of each day's top N that failed, latest week."),
        "event_recall": ("pdm_realized_week_event_recall", "Realized event recall in the latest resolved week."),
    }
    gauges = {column: Gauge(metric, text, ["source"], registry=registry) for column, (metric, text) in latest.items()}
    for group, rows in weekly.groupby("source"):
        newest = rows.sort_values("week").iloc[-1]
        for column, gauge in gauges.items():
            value = float(newest[column])
            if np.isfinite(value):
                gauge.labels(source=str(group)).set(value)
    if champion_recall is not None:
        Gauge("pdm_champion_test_event_recall", "The champion's test-time event recall.",
              registry=registry).set(champion_recall)
    if verdict.bound is not None:
        Gauge("pdm_realized_recall_bound", "The lower end of the champion's test-time event recall CI.",
              registry=registry).set(verdict.bound)
    return registry


def outcome_prometheus_text(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def observed_until(telemetry_times: pd.Series) -> datetime:
    """How far the data reach: the last telemetry reading (failures are only known up to there)."""
    if not len(telemetry_times):
        return datetime.min + timedelta(days=1)
    return pd.Timestamp(telemetry_times.max()).to_pydatetime()


def champion_test_recall(report: Mapping[str, Any] | None) -> tuple[float | None, tuple[float, float] | None]:
    """The event recall of the champion's evaluation report (its test period) and its CI.

    The CI is the report's bootstrap interval, widened to the Wilson interval of detected / events where that is
    wider: when every test event was announced, the percentile bootstrap collapses to [1, 1], which would call
    one miss in a handful of later events a failure.
    """
    if not report or report.get("event_recall") is None:
        return None, None
    recall = float(report["event_recall"])
    bootstrap = report.get("ci", {}).get("event_recall")
    low, high = (float(bootstrap[0]), float(bootstrap[1])) if bootstrap else (recall, recall)
    events, detected = report.get("events"), report.get("events_detected", 0)
    if events:
        wilson_low, wilson_high = wilson_interval(int(detected), int(events))
        low, high = min(low, wilson_low), max(high, wilson_high)
    return recall, (low, high)


def wilson_interval(successes: int, trials: int, z: float = 1.959964) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion."""
    if trials <= 0:
        return float("nan"), float("nan")
    share = successes / trials
    centre = (share + z * z / (2 * trials)) / (1 + z * z / trials)
    spread = z * np.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return float(centre - spread), float(centre + spread)

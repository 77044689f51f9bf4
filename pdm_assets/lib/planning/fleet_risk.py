"""The daily worklist: every machine scored at the end of a day by the champion, ranked, with its reasons.

A day's scoring time is its last hourly reading, 23:00: the features come from `build_features` with those
points as `score_times`, the path the service takes for a request, so the worklist says what `POST /predict`
would have said for that machine at that hour.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from pdm_assets.lib.data.tables import COMPONENTS
from pdm_assets.lib.modelling.estimators import failure_probability, predict_components
from pdm_assets.lib.modelling.features import MIN_READINGS_24H, READINGS_COLUMN, build_features
from pdm_assets.lib.modelling.reasons import DEFAULT_TOP, FailureExplainer

END_OF_DAY_HOUR = 23
EXPLAINED_BESIDES_ALERTS = 20  # the top of the list is explained too, alerting or not
REPLACEMENT_COLUMNS = tuple(f"hours_since_replacement_{comp}" for comp in COMPONENTS)
WORKLIST_COLUMNS = (
    "day", "rank", "machineID", "scored_at", "failure_probability", "alert", "threshold", "likely_component",
    "likely_component_probability", *REPLACEMENT_COLUMNS, "reasons", "reason_details", "status", "model_version",
)
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Champion:
    """What scores the fleet: the pipeline and what its metadata says about it."""

    pipeline: Pipeline
    version: str
    threshold: float
    feature_columns: list[str]
    horizon_hours: int

    @classmethod
    def of(cls, pipeline: Pipeline, version: str, metadata: Mapping[str, Any]) -> Champion:
        return cls(pipeline, str(version), float(metadata["threshold"]), list(metadata["feature_columns"]),
                   int(metadata["horizon_hours"]))


def end_of_day_points(machine_ids: Sequence[int], days: Sequence[date]) -> pd.DataFrame:
    """(machineID, datetime) at 23:00 of each day, for every machine."""
    times = [datetime.combine(day, datetime.min.time()) + timedelta(hours=END_OF_DAY_HOUR) for day in days]
    grid = pd.MultiIndex.from_product([sorted(int(m) for m in machine_ids), pd.to_datetime(times)],
                                      names=["machineID", "datetime"])
    return grid.to_frame(index=False)


def complete_days(last_reading: datetime, through: date | None, first_day: date) -> list[date]:
    """The days after `through` whose 23:00 reading is at or before `last_reading`, none before `first_day`.

    Without `through` (nothing scored yet) only the last complete day: the history is a backfill's job.
    """
    last_complete = last_reading.date() if last_reading.hour >= END_OF_DAY_HOUR else last_reading.date() - timedelta(1)
    start = last_complete if through is None else through + timedelta(1)
    start = max(start, first_day)
    return [start + timedelta(days=k) for k in range((last_complete - start).days + 1)]


def fleet_worklists(
    champion: Champion,
    telemetry: pd.DataFrame,
    errors: pd.DataFrame,
    maint: pd.DataFrame,
    machines: pd.DataFrame,
    days: Sequence[date],
    *,
    top_reasons: int = DEFAULT_TOP,
    explained_besides_alerts: int = EXPLAINED_BESIDES_ALERTS,
) -> pd.DataFrame:
    """Every machine scored at the end of each day, ranked within its day (highest risk first)."""
    points = end_of_day_points(machines["machineID"].astype(int).tolist(), days)
    logger.info("fleet risk: %d machines x %d days", machines["machineID"].nunique(), len(days))
    features = build_features(telemetry, errors, maint, machines, score_times=points)
    scoreable = features[READINGS_COLUMN].to_numpy() >= MIN_READINGS_24H
    scored = features[scoreable]
    components = predict_components(champion.pipeline, scored[champion.feature_columns])
    per_component = components[list(COMPONENTS)].to_numpy(np.float64)

    table = pd.DataFrame({
        "day": features["datetime"].dt.date.to_numpy(),
        "machineID": features["machineID"].to_numpy(np.int64),
        "scored_at": features["datetime"].to_numpy(),
        "failure_probability": np.nan,
        "likely_component": None,
        "likely_component_probability": np.nan,
    })
    table.loc[scoreable, "failure_probability"] = failure_probability(components)
    likely = per_component.argmax(axis=1) if len(per_component) else np.array([], dtype=np.int64)
    table.loc[scoreable, "likely_component"] = np.asarray(COMPONENTS, dtype=object)[likely]
    table.loc[scoreable, "likely_component_probability"] = per_component[np.arange(len(likely)), likely]
    table["alert"] = table["failure_probability"].to_numpy() >= champion.threshold
    table["threshold"] = champion.threshold
    for column in REPLACEMENT_COLUMNS:
        table[column] = features[column].to_numpy(np.float64)
    readings = features[READINGS_COLUMN].to_numpy()
    table["status"] = np.where(
        scoreable, "scored",
        [f"not scored: {n} of the {MIN_READINGS_24H} hourly readings needed in the last 24 h" for n in readings],
    )
    table["model_version"] = champion.version
    table = _ranked(table)
    _explain(table, features, champion, top_reasons, explained_besides_alerts)
    return table[list(WORKLIST_COLUMNS)]


def _ranked(table: pd.DataFrame) -> pd.DataFrame:
    """Within each day, highest P(failure) first; unscored machines last."""
    table = table.sort_values(["day", "failure_probability", "machineID"], ascending=[True, False, True],
                              na_position="last", kind="stable").reset_index(drop=True)
    table["rank"] = table.groupby("day").cumcount() + 1
    return table


def _explain(table: pd.DataFrame, features: pd.DataFrame, champion: Champion, top: int, besides: int) -> None:
    """Reasons for every alert and for the top `besides` of each day, in place."""
    table["reasons"] = ""
    table["reason_details"] = "[]"
    wanted = table["alert"].to_numpy() | ((table["rank"].to_numpy() <= besides)
                                          & table["failure_probability"].notna().to_numpy())
    if not wanted.any():
        return
    keys = features.set_index(["machineID", "datetime"])
    rows = keys.loc[pd.MultiIndex.from_arrays([table.loc[wanted, "machineID"], table.loc[wanted, "scored_at"]])]
    explained = FailureExplainer(champion.pipeline).reasons(rows.reset_index(), top=top)
    table.loc[wanted, "reasons"] = ["; ".join(r.text for r in reasons) for reasons in explained]
    table.loc[wanted, "reason_details"] = [json.dumps([r.__dict__ for r in reasons]) for reasons in explained]


def day_summary(worklist: pd.DataFrame, capacity: int) -> pd.DataFrame:
    """Per day: machines, scored, alerts, and whether the alerts exceed the crew capacity."""
    grouped = worklist.groupby("day")
    summary = pd.DataFrame({
        "machines": grouped.size(),
        "scored": grouped["failure_probability"].count(),
        "alerts": grouped["alert"].sum().astype(int),
    }).reset_index()
    summary["over_capacity"] = summary["alerts"] > capacity
    return summary


def top_markdown(worklist: pd.DataFrame, rows: int = 20) -> str:
    """The top of a day's worklist as a markdown table (the reasons shortened to their first three)."""
    shown = worklist.head(rows).copy()
    shown["P(failure)"] = shown["failure_probability"].map(lambda p: f"{p:.3g}" if p == p else "-")
    shown["component"] = [f"{c} ({p:.2f})" if c else "-" for c, p in
                          zip(shown["likely_component"], shown["likely_component_probability"], strict=True)]
    shown["reasons"] = shown["reasons"].map(lambda text: "; ".join(text.split("; ")[:3]))
    columns = ["rank", "machineID", "P(failure)", "alert", "component", "reasons"]
    return shown[columns].to_markdown(index=False)

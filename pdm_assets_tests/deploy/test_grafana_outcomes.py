"""The dashboard shows every realized-outcome gauge the pipeline pushes (names taken from the code, not copied)."""

from __future__ import annotations

import json
import re

import pandas as pd

from pdm_assets.lib.planning.outcomes import outcome_registry, realized_recall
from pdm_assets_tests.support.paths import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "pdm-service.json"


def pushed_metric_names() -> set[str]:
    weekly = pd.DataFrame({"source": ["fleet_risk"], "week": ["2015-03-02"], "events": [4], "detected": [3],
                           "event_recall": [0.75], "false_alarms_per_100_machine_days": [1.0],
                           "lead_time_median_h": [20.0], "top_n_precision": [0.4]})
    verdict = realized_recall(weekly, 0.9, (0.8, 1.0), weeks=4, min_events=1)
    registry = outcome_registry(weekly, verdict, 0.9)
    return {family.name for family in registry.collect()}


def test_every_pushed_outcome_gauge_is_on_the_dashboard() -> None:
    names = pushed_metric_names()
    assert {"pdm_realized_event_recall", "pdm_realized_false_alarms_per_100_machine_days",
            "pdm_realized_lead_time_median_hours", "pdm_realized_top_n_precision"} <= names
    dashboard = json.loads(DASHBOARD.read_text())
    queried = " ".join(t["expr"] for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"])
    missing = sorted(n for n in names if not re.search(rf"(?<![\w:]){re.escape(n)}(?![\w:])", queried))
    assert not missing, f"pushed but never shown: {missing}"

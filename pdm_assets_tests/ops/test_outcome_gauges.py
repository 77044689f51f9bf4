"""Realized-outcome gauges through a real Prometheus Pushgateway, on the drift check's push path."""

from __future__ import annotations

import httpx
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from pdm_assets.lib.monitoring.drift import push_registry
from pdm_assets.lib.planning.outcomes import PUSHGATEWAY_JOB, outcome_registry, realized_recall


def test_outcome_gauges_read_back_from_the_gateway(gateway: str) -> None:  # noqa: F811
    weekly = pd.DataFrame({"source": ["fleet_risk", "fleet_risk", "service"], "week": ["2015-03-02", "2015-03-09",
                           "2015-03-09"], "events": [4, 2, 3], "detected": [4, 0, 1],
                           "event_recall": [1.0, 0.0, 1 / 3], "false_alarms_per_100_machine_days": [0.5, 2.0, 4.0],
                           "lead_time_median_h": [22.0, float("nan"), 18.0], "top_n_precision": [0.6, 0.2, 0.1]})
    verdict = realized_recall(weekly, 0.95, (0.9, 1.0), weeks=4, min_events=3)
    assert push_registry(outcome_registry(weekly, verdict, 0.95), gateway, PUSHGATEWAY_JOB) is None

    text = httpx.get(f"{gateway}/metrics", timeout=5).text
    samples = {(s.name, s.labels.get("source")): s.value for f in text_string_to_metric_families(text)
               for s in f.samples if s.name.startswith("pdm_") and s.labels.get("job") == PUSHGATEWAY_JOB}
    assert samples[("pdm_realized_event_recall", "fleet_risk")] == 4 / 6
    assert samples[("pdm_realized_event_recall", "service")] == 1 / 3
    assert samples[("pdm_realized_false_alarms_per_100_machine_days", "fleet_risk")] == 2.0  # the latest week
    assert ("pdm_realized_lead_time_median_hours", "fleet_risk") not in samples  # no lead time that week
    assert samples[("pdm_realized_recall_bound", None)] == 0.9
    assert samples[("pdm_champion_test_event_recall", None)] == 0.95

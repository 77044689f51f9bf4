"""The early warning over HTTP: `bentoml serve` of the session project's bento answers it beside the 24 h answer,
with the registered head's own probability, and null with the reason for a day of telemetry."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pdm_assets.defs.resources import MLflowResource
from pdm_assets.lib.modelling.early_warning import EARLY_WARNING
from pdm_assets.lib.modelling.estimators import score_failure
from pdm_assets.lib.modelling.features import BASELINE_READINGS_COLUMN, TELEMETRY_LOOKBACK_HOURS
from pdm_assets.lib.serving.requests_from_tables import histories_from_tables
from pdm_assets.settings import get_settings
from pdm_assets_tests.support.serving import TrainedProject, request_body, serve_bento

pytestmark = pytest.mark.slow  # trains the session's small project (about a minute)



def body(project: TrainedProject, points: pd.DataFrame, hours: int) -> dict:
    t = project.tables
    return request_body(histories_from_tables(t["telemetry"], t["errors"], t["maint"], t["machines"],
                                              points[["machineID", "datetime"]], telemetry_hours=hours))


def test_the_served_early_warning_is_the_registered_heads_and_a_day_of_telemetry_says_why_not(
    project: TrainedProject, tmp_path: Path
) -> None:
    head = project.model[EARLY_WARNING]  # the contract the version was registered with
    lookback = head["baseline_lookback_hours"]
    with project.settings_env():
        champion = MLflowResource.of(get_settings()).load_alias()
        assert champion is not None
        pipeline = champion.head(EARLY_WARNING)
    assert pipeline is not None
    usable = project.features[project.features[BASELINE_READINGS_COLUMN] >= head["min_baseline_readings"]]
    points = usable.sample(5, random_state=5).reset_index(drop=True)
    with serve_bento(project.bento["tag"], project.bentoml_home, tmp_path / "serve.log") as server, \
            server.client() as client:
        full = client.post("/predict", json=body(project, points, lookback))
        short = client.post("/predict", json=body(project, points, TELEMETRY_LOOKBACK_HOURS))
        card = client.get("/model").json()
    assert full.status_code == 200 and short.status_code == 200, (full.text, short.text)
    warnings = [answer["early_warning"] for answer in full.json()]
    expected = score_failure(pipeline, points[head["feature_columns"]])
    np.testing.assert_allclose([w["failure_probability"] for w in warnings], expected, rtol=0, atol=1e-12)
    assert [w["alert"] for w in warnings] == list(expected >= head["threshold"])
    assert {(w["threshold"], w["horizon_hours"]) for w in warnings} == {(head["threshold"], head["horizon_hours"])}
    day = short.json()
    assert all(a["early_warning"] is None and "send the last 240 hourly readings" in a["early_warning_unavailable"]
               for a in day)
    unchanged = ("failure_probability", "component_probabilities", "alert", "threshold", "horizon_hours")
    assert [{k: a[k] for k in unchanged} for a in day] == [{k: a[k] for k in unchanged} for a in full.json()]
    assert card["early_warning"]["baseline_lookback_hours"] == lookback

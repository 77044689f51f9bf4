"""The planner's page opened from disk in headless Chromium: the worklist table, the heat-map, the outcome plot,
each alert's reasons and the model card's own plot are there, and nothing is fetched from anywhere."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.evaluation.plots import lead_times
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.modelling.train import make_pipeline
from pdm_assets.lib.planning.fleet_risk import Champion, fleet_worklists
from pdm_assets.lib.planning.outcomes import weekly_outcomes, worklist_predictions
from pdm_assets.lib.planning.plots import outcome_trends, risk_heatmap
from pdm_assets.lib.planning.report import inline_plots, render_report
from pdm_assets.lib.synthetic.simulate import generate_fleet
from pdm_assets_tests.support.planner import screenshot

pytestmark = pytest.mark.browser  # skipped without Chromium (conftest.py), failed under PDM_CI_REQUIRE


def test_the_report_renders_with_its_table_and_plots(tmp_path: Path, artifacts: Path) -> None:
    fleet = generate_fleet(machines=8, days=60, seed=4)
    t = {name: fleet.table(name) for name in ("telemetry", "errors", "maint", "machines", "failures")}
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({c: rng.normal(100, 30, 800) for c in FEATURE_COLUMNS if c != "model"})
    rows["model"] = "model2"
    target = np.zeros((800, 4), dtype=bool)
    target[rows["volt_mean_24h"].to_numpy() > 130, 0] = True
    champion = Champion(make_pipeline(list(FEATURE_COLUMNS), {"max_leaf_nodes": 7}, 1.0, 0).fit(rows, target),
                        "3", 0.05, list(FEATURE_COLUMNS), 24)
    days = [date(2015, 1, 20) + timedelta(days=k) for k in range(28)]
    worklists = fleet_worklists(champion, t["telemetry"], t["errors"], t["maint"], t["machines"], days)
    weekly = weekly_outcomes(worklist_predictions(worklists), t["failures"], days[-1] + timedelta(days=3), 24, 3)
    today = worklists[worklists["day"] == days[-1]]
    assert today["alert"].any(), "the page should show at least one alert"
    card = "# Model card\n\nA line.\n\n![lead_time](plots/lead_time.png)\n"
    page = render_report(
        day=str(days[-1]), worklist=today, heatmap_png=risk_heatmap(worklists, champion.threshold), weekly=weekly,
        outcomes_png=outcome_trends(weekly, 0.9), verdict="a verdict",
        model_card_md=inline_plots(card, {"lead_time": lead_times(np.array([21.0, 24.0, 12.0]), 24, 3)}),
        champion={"version": "3"}, capacity=2)
    path = tmp_path / "fleet_report.html"
    path.write_text(page)

    shown = screenshot(path, artifacts / "ui" / "fleet_report_synthetic.png")
    assert shown["worklist_rows"] == 8 and shown["alert_rows"] == int(today["alert"].sum())
    images = dict(shown["images"])  # type: ignore[arg-type]
    assert images["heatmap"] and images["outcomes"] and images["lead_time"], images
    assert shown["reasons"] >= 5 * shown["alert_rows"]
    assert shown["outcome_rows"] == len(weekly)
    assert {"Worklist", "Fleet heat-map", "Why each alert", "Realized outcomes", "Champion's model card"} <= set(
        shown["headings"])  # type: ignore[arg-type]
    assert all(url.startswith(("file:", "data:")) for url in shown["requests"])  # type: ignore[union-attr]

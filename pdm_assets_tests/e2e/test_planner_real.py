"""The planner's view on the shared real slice: train, score every day of the test period in one backfill run,
the outcomes of those days, and the report page rendered in headless Chromium."""

from __future__ import annotations

import json
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pdm_assets.settings import get_settings
from pdm_assets_tests.support.capabilities import require
from pdm_assets_tests.support.paths import CHROMIUM
from pdm_assets_tests.support.planner import PIPELINE, project_defs, score_days, screenshot
from pdm_assets_tests.support.project import materialize_definitions

pytestmark = pytest.mark.real_data


def test_the_planners_view_on_the_real_slice(
    isolated_project: Path, real_data_dir: Path, monkeypatch: pytest.MonkeyPatch, artifacts: Path
) -> None:
    monkeypatch.setenv("PDM_DATA_DIR", str(real_data_dir))
    monkeypatch.setenv("PDM_FLEET_RISK_DIR", str(isolated_project / "reports" / "fleet_risk"))
    monkeypatch.setenv("PDM_METRICS_DIR", str(isolated_project / "reports" / "metrics"))
    monkeypatch.setenv("PDM_PREDICTION_LOG_DIR", str(isolated_project / "predictions"))
    monkeypatch.setenv("PDM_MAINTENANCE_CAPACITY", "0")  # any day with an alert is over a crew of none
    defs = project_defs()
    settings = get_settings()
    with dg.DagsterInstance.get() as instance:
        trained = materialize_definitions(defs, PIPELINE, instance)
        assert trained.success and trained.output_for_node("promotion").promote
        split = trained.output_for_node("model").split
        first, last = split.test_start.date(), date(2015, 3, 31)
        scored, seconds = score_days(defs, instance, first, last)
        assert scored.success
        capacity = scored.get_asset_check_evaluations()
        assert [c.check_name for c in capacity] == ["crew_capacity"]
        assert capacity[0].passed is False and capacity[0].metadata["max_alerts_per_day"].value >= 1
        worklists = pd.concat(pd.read_parquet(p) for p in sorted(Path(settings.fleet_risk_dir).glob("*.parquet")))
        days = (last - first).days + 1
        # every machine of the machines table is listed; the 20 with telemetry in the slice are scored
        assert len(worklists) == 100 * days and worklists["day"].nunique() == days
        scored_machines = worklists[worklists["failure_probability"].notna()].groupby("day")["machineID"].nunique()
        assert (scored_machines == 20).all()
        assert worklists.loc[worklists["failure_probability"].isna(), "status"].str.startswith("not scored").all()
        alerts = worklists[worklists["alert"]]
        assert len(alerts) and (alerts["reasons"].str.len() > 0).all()
        reported = dg.AssetSelection.assets("prediction_outcomes", "fleet_report")
        outcomes = materialize_definitions(defs, reported, instance)
        assert outcomes.success
        weekly = outcomes.output_for_node("prediction_outcomes")
        check = outcomes.get_asset_check_evaluations()[0]
    assert (weekly["source"] == "fleet_risk").all() and weekly["events"].sum() > 0
    summary = {
        "days": days, "machines": 20, "backfill_seconds": round(seconds, 2), "alerts": len(alerts),
        "realized_recall": check.metadata["realized_fleet_risk"].value, "check_passed": check.passed,
        "check_reason": check.metadata["reason"].value,
        "weekly": json.loads(weekly.to_json(orient="records")),
        "example_reasons": alerts["reasons"].head(3).tolist(),
    }
    out = artifacts / "e2e"
    out.mkdir(parents=True, exist_ok=True)
    (out / "planner_real.json").write_text(json.dumps(summary, indent=2, default=str))
    page = isolated_project / "reports" / "fleet_report.html"
    assert page.exists()
    shutil.copy(page, artifacts / "fleet_report_real.html")
    assert last - timedelta(days=days - 1) == first
    require("browser", CHROMIUM.exists(), f"no {CHROMIUM} for the report's screenshot (the rest passed)")
    shown = screenshot(page, artifacts / "ui" / "fleet_report_real.png")
    assert shown["worklist_rows"] == 20  # the scored machines; the 80 others are one line
    assert all(ok for _, ok in shown["images"])  # type: ignore[union-attr]
    assert all(url.startswith(("file:", "data:")) for url in shown["requests"])  # type: ignore[union-attr]

"""The daily worklist on a tiny fleet: end-of-day points, ranking, alerts, reasons, and which days are complete."""

from __future__ import annotations

from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.modelling.train import make_pipeline
from pdm_assets.lib.planning.fleet_risk import Champion, complete_days, day_summary, fleet_worklists
from pdm_assets.lib.planning.report import render_report
from pdm_assets.lib.planning.storage import read_worklists, stored_days, write_worklists
from pdm_assets.lib.synthetic.simulate import generate_fleet


def test_complete_days() -> None:
    first = date(2015, 1, 1)
    assert complete_days(datetime(2015, 1, 5, 23), None, first) == [date(2015, 1, 5)]  # first sight: last day only
    assert complete_days(datetime(2015, 1, 5, 22), None, first) == [date(2015, 1, 4)]  # 5th not complete yet
    assert complete_days(datetime(2015, 1, 5, 23), date(2015, 1, 2), first) == [date(2015, 1, d) for d in (3, 4, 5)]
    assert complete_days(datetime(2015, 1, 5, 23), date(2015, 1, 5), first) == []
    assert complete_days(datetime(2014, 12, 31, 23), None, first) == []


@pytest.fixture(scope="module")
def fleet() -> dict[str, pd.DataFrame]:
    tables = generate_fleet(machines=6, days=40, seed=5)
    return {name: tables.table(name) for name in ("telemetry", "errors", "maint", "machines", "failures")}


@pytest.fixture(scope="module")
def champion(fleet: dict[str, pd.DataFrame]) -> Champion:
    """A pipeline fitted on random rows: only the mechanics are tested here, not the model's skill."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame({c: rng.normal(100, 30, 600) for c in FEATURE_COLUMNS if c != "model"})
    table["model"] = "model3"
    indicators = np.zeros((600, 4), dtype=bool)
    indicators[table["volt_mean_24h"].to_numpy() > 140, 0] = True
    indicators[table["pressure_mean_24h"].to_numpy() > 150, 2] = True
    pipeline = make_pipeline(list(FEATURE_COLUMNS), {"max_leaf_nodes": 7}, 1.0, 0).fit(table, indicators)
    return Champion(pipeline, "7", threshold=0.02, feature_columns=list(FEATURE_COLUMNS), horizon_hours=24)


def test_every_machine_ranked_each_day_with_reasons_for_alerts(fleet: dict[str, pd.DataFrame],
                                                               champion: Champion, tmp_path: object) -> None:
    days = [date(2015, 1, 10), date(2015, 1, 11), date(2015, 2, 20)]  # the last one is after the data: unscored
    worklist = fleet_worklists(champion, fleet["telemetry"], fleet["errors"], fleet["maint"], fleet["machines"],
                               days, explained_besides_alerts=2)
    assert len(worklist) == 6 * 3
    for _, rows in worklist.groupby("day"):
        assert rows["rank"].tolist() == list(range(1, 7))
        scored = rows["failure_probability"].dropna()
        assert scored.is_monotonic_decreasing
    late = worklist[worklist["day"] == date(2015, 2, 20)]
    assert late["failure_probability"].isna().all() and late["status"].str.contains("0 of the 22").all()
    scored = worklist[worklist["failure_probability"].notna()]
    assert (scored["alert"] == (scored["failure_probability"] >= 0.02)).all()
    assert (scored["scored_at"].dt.hour == 23).all()
    explained = (scored["alert"] | (scored["rank"] <= 2))
    assert (scored.loc[explained, "reasons"] != "").all() and (scored.loc[~explained, "reasons"] == "").all()
    assert scored["likely_component"].isin(["comp1", "comp2", "comp3", "comp4"]).all()
    summary = day_summary(worklist, capacity=1)
    assert summary["over_capacity"].tolist() == (summary["alerts"] > 1).tolist()

    folder = str(tmp_path)
    write_worklists(worklist, folder)
    assert stored_days(folder) == days
    back = read_worklists(folder, days[1], days[1])
    assert back["failure_probability"].notna().all()
    assert back["machineID"].tolist() == worklist[worklist["day"] == days[1]]["machineID"].tolist()

    page = render_report(day=str(days[1]), worklist=back, heatmap_png=b"\x89PNG", weekly=pd.DataFrame(),
                         outcomes_png=None, verdict="nothing yet", model_card_md="# Card\n\n| a |\n|---|\n| 1 |",
                         champion={"version": "7"}, capacity=1)
    assert page.count("<tr") == (1 + 6) + 2 and "<h1>Card</h1>" in page  # the worklist, then the card's table
    late_page = render_report(day=str(days[2]), worklist=read_worklists(folder, days[2], days[2]),
                              heatmap_png=b"", weekly=pd.DataFrame(), outcomes_png=None, verdict="",
                              model_card_md="", champion={}, capacity=1)
    assert "6 machine(s) not scored" in late_page and "nan" not in late_page
    assert "http://" not in page and "https://" not in page  # nothing to fetch: it opens from disk

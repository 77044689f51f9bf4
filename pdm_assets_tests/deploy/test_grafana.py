"""The provisioned Grafana dashboard: structure Grafana accepts, and PromQL that promtool parses."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pdm_assets_tests.support.paths import ROOT
from pdm_assets_tests.support.tools import promtool as find_promtool

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
# Grafana's own interval variables are not PromQL; they become a plain range for promtool.
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h"}
# What issue 6 asks the dashboard to show, as a metric (or recording rule) that some panel must query.
REQUIRED_SIGNALS = {
    "traffic": "bentoml_service_request_total",
    "latency quantiles": "job:pdm_predict_latency_seconds:p99_5m",
    "errors": "job:pdm_predict_errors:ratio_rate5m",
    "alert rate": "job:pdm_prediction_alerts:ratio_rate1h",
    "probability distribution": "pdm_failure_probability_bucket",
    "drift per feature": "pdm_feature_drift_psi",
    "model version": "pdm_model_info",
}


def datasource_uids() -> set[str]:
    uids = set()
    for path in (GRAFANA / "provisioning" / "datasources").glob("*.yml"):
        uids |= {d["uid"] for d in yaml.safe_load(path.read_text())["datasources"]}
    return uids


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["title"], t["expr"]) for p in query_panels(dashboard) for t in p["targets"]]


def as_promql(expr: str) -> str:
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    return expr


@pytest.fixture(params=DASHBOARDS, ids=lambda p: p.name)
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    return json.loads(request.param.read_text())


def test_there_is_a_dashboard_and_the_provider_loads_its_folder() -> None:
    assert DASHBOARDS
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "pdm.yml").read_text())
    assert provider["apiVersion"] == 1
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards/pdm"
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    volumes = compose["services"]["grafana"]["volumes"]
    assert any(v.endswith(":/var/lib/grafana/dashboards/pdm:ro") and "grafana/dashboards" in v for v in volumes)


def test_dashboard_structure(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] and dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    uids = datasource_uids()
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert {"x", "y", "w", "h"} <= set(grid), panel["title"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, f"{panel['title']} leaves the 24-column grid"
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"timeseries", "stat", "table", "heatmap", "gauge", "bargauge"}, panel["title"]
        assert panel["datasource"]["uid"] in uids, f"{panel['title']} uses an unprovisioned datasource"
        assert panel["targets"], f"{panel['title']} has no query"
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_panels_do_not_overlap(dashboard: dict[str, Any]) -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]


def test_the_dashboard_shows_every_required_signal(dashboard: dict[str, Any]) -> None:
    queried = " ".join(expr for _, expr in expressions(dashboard))
    missing = {what: metric for what, metric in REQUIRED_SIGNALS.items()
               if not re.search(rf"(?<![\w:]){re.escape(metric)}(?![\w:])", queried)}
    assert not missing


def test_every_panel_query_parses_as_promql(dashboard: dict[str, Any], tmp_path: Path) -> None:
    promtool = find_promtool()
    exprs = expressions(dashboard)
    rules = {"groups": [{"name": "dashboard-queries", "rules": [
        {"record": f"dashboard:query_{i}", "expr": as_promql(expr)} for i, (_, expr) in enumerate(exprs)
    ]}]}
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(rules))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in done.stdout


def test_an_invalid_query_would_be_caught(tmp_path: Path) -> None:
    """The parse check above is only worth something if promtool rejects a broken expression."""
    promtool = find_promtool()
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"record": "dashboard:broken", "expr": as_promql("sum by (le) (rate(x[$__rate_interval])")}]}]}))
    done = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode != 0

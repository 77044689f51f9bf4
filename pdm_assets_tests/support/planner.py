"""Helpers of the planner's end-to-end tests: the definitions with resources from the environment, a run of
`score_fleet_days` over a range of days, and the report page's screenshot in headless Chromium."""

from __future__ import annotations

import time
from collections.abc import Set
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg

from pdm_assets.defs.resources import build_resources
from pdm_assets.settings import get_settings
from pdm_assets_tests.support.paths import CHROMIUM
from pdm_assets_tests.support.project import materialize_definitions

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PIPELINE = dg.AssetSelection.groups("ingest", "features", "training")
MAX_TICKS = 8


def project_defs() -> dg.Definitions:
    """The code location's definitions, with resources from the PDM_ environment of the moment."""
    from pdm_assets.definitions import defs

    loaded = defs.load_fn()
    return dg.Definitions(assets=loaded.assets, asset_checks=loaded.asset_checks, jobs=loaded.jobs,
                          sensors=loaded.sensors, resources=build_resources(get_settings()))



def score_days(defs: dg.Definitions, instance: dg.DagsterInstance, first: date, last: date,
               tags: dict[str, str] | None = None) -> tuple[dg.ExecuteInProcessResult, float]:
    """fleet_risk for the days first..last in one run (as a single-run backfill does); returns the seconds."""
    range_tags = {"dagster/asset_partition_range_start": first.isoformat(),
                  "dagster/asset_partition_range_end": last.isoformat()}
    started = time.perf_counter()
    result = defs.resolve_job_def("score_fleet_days").execute_in_process(
        instance=instance, tags={**range_tags, **(tags or {})})
    return result, time.perf_counter() - started


def screenshot(page_path: Path, image: Path) -> dict[str, object]:
    """Open the page from disk in headless Chromium, save a full-page screenshot, and return what is on it."""
    from playwright.sync_api import sync_playwright

    image.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.resolve().as_uri())
            page.wait_for_load_state("load")
            found = {
                "worklist_rows": page.locator("#worklist tbody tr").count(),
                "alert_rows": page.locator("#worklist tbody tr.alert").count(),
                "images": page.eval_on_selector_all(
                    "img", "els => els.map(e => [e.id || e.alt, e.complete && e.naturalWidth > 0])"),
                "reasons": page.locator("ul.reasons li").count(),
                "outcome_rows": page.locator("#outcomes tbody tr").count(),
                "headings": page.locator("h2").all_inner_texts(),
                "requests": requests,
            }
            page.screenshot(path=str(image), full_page=True)
        finally:
            browser.close()
    return found


def tick_until_quiet(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: Any, not_run: Set[str]
                     ) -> list[set[str]]:
    """Evaluate automation and run what it requests, except `not_run` (asset or check names), until quiet.

    The same loop as e2e/test_drift_loop.py's, with a list of what not to run."""
    ticks: list[set[str]] = []
    for _ in range(MAX_TICKS):
        result = dg.evaluate_automation_conditions(defs, instance, cursor=cursor)
        cursor = result.cursor
        keys = {r.key for r in result.results if r.true_subset.size}
        if not keys:
            return ticks
        ticks.append({k.to_user_string() for k in keys})
        wanted = [k for k in keys if k.to_user_string() not in not_run]
        assets = [k for k in wanted if isinstance(k, dg.AssetKey)]
        checks = [k for k in wanted if isinstance(k, dg.AssetCheckKey)]
        if not assets and not checks:
            return ticks
        # an asset's selection brings its checks along: those not to run are taken out again
        skipped = [dg.AssetCheckKey(dg.AssetKey(asset), check)
                   for asset, check in (name.split(":", 1) for name in not_run if ":" in name)]
        selection = (dg.AssetSelection.assets(*assets) | dg.AssetSelection.checks(*checks)) - dg.AssetSelection.checks(
            *skipped)
        materialize_definitions(defs, selection, instance, raise_on_error=False)
    raise AssertionError(f"automation still requesting after {MAX_TICKS} ticks: {ticks}")

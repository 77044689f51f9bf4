"""The Dagster UI as a user sees it: `dagster dev` on a materialized small fleet, driven by headless Chromium."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pdm_assets_tests.support.paths import CHROMIUM, ROOT
from pdm_assets_tests.support.processes import free_port
from pdm_assets_tests.support.project import load_defs

GROUPS = ("ingest", "features", "training", "serving")
STARTUP_SECONDS = 180

pytestmark = pytest.mark.browser  # skipped without Chromium (conftest.py), failed under PDM_CI_REQUIRE


def wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dagster dev exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(1)
    raise AssertionError(f"{url} did not answer within {STARTUP_SECONDS} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A materialized small fleet in a temporary DAGSTER_HOME, served by `dagster dev`."""
    project = tmp_path_factory.mktemp("ui")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PDM_")},
        "DAGSTER_HOME": str(project / "home"),
        "PDM_DATA_SOURCE": "synthetic",
        "PDM_SYNTHETIC_MACHINES": "12",  # enough failures for a meaningful evaluation and a champion
        "PDM_SYNTHETIC_DAYS": "100",
        "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlruns' / 'mlflow.db'}",
        "PDM_REPORTS_DIR": str(project / "reports"),
        "PDM_LANDING_DIR": str(project / "landing"),
        "PDM_BENTOML_HOME": str(project / "bentoml_home"),
    }
    (project / "home").mkdir()
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        patch.chdir(project)
        defs = load_defs()
        with dg.DagsterInstance.get() as instance:
            result = dg.materialize(
                list(defs.assets or []),
                selection=dg.AssetSelection.groups("ingest", "features", "training"),
                resources=defs.resources,
                instance=instance,
            )
            assert result.success

    port = free_port()
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent))
    assert dagster is not None
    log = project / "dagster-dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [dagster, "dev", "-w", str(ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
            cwd=project,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(f"http://127.0.0.1:{port}/server_info", process, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)


@pytest.fixture(scope="module")
def screenshots(artifacts: Path) -> Path:
    return artifacts / "ui"


@pytest.fixture(scope="module")
def page(dagster_ui: str, screenshots: Path) -> Iterator[object]:
    import playwright.sync_api as playwright_api

    screenshots.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        yield context.new_page()
        browser.close()


def open_page(page, url: str) -> None:  # type: ignore[no-untyped-def]
    """Go to a UI page and close the first-visit community dialog if it shows."""
    page.goto(url, wait_until="networkidle")
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()


def test_asset_graph_shows_every_group(page, dagster_ui: str, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    open_page(page, f"{dagster_ui}/asset-groups")
    for group in GROUPS:
        page.get_by_text(group, exact=True).first.wait_for(timeout=60_000)
    page.screenshot(path=str(screenshots / "asset_graph.png"))
    text = page.inner_text("body")
    assert all(group in text for group in GROUPS)


def test_evaluation_metadata_renders_its_plots(page, dagster_ui: str, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    open_page(page, f"{dagster_ui}/assets/evaluation")
    page.get_by_text("row_pr_auc").first.wait_for(timeout=60_000)
    rows = page.locator("tr", has_text="plot_")
    rows.first.wait_for(timeout=30_000)
    shown = 0
    for index in range(rows.count()):
        rows.nth(index).get_by_text("Show Markdown").click()
        image = page.locator("img[src^='data:image/png']").first
        image.wait_for(timeout=30_000)
        assert image.evaluate("img => img.naturalWidth") > 100
        if shown == 0:
            page.wait_for_timeout(800)  # let the dialog finish fading in
            page.screenshot(path=str(screenshots / "evaluation_plot.png"))
        shown += 1
        page.keyboard.press("Escape")
        page.locator("img[src^='data:image/png']").first.wait_for(state="detached", timeout=10_000)
    assert shown >= 5  # PR curve, calibration, confusion matrix, lead times, feature importance


def test_sensors_page_lists_both_sensors_running(page, dagster_ui: str, screenshots: Path) -> None:  # type: ignore[no-untyped-def]
    open_page(page, f"{dagster_ui}/automation")
    for sensor in ("landing_sensor", "automation_sensor"):
        name = page.get_by_text(sensor, exact=True).first
        name.wait_for(timeout=60_000)
        row = name.locator("xpath=ancestor::*[count(.//input[@type='checkbox']) >= 2][1]")
        assert row.locator("input[type=checkbox]").last.is_checked(), f"{sensor} is not running"
    page.screenshot(path=str(screenshots / "sensors.png"), full_page=True)

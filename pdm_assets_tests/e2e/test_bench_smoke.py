"""The benchmark harness end to end on tiny fleets with seconds of load: every figure is produced.

Numbers here mean nothing (two tiny fleets, a loaded test machine); `make bench` measures. This only checks
that `python -m pdm_assets_tests.benchmarks` runs the pipeline fleets, both servers and the profile, and writes
reports/benchmarks.json with every stable key holding a positive finite number, and the Markdown report.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from typing import Any

import pytest

from pdm_assets_tests.benchmarks.pipeline import clean_environ
from pdm_assets_tests.support.paths import ROOT

SERVER_KEYS = ("p50_ms", "p95_ms", "p99_ms", "max_rps_1_worker", "max_rps_2_workers", "batch100_ms_per_history")
FLEET_KEYS = ("machines", "telemetry_rows", "seconds", "peak_rss_mb")


def positive_finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("bench")
    env = clean_environ()
    done = subprocess.run(
        [sys.executable, "-m", "pdm_assets_tests.benchmarks", "--smoke", "--out", str(root / "reports"),
         "--workdir", str(root / "work")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500, check=False,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    report = root / "reports" / "benchmarks.json"
    markdown = root / "reports" / "benchmarks.md"
    assert report.exists() and markdown.exists(), done.stdout[-3000:]
    loaded: dict[str, Any] = json.loads(report.read_text())
    loaded["_markdown"] = markdown.read_text()
    return loaded


def test_every_fleet_has_seconds_per_step_and_peak_rss(figures: dict[str, Any]) -> None:
    assert [row["machines"] for row in figures["pipeline"]] == [10, 20]
    for row in figures["pipeline"]:
        assert all(positive_finite(row[key]) for key in FLEET_KEYS), row
        steps = row["per_asset_seconds"]
        assert {"raw_tables", "validated_tables", "features", "labels", "model", "evaluation"} <= set(steps)
        assert all(positive_finite(seconds) for seconds in steps.values()), steps
        assert "bento" not in steps and "bento_container" not in steps
    assert math.isfinite(figures["growth_exponent"])


def test_both_servers_and_the_floor_have_every_figure(figures: dict[str, Any]) -> None:
    serving = figures["serving"]
    for side in ("ours", "peer"):
        assert all(positive_finite(serving[side][key]) for key in SERVER_KEYS), serving[side]
        assert serving[side]["failures"] == 0
        assert serving[side]["max_abs_diff_to_in_process"] < 1e-9  # the same model answers the same
    assert positive_finite(serving["floor"]["predict_one_row_ms"])
    assert positive_finite(serving["floor"]["features_one_history_ms"])
    assert positive_finite(serving["throughput_ratio"])


def test_machine_profile_and_markdown_are_written(figures: dict[str, Any]) -> None:
    machine = figures["machine"]
    assert positive_finite(machine["cores"]) and positive_finite(machine["memory_gb"]) and machine["cpu_model"]
    assert figures["timestamp"]
    assert len(figures["profile"]["top"]) == 5
    markdown = figures["_markdown"]
    for heading in ("## Targets", "## Pipeline scale", "## Profile of the feature code", "## Serving"):
        assert heading in markdown

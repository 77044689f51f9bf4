"""One fleet's pipeline, materialized in a fresh process: seconds per step, peak RSS, rows.

Run by the benchmark as `python -m pdm_assets_tests.benchmarks.pipeline MACHINES DAYS WORKDIR OUT.json` so that each
fleet's peak RSS is its own. WORKDIR becomes the cwd and holds the Dagster home, MLflow store and reports;
the serving benchmark later reuses the champion it registers.
"""

from __future__ import annotations

import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

# The pipeline's lifecycle stages; `serving` (bento, bento_container) is outside the scale figures.
PIPELINE_GROUPS = ("ingest", "features", "training")
RSS_SAMPLE_SECONDS = 0.1
PROGRESS_FILE = "pipeline_progress.json"


@dataclass
class FleetResult:
    """What one fleet's run measured."""

    machines: int
    days: int
    telemetry_rows: int
    seconds: float  # the whole graph: from the first step's start to the last step's end
    wall_seconds: float  # the whole materialize() call, Dagster's own run overhead included
    peak_rss_mb: float
    per_asset_seconds: dict[str, float]
    per_asset_peak_rss_mb: dict[str, float] = field(default_factory=dict)
    per_asset_io_seconds: dict[str, float] = field(default_factory=dict)  # in the IO manager (pickling)
    success: bool = True
    feature_rows: int = 0
    cpu_seconds: float = math.nan
    status: str = "done"  # or "timeout": killed at the benchmark's time budget, steps as far as they got


def project_env(workdir: Path, machines: int, days: int) -> dict[str, str]:
    """The PDM_ settings of an isolated project in `workdir` on a synthetic fleet."""
    return {
        "DAGSTER_HOME": str(workdir / ".dagster_home"),
        "PDM_DATA_SOURCE": "synthetic",
        "PDM_SYNTHETIC_MACHINES": str(machines),
        "PDM_SYNTHETIC_DAYS": str(days),
        "PDM_MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlruns' / 'mlflow.db'}",
        "PDM_REPORTS_DIR": str(workdir / "reports"),
        "PDM_BENTOML_HOME": str(workdir / "bentoml_home"),
        "PDM_RAW_CACHE_DIR": str(workdir / "data" / "raw"),
        "PDM_LANDING_DIR": str(workdir / "data" / "landing"),
        "PDM_METRICS_DIR": str(workdir / "reports" / "metrics"),
    }


def clean_environ() -> dict[str, str]:
    """This process's environment without any PDM_ setting, so a project's settings are only its own."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PDM_", "DAGSTER_HOME", "MLFLOW_"))}


def run_fleet(machines: int, days: int, workdir: Path, timeout_s: float) -> FleetResult:
    """Materialize the pipeline for one fleet in a child process; its result, or what its log shows at the timeout."""
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "pipeline_result.json"
    log = workdir / "pipeline.log"
    env = {**clean_environ(), **project_env(workdir, machines, days)}
    command = [sys.executable, "-m", "pdm_assets_tests.benchmarks.pipeline", str(machines), str(days), str(workdir),
               str(out)]
    started = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=sink, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        returncode = process.wait(timeout=max(timeout_s, 1.0))
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        steps = steps_from_log(log.read_text(errors="replace"))
        elapsed = round(time.monotonic() - started, 1)
        progress = workdir / PROGRESS_FILE
        peak = json.loads(progress.read_text())["peak_rss_mb"] if progress.exists() else math.nan
        return FleetResult(machines, days, telemetry_rows=machines * days * 24, seconds=elapsed,
                           wall_seconds=elapsed, peak_rss_mb=peak, per_asset_seconds=steps, success=False,
                           status="timeout")
    if returncode != 0 or not out.exists():
        tail = log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"pipeline for {machines} machines x {days} days exited {returncode}:\n{tail}")
    return FleetResult(**json.loads(out.read_text()))


_STEP_DONE = re.compile(r'STEP_SUCCESS - Finished execution of step "([^"]+)" in ([0-9hms.]+)\.')


def steps_from_log(text: str) -> dict[str, float]:
    """Seconds of the steps that finished, from Dagster's log lines ('in 348ms', 'in 12.14s', 'in 5m20s')."""
    steps = {}
    for step, duration in _STEP_DONE.findall(text):
        steps[step] = round(_duration_seconds(duration), 3)
    return steps


def _duration_seconds(text: str) -> float:
    if text.endswith("ms"):
        return float(text[:-2]) / 1000.0
    total = 0.0
    for value, unit in re.findall(r"([0-9.]+)([hms])", text):
        total += float(value) * {"h": 3600.0, "m": 60.0, "s": 1.0}[unit]
    return total


def growth_exponent(rows: Sequence[float], seconds: Sequence[float]) -> float:
    """k in seconds ∝ rows^k: the least-squares slope of log(seconds) on log(rows)."""
    points = [(math.log(r), math.log(s)) for r, s in zip(rows, seconds, strict=True) if r > 0 and s > 0]
    if len(points) < 2:
        return float("nan")
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in points)
    return sxy / sxx if sxx > 0 else float("nan")


class _RssSampler:
    """The process's resident set size every RSS_SAMPLE_SECONDS, to attribute the peak to a step; the peak so
    far is also written to `progress` every second, so a run stopped at the time budget still has it."""

    def __init__(self, progress: Path | None = None) -> None:
        import psutil

        self._process = psutil.Process()
        self._progress = progress
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        written = 0.0
        while not self._stop.is_set():
            now = time.time()
            self.samples.append((now, self._process.memory_info().rss / 2**20))
            if self._progress is not None and now - written >= 1.0:
                peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                self._progress.write_text(json.dumps({"peak_rss_mb": round(peak, 1)}))
                written = now
            self._stop.wait(RSS_SAMPLE_SECONDS)

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> float:
        inside = [rss for t, rss in self.samples if start <= t <= end + RSS_SAMPLE_SECONDS]
        return max(inside, default=0.0)


def step_windows(instance: Any, run_id: str) -> tuple[dict[str, tuple[float, float]], dict[str, float]]:
    """(start, end) wall-clock times of each step of a run, from its STEP_START and STEP_SUCCESS events, and the
    seconds each step spent in the IO manager: loading inputs (up to each LOADED_INPUT) and storing outputs
    (STEP_OUTPUT to HANDLED_OUTPUT)."""
    import dagster as dg

    kinds = dg.DagsterEventType
    starts: dict[str, float] = {}
    windows: dict[str, tuple[float, float]] = {}
    io: dict[str, float] = {}
    previous: dict[str, float] = {}
    yielded: dict[tuple[str, str], float] = {}
    for entry in instance.all_logs(run_id):
        event = entry.dagster_event
        if event is None or event.step_key is None:
            continue
        step, at = event.step_key, entry.timestamp
        if event.event_type == kinds.STEP_START:
            starts[step] = at
        elif event.event_type in (kinds.STEP_SUCCESS, kinds.STEP_FAILURE):
            windows[step] = (starts.get(step, at), at)
        elif event.event_type == kinds.LOADED_INPUT:
            io[step] = io.get(step, 0.0) + at - previous.get(step, at)
        elif event.event_type == kinds.STEP_OUTPUT:
            yielded[(step, event.step_output_data.output_name)] = at
        elif event.event_type == kinds.HANDLED_OUTPUT:
            output = event.event_specific_data.output_name
            io[step] = io.get(step, 0.0) + at - yielded.get((step, output), at)
        previous[step] = at
    return windows, io


def materialize_pipeline(machines: int, days: int, progress: Path | None = None) -> FleetResult:
    """Materialize the ingest, features and training groups in this process (its cwd and env are the project's)."""
    import dagster as dg

    from pdm_assets.definitions import defs as load

    defs = load.load_fn()  # `@dg.definitions` makes a loader: the code location's Definitions
    instance = dg.DagsterInstance.ephemeral()
    cpu_start = time.process_time()
    with _RssSampler(progress) as sampler:
        wall_start = time.perf_counter()
        result = dg.materialize(
            cast(list[Any], list(defs.assets or [])),
            selection=dg.AssetSelection.groups(*PIPELINE_GROUPS),
            resources=defs.resources,
            instance=instance,
            raise_on_error=False,
        )
        wall = time.perf_counter() - wall_start
    windows, io = step_windows(instance, result.run_id)
    telemetry_rows = len(result.output_for_node("raw_tables", "raw_telemetry")) if result.success else 0
    feature_rows = len(result.output_for_node("features")) if result.success else 0
    first = min((start for start, _ in windows.values()), default=0.0)
    last = max((end for _, end in windows.values()), default=0.0)
    return FleetResult(
        machines=machines,
        days=days,
        telemetry_rows=telemetry_rows,
        seconds=round(last - first, 3),
        wall_seconds=round(wall, 3),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        per_asset_seconds={step: round(end - start, 3) for step, (start, end) in windows.items()},
        per_asset_peak_rss_mb={step: round(sampler.peak_between(s, e), 1) for step, (s, e) in windows.items()},
        per_asset_io_seconds={step: round(io.get(step, 0.0), 3) for step in windows},
        success=result.success,
        feature_rows=feature_rows,
        cpu_seconds=round(time.process_time() - cpu_start, 2),
    )


def main(argv: Sequence[str]) -> None:
    machines, days, workdir, out = int(argv[0]), int(argv[1]), Path(argv[2]), Path(argv[3])
    os.chdir(workdir)
    fleet = materialize_pipeline(machines, days, progress=workdir / PROGRESS_FILE)
    out.write_text(json.dumps(asdict(fleet), indent=2))
    if not fleet.success:
        raise SystemExit(f"the pipeline failed for {machines} machines; see the log above")


if __name__ == "__main__":
    main(sys.argv[1:])

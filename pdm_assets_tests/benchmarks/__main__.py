"""`python -m pdm_assets_tests.benchmarks`: pipeline scale, the feature profile and serving speed, in a bounded time.

Writes reports/benchmarks.json and reports/benchmarks.md (PDM_REPORTS_DIR, or --out). Every fleet runs in
its own process in a temporary project (cwd, Dagster home, MLflow store, BentoML store); the serving part
uses the champion of the smallest fleet. `--smoke` is the same on tiny fleets with seconds of load.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pdm_assets_tests.benchmarks import machine, report
from pdm_assets_tests.benchmarks.fanout import FANOUT_PLANS, run_fanout
from pdm_assets_tests.benchmarks.pipeline import FleetResult, clean_environ, growth_exponent, project_env, run_fleet
from pdm_assets_tests.benchmarks.serving import MAX_RPS_USERS, LoadPlan, measure_both


@dataclass(frozen=True)
class Preset:
    """Fleet sizes, days, the profiled fleet and the load plan of one kind of run."""

    fleets: tuple[int, ...]
    days: int
    profile_machines: int
    plan: LoadPlan


FULL = Preset((100, 300, 1000), 365, 300, LoadPlan())
# The smallest fleets the training code fits reliably (it needs failures of two components in training).
# Serving needs the 10-machine fleet's version to pass the gate: at 90 days it does (the serving tests' fleet);
# at 120 days its early warning first-alerts no more test events than the error rule, and there is no champion.
SMOKE = Preset((10, 20), 90, 5, LoadPlan(rate_rps=20, rate_seconds=5, max_seconds=3, batch_seconds=2))
SERVING_POINTS = 100  # histories prepared: the batch, and the pool the single requests rotate through
SERVING_RESERVE_S = 260  # kept from the budget for serving: bento build, four server starts, locust runs
PROFILE_RESERVE_S = 25


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m pdm_assets_tests.benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny fleets and seconds of load (the test suite's)")
    parser.add_argument("--fleets", type=lambda s: tuple(int(x) for x in s.split(",")), default=None,
                        help="machines per fleet, comma separated (default 100,300,1000)")
    parser.add_argument("--days", type=int, default=None, help="days per fleet (default 365)")
    parser.add_argument("--budget-seconds", type=float, default=900.0,
                        help="the whole run's time budget; a fleet still running at its share is stopped")
    parser.add_argument("--skip-pipeline", action="store_true",
                        help="reuse the trained projects already in --workdir (to rerun serving or the profile)")
    parser.add_argument("--skip-serving", action="store_true")
    parser.add_argument("--skip-profile", action="store_true")
    parser.add_argument("--skip-fanout", action="store_true", help="leave out the machine-group fan-out")
    parser.add_argument("--fanout-only", action="store_true",
                        help="only the fan-out (pipeline, serving and profile left out)")
    parser.add_argument("--fanout-budget-seconds", type=float, default=3600.0,
                        help="the fan-out's own time budget (its three plans: about 40 minutes on 2 cores)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default PDM_REPORTS_DIR)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the fleets' projects here (default: temp)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    preset = SMOKE if args.smoke else FULL
    fleets: tuple[int, ...] = args.fleets or preset.fleets
    days: int = args.days or preset.days
    plan = preset.plan
    from pdm_assets.settings import get_settings

    out_dir = (args.out or get_settings().reports_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deadline = started + args.budget_seconds
    root = args.workdir.resolve() if args.workdir else Path(tempfile.mkdtemp(prefix="pdm-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {**machine.describe(), "load": {}},
        "settings": {"fleets": list(fleets), "days": days, "smoke": args.smoke, "budget_seconds": args.budget_seconds,
                     "plan": asdict(plan)},
        "pipeline": [],
        "growth_exponent": math.nan,
        "notes": [],
    }
    try:
        if args.fanout_only:
            args.skip_pipeline = args.skip_serving = args.skip_profile = True
        reserve = (0 if args.skip_serving else SERVING_RESERVE_S) + (0 if args.skip_profile else PROFILE_RESERVE_S)
        if args.fanout_only:
            pass
        elif args.skip_pipeline:
            if args.workdir is None:
                raise SystemExit("--skip-pipeline needs --workdir holding the fleets' projects of an earlier run")
        else:
            _pipeline(figures, fleets, days, root, deadline - reserve)
        if not args.skip_serving:
            serve_fleet = min(fleets)
            _serving(figures, root / f"fleet_{serve_fleet}", serve_fleet, plan, out_dir)
        if not args.skip_profile:
            _profile(figures, preset.profile_machines, days, root, out_dir, deadline)
        # The smoke run leaves the fan-out to its own test (ops/test_fanout_daemon.py): a daemon stack per plan.
        if not (args.skip_fanout or args.smoke):
            meter = machine.LoadMeter()
            figures["fanout"] = run_fanout(FANOUT_PLANS, root, time.monotonic() + args.fanout_budget_seconds)
            figures["machine"]["load"]["fan-out"] = meter.read()
    finally:
        figures["duration_seconds"] = round(time.monotonic() - started, 1)
        figures["targets"] = report.evaluate_targets(figures)
        write(figures, out_dir)
        if args.workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    if not args.smoke and figures["targets"]:
        missed = [t["what"] for t in figures["targets"].values() if t["status"] == "missed"]
        print(f"[bench] targets missed: {missed or 'none'}", flush=True)
    return figures


def _pipeline(figures: dict[str, Any], fleets: Sequence[int], days: int, root: Path, deadline: float) -> None:
    """Each fleet in ascending size; a fleet still running at the deadline is stopped and marked."""
    results: list[FleetResult] = []
    for machines in sorted(fleets):
        meter = machine.LoadMeter()
        print(f"[bench] pipeline: {machines} machines x {days} days", flush=True)
        result = run_fleet(machines, days, root / f"fleet_{machines}", timeout_s=deadline - time.monotonic())
        figures["machine"]["load"][f"pipeline {machines}"] = meter.read()
        results.append(result)
        figures["pipeline"].append(asdict(result))
        print(f"[bench]   {result.status}: {result.seconds:.1f} s, peak RSS {result.peak_rss_mb:.0f} MB, "
              f"steps {result.per_asset_seconds}", flush=True)
        if result.status != "done":
            figures["notes"].append(f"the {machines}-machine fleet was stopped at the time budget after "
                                    f"{result.seconds:.0f} s; its steps are those that finished")
            break
    done = [r for r in results if r.status == "done"]
    figures["growth_exponent"] = growth_exponent([r.telemetry_rows for r in done], [r.seconds for r in done])
    steps = {step for r in done for step in r.per_asset_seconds}
    figures["growth_exponent_by_step"] = {
        step: growth_exponent([r.telemetry_rows for r in done], [r.per_asset_seconds.get(step, 0.0) for r in done])
        for step in sorted(steps)
    }


def _serving(figures: dict[str, Any], project: Path, machines: int, plan: LoadPlan, out_dir: Path) -> None:
    """Bento and bodies from the project's champion, the in-process floor, then both servers under load."""
    meter = machine.LoadMeter()
    days = figures["settings"]["days"]
    work = project / "serving"
    env = {**clean_environ(), **project_env(project, machines, days)}
    print("[bench] serving: building the bento and the request bodies", flush=True)
    done = subprocess.run([sys.executable, "-m", "pdm_assets_tests.benchmarks.prepare", str(work), str(SERVING_POINTS)],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"serving preparation failed:\n{(done.stdout + done.stderr)[-4000:]}")
    prepared = json.loads((work / "prepared.json").read_text())
    print(f"[bench]   floor {prepared['floor']}", flush=True)
    server_env = {k: v for k, v in env.items() if k != "DAGSTER_HOME"}
    serving = measure_both(prepared, work, work, plan, server_env)
    floor = prepared["floor"]
    serving["floor"] = floor
    ours_floor = floor["parse_one_history_ms"] + floor["features_one_history_ms"] + floor["predict_one_row_ms"]
    serving["distance_from_floor"] = {
        "ours (parse + features + predict)": _gap(ours_floor, serving["ours"]["p50_ms"]),
        "peer (predict)": _gap(floor["predict_one_row_ms"], serving["peer"]["p50_ms"]),
    }
    serving["setup"] = {
        "model_uri": prepared["model_uri"], "registered_version": prepared["registered_version"],
        "bento_tag": prepared["bento_tag"], "trained_on_machines": machines,
        "telemetry_rows_per_history": prepared["telemetry_rows_per_history"],
        "distinct_requests": prepared["histories"], "bento_build_seconds": prepared["bento_build_seconds"],
        "load_generator": "locust FastHttpUser, one process", "max_rps_users": MAX_RPS_USERS, **asdict(plan),
    }
    figures["serving"] = serving
    figures["machine"]["load"]["serving"] = meter.read()
    print(f"[bench]   ours {serving['ours']}\n[bench]   peer {serving['peer']}", flush=True)


def _gap(floor_ms: float, p50_ms: float) -> dict[str, float]:
    return {"floor_ms": floor_ms, "p50_ms": p50_ms, "overhead_ms": p50_ms - floor_ms,
            "ratio": p50_ms / floor_ms if floor_ms else math.nan}


def _profile(figures: dict[str, Any], machines: int, days: int, root: Path, out_dir: Path, deadline: float) -> None:
    """pyinstrument over the feature code in its own process; the tree lands beside the report."""
    meter = machine.LoadMeter()
    work = root / "profile"
    print(f"[bench] profile: feature code on {machines} machines", flush=True)
    env = {**clean_environ(), **project_env(work, machines, days)}
    timeout = max(deadline - time.monotonic(), PROFILE_RESERVE_S)
    command = [sys.executable, "-m", "pdm_assets_tests.benchmarks.profile", str(machines), str(days), str(work)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"profile failed:\n{(done.stdout + done.stderr)[-4000:]}")
    figures["profile"] = json.loads((work / "profile.json").read_text())
    for suffix in ("txt", "html"):
        shutil.copyfile(work / f"profile.{suffix}", out_dir / f"benchmarks_profile.{suffix}")
    figures["machine"]["load"]["profile"] = meter.read()


def write(figures: dict[str, Any], out_dir: Path) -> None:
    """benchmarks.json (NaN as null) and benchmarks.md."""
    (out_dir / "benchmarks.json").write_text(json.dumps(_finite(figures), indent=2) + "\n")
    (out_dir / "benchmarks.md").write_text(report.render(figures))
    print(f"[bench] wrote {out_dir / 'benchmarks.json'} and {out_dir / 'benchmarks.md'}", flush=True)


def _finite(value: Any) -> Any:
    """JSON has no NaN: a figure that could not be measured is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


if __name__ == "__main__":
    main()

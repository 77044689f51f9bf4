"""The fan-out benchmark: a backfill of every machine group on Dagster's own engine, as on Kubernetes but on loopback.

Each plan writes a synthetic fleet as Parquet (support's PDM_DATA_DIR, a block of machines at a time), then starts
the fan-out stack (pdm_assets_tests/support/fanout.py): the real `dagster-daemon` with the QueuedRunCoordinator
(2 concurrent runs), the instance on a throwaway PostgreSQL, MLflow on the same server with artifacts on moto's
S3 API, and every run in its own empty directory. Asset values go to the S3 API, or to a local folder through the
same IO manager where moto (which holds objects in memory) cannot carry the fleet. The backfill covers the ingest,
features and training groups: each group's per-machine assets, then the fan-in model and baselines, each group's
scores, the evaluation and the promotion gate.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pdm_assets_tests.benchmarks.fleet_files import write_fleet
from pdm_assets_tests.benchmarks.pipeline import step_windows

PARTITION_TAG = "dagster/partition"
MAX_CONCURRENT_RUNS = 2
# The evaluation's figures compared across plans, with their bootstrap intervals.
QUALITY = ("event_recall", "false_alarms_per_100_machine_days", "row_pr_auc")


@dataclass(frozen=True)
class FanoutPlan:
    """One fleet and how it is cut; storage "s3" (moto's server) or "local" (a folder, same IO manager)."""

    machines: int
    days: int
    groups: int
    storage: str

    @property
    def name(self) -> str:
        return f"{self.machines} machines, {self.groups} group{'s' if self.groups > 1 else ''}"


# 250 machines a group at both sizes, so that a group's run is the same size whatever the fleet; one group at
# 1,000 machines is today's unpartitioned path, on the same engine, for the time and quality comparisons.
FANOUT_PLANS = (
    FanoutPlan(1000, 365, 1, "s3"),
    FanoutPlan(1000, 365, 4, "s3"),
    FanoutPlan(10_000, 365, 40, "local"),
)
SMOKE_PLANS = (FanoutPlan(12, 120, 3, "s3"),)


def run_plan(plan: FanoutPlan, work: Path, timeout_s: float) -> dict[str, Any]:
    """The plan's backfill, measured: wall time, every run's peak RSS and time, per group, the fan-in steps."""
    from pdm_assets_tests.support.fanout import Fleet, fanout_stack
    from pdm_assets_tests.support.postgres import running_cluster

    data = write_fleet(work / "data", plan.machines, plan.days)
    # The backfill alone: the automation sensor ticks once at the start (nothing to do yet), then not again.
    settings = {"PDM_DATA_SOURCE": "local", "PDM_DATA_DIR": str(data.folder), "PDM_SENSOR_INTERVAL_SECONDS": "3600"}
    if plan.storage == "local":
        settings["PDM_STORAGE_URI"] = str(work / "store")
    fleet = Fleet(machines=plan.machines, days=plan.days, groups=plan.groups, max_concurrent_runs=MAX_CONCURRENT_RUNS,
                  settings=settings)
    with running_cluster() as cluster, fanout_stack(cluster, work / "stack", fleet) as stack:
        assets = stack.assets_of("ingest", "features", "training")
        submitted = time.time()
        backfill = stack.launch_backfill(assets, title=plan.name)
        run_ids = stack.wait_for_backfill(backfill, timeout=timeout_s)
        windows = stack.run_windows(run_ids)
        stats = stack.run_stats()
        runs = [_run_figures(stack.instance, run_id, windows[run_id], stats.get(run_id, {})) for run_id in run_ids]
        evaluation = stack.materializations("evaluation")[-1].metadata
        model = stack.materializations("model")[-1].metadata
    ended = max(r["ended"] for r in runs)
    return {
        "plan": asdict(plan),
        "storage": {"s3": "moto's S3 server (objects in memory)", "local": "a local folder, same IO manager"}[
            plan.storage],
        "telemetry_rows": data.rows["telemetry"],
        "data_generation_seconds": data.seconds,
        "wall_seconds": round(ended - submitted, 1),
        "runs": len(runs),
        "max_run_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "per_group_run_seconds": _per_group(runs),
        "fan_in": _fan_in(runs),
        "sample_rows_by_group": model.get("sample_rows_by_group", {}),
        "quality": {name: evaluation.get(name) for name in QUALITY} | {"ci": evaluation.get("ci", {})},
        "run_details": runs,
    }


def _run_figures(instance: Any, run_id: str, window: Any, stats: dict[str, Any]) -> dict[str, Any]:
    steps, _ = step_windows(instance, run_id)
    return {
        "run_id": run_id,
        "partition": window.tags.get(PARTITION_TAG),
        "steps": {step: round(end - start, 1) for step, (start, end) in steps.items()},
        "seconds": stats.get("wall_seconds"),
        "peak_rss_mb": stats.get("peak_rss_mb", float("nan")),
        "cpu_seconds": stats.get("cpu_seconds"),
        "queued_seconds": round((window.start or window.enqueued) - window.enqueued, 1),
        "ended": window.end or time.time(),
    }


def _per_group(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each group's runs (its per-machine assets, then its scores): seconds and peak RSS."""
    by_group: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        if run["partition"]:
            by_group[run["partition"]].append(run)
    seconds = {key: round(sum(r["seconds"] or 0.0 for r in group), 1) for key, group in sorted(by_group.items())}
    values = list(seconds.values())
    return {"groups": len(seconds), "median_seconds": _median(values), "max_seconds": max(values, default=None),
            "peak_rss_mb_max": max((r["peak_rss_mb"] for g in by_group.values() for r in g), default=None),
            "by_group": seconds}


def _fan_in(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fleet-level runs (no partition): each step's seconds and its run's peak RSS."""
    steps: dict[str, Any] = {}
    for run in runs:
        if run["partition"]:
            continue
        for step, seconds in run["steps"].items():
            steps[step] = {"seconds": seconds, "run_peak_rss_mb": run["peak_rss_mb"],
                           "run_seconds": run["seconds"]}
    return steps


def _median(values: list[float]) -> float | None:
    ordered = sorted(values)
    if not ordered:
        return None
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def run_fanout(plans: tuple[FanoutPlan, ...], root: Path, deadline: float) -> dict[str, Any]:
    """Every plan in order within the deadline; a plan that fails or runs out of time is recorded as such."""
    results: list[dict[str, Any]] = []
    for plan in plans:
        print(f"[bench] fan-out: {plan.name} x {plan.days} days, storage {plan.storage}", flush=True)
        left = deadline - time.monotonic()
        try:
            result = run_plan(plan, root / f"fanout_{plan.machines}_{plan.groups}", timeout_s=left)
        except AssertionError as failed:  # the harness's timeout or a failed run, with its logs
            results.append({"plan": asdict(plan), "status": "failed", "error": str(failed)[-3000:]})
            print(f"[bench]   failed: {str(failed)[:500]}", flush=True)
            continue
        results.append({**result, "status": "done"})
        print(f"[bench]   {result['wall_seconds']} s, {result['runs']} runs, largest run peak "
              f"{result['max_run_peak_rss_mb']} MB, fan-in {result['fan_in']}", flush=True)
    return {"plans": results, "comparisons": compare(results)}


def compare(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Peak RSS per run at 1,000 vs 10,000 machines, and the grouped 1,000-machine run's quality against one
    group's (intervals overlap: not separated)."""
    done = [r for r in results if r.get("status") == "done"]
    grouped = {r["plan"]["machines"]: r for r in done if r["plan"]["groups"] > 1}
    whole = next((r for r in done if r["plan"]["groups"] == 1), None)
    out: dict[str, Any] = {}
    if 1000 in grouped and 10_000 in grouped:
        out["peak_rss_ratio_10000_vs_1000"] = round(
            grouped[10_000]["max_run_peak_rss_mb"] / grouped[1000]["max_run_peak_rss_mb"], 2)
    if whole is not None and 1000 in grouped:
        out["quality_vs_one_group"] = {
            name: _overlap(whole["quality"], grouped[1000]["quality"], name)
            for name in ("event_recall", "false_alarms_per_100_machine_days")
        }
    return out


def _overlap(a: dict[str, Any], b: dict[str, Any], name: str) -> dict[str, Any]:
    ci_a, ci_b = a["ci"].get(name), b["ci"].get(name)
    separated = None if not (ci_a and ci_b) else bool(ci_a[1] < ci_b[0] or ci_b[1] < ci_a[0])
    return {"one_group": a.get(name), "one_group_ci": ci_a, "grouped": b.get(name), "grouped_ci": ci_b,
            "within_cis": None if separated is None else not separated}


def fanout_values(fanout: dict[str, Any]) -> dict[str, float | None]:
    """The fan-out targets' measured values (report.TARGETS)."""
    done = [r for r in fanout.get("plans", []) if r.get("status") == "done"]
    big = next((r for r in done if r["plan"]["machines"] == 10_000), None)
    quality = fanout.get("comparisons", {}).get("quality_vs_one_group", {})
    within = [q["within_cis"] for q in quality.values() if q["within_cis"] is not None]
    return {
        "fanout_10000_seconds": big["wall_seconds"] if big else None,
        "fanout_max_run_peak_rss": max((r["max_run_peak_rss_mb"] for r in done), default=None),
        "fanout_rss_ratio": fanout.get("comparisons", {}).get("peak_rss_ratio_10000_vs_1000"),
        "fanout_quality": float(all(within)) if within else None,
    }


def fanout_section(fanout: dict[str, Any]) -> list[str]:
    """The fan-out's tables for benchmarks.md: one row per plan, then each plan's fan-in steps."""
    plans = fanout.get("plans") or []
    if not plans:
        return []
    out = ["## Fan-out", "", f"A backfill of every machine group, {MAX_CONCURRENT_RUNS} runs at a time, on the "
           "real daemon (pdm_assets_tests/benchmarks/fanout.py).", "",
           "| plan | storage | telemetry rows | runs | wall s | largest run peak RSS MB | group median s | "
           "group max s | event recall [CI] | false alarms /100 md [CI] |", "|" + "---|" * 10]
    for row in plans:
        plan = FanoutPlan(**row["plan"])
        if row.get("status") != "done":
            out.append(f"| {plan.name} | – | – | – | {row.get('status')} | – | – | – | – | – |")
            continue
        groups, quality = row["per_group_run_seconds"], row["quality"]
        out.append(f"| {plan.name} | {row['storage']} | {row['telemetry_rows']:,} | {row['runs']} | "
                   f"{row['wall_seconds']:,.0f} | {row['max_run_peak_rss_mb']:,.0f} | {groups['median_seconds']} | "
                   f"{groups['max_seconds']} | {_with_ci(quality, 'event_recall')} | "
                   f"{_with_ci(quality, 'false_alarms_per_100_machine_days')} |")
    for row in plans:
        if row.get("status") == "done" and row["fan_in"]:
            out += ["", f"Fan-in steps, {FanoutPlan(**row['plan']).name}: "
                    + ", ".join(f"{step} {v['seconds']} s (run peak {v['run_peak_rss_mb']:,.0f} MB)"
                                for step, v in row["fan_in"].items())]
    out += ["", f"Comparisons: {fanout.get('comparisons', {})}", ""]
    return out


def _with_ci(quality: dict[str, Any], name: str) -> str:
    value, ci = quality.get(name), quality.get("ci", {}).get(name)
    if value is None:
        return "–"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci and None not in ci else "")

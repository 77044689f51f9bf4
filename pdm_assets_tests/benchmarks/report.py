"""reports/benchmarks.md from the figures in reports/benchmarks.json: the same numbers as tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from pdm_assets_tests.benchmarks.fanout import fanout_section, fanout_values
from pdm_assets_tests.benchmarks.serving import LoadPlan

# The pipeline steps in graph order; any other step found is listed after them.
STEP_ORDER = ("raw_tables", "validated_tables", "features", "labels", "model", "evaluation", "promotion")
MIB_PER_GB = 1000  # targets are in GB as people write them: 8 GB = 8000 MB

# key: (what, comparison, limit, unit); the display text and the check both come from here.
TARGETS: dict[str, tuple[str, str, float, str]] = {
    "pipeline_100_seconds": ("100 machines, whole graph", "≤", 60, "s"),
    "pipeline_1000_seconds": ("1,000 machines, whole graph", "≤", 600, "s"),
    "pipeline_1000_peak_rss": ("1,000 machines, peak RSS", "≤", 8, "GB"),
    "growth_exponent": ("growth exponent k (time ∝ rows^k)", "≤", 1.1, ""),
    "ours_p99": ("our p99 at 50 rps, single histories", "≤", 25, "ms"),
    "throughput_ratio": ("our throughput / peer's (1 worker)", "≥", 2, ""),
    "batch100": ("our batch of 100, per history", "≤", 2, "ms"),
    "fanout_10000_seconds": ("fan-out, 10,000 machines × 365 days, end to end", "≤", 1200, "s"),
    "fanout_max_run_peak_rss": ("fan-out, the largest run's peak RSS (any plan)", "≤", 3, "GB"),
    "fanout_rss_ratio": ("fan-out, largest run 10,000 vs 1,000 machines", "≤", 1.3, "×"),
    "fanout_quality": ("fan-out at 1,000: recall and false alarms within one group's CIs", "≥", 1, "(1 = yes)"),
}
UNIT_SCALE = {"GB": MIB_PER_GB}  # the measured value is in MB
MEETS = {"≤": lambda value, limit: value <= limit, "≥": lambda value, limit: value >= limit}


def evaluate_targets(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with the measured value and met / missed / not measured."""
    by_size = {row["machines"]: row for row in figures.get("pipeline", []) if row.get("status") == "done"}
    serving = figures.get("serving") or {}
    ours = serving.get("ours") or {}
    row100, row1000 = by_size.get(100), by_size.get(1000)
    values: dict[str, float | None] = {
        "pipeline_100_seconds": row100["seconds"] if row100 else None,
        "pipeline_1000_seconds": row1000["seconds"] if row1000 else None,
        "pipeline_1000_peak_rss": row1000["peak_rss_mb"] if row1000 else None,
        "growth_exponent": figures.get("growth_exponent"),
        "ours_p99": ours.get("p99_ms"),
        "throughput_ratio": serving.get("throughput_ratio"),
        "batch100": ours.get("batch100_ms_per_history"),
        **fanout_values(figures.get("fanout") or {}),
    }
    out = {}
    for key, (what, op, limit, unit) in TARGETS.items():
        value = values[key]
        ok = None if _missing(value) else MEETS[op](value, limit * UNIT_SCALE.get(unit, 1))
        out[key] = {"what": what, "target": f"{op} {limit:g} {unit}".rstrip(), "value": value,
                    "status": "not measured" if ok is None else ("met" if ok else "missed")}
    return out


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fmt(value: Any, digits: int = 1) -> str:
    if _missing(value):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _steps(pipeline: Sequence[dict[str, Any]]) -> list[str]:
    found = {step for row in pipeline for step in row.get("per_asset_seconds", {})}
    return [s for s in STEP_ORDER if s in found] + sorted(found - set(STEP_ORDER))


def render(figures: dict[str, Any]) -> str:
    """The whole report as Markdown."""
    machine = figures.get("machine", {})
    out = [
        "# Benchmarks",
        "",
        f"Generated {figures.get('timestamp', '?')} by `make bench` (`uv run python -m pdm_assets_tests.benchmarks`) "
        "in "
        f"{_fmt(figures.get('duration_seconds'), 0)} s. Figures: `reports/benchmarks.json`.",
        "",
        f"Machine: {machine.get('cores', '?')} cores, {machine.get('memory_gb', '?')} GB, "
        f"{machine.get('cpu_model', '?')}; Python {machine.get('python', '?')}.",
        "",
    ]
    load = machine.get("load", {})
    if load:
        out += ["How busy the machine was (cores kept busy by other processes while each phase ran; "
                "a figure near the core count means every timing below is stretched):", ""]
        out += _table(
            ["phase", "seconds", "machine busy (cores)", "benchmark (cores)", "other processes (cores)",
             "load avg start → end"],
            [[phase, _fmt(v.get("seconds"), 0), _fmt(v.get("machine_busy_cores"), 2),
              _fmt(v.get("benchmark_cores"), 2), _fmt(v.get("other_processes_cores"), 2),
              f"{_fmt(v.get('load_avg_1min_start'), 2)} → {_fmt(v.get('load_avg_1min_end'), 2)}"]
             for phase, v in load.items()],
        )
        out.append("")
    out += _targets_section(figures)
    out += _pipeline_section(figures)
    out += _profile_section(figures.get("profile") or {})
    out += _serving_section(figures.get("serving") or {})
    out += fanout_section(figures.get("fanout") or {})
    notes = figures.get("notes") or []
    if notes:
        out += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    return "\n".join(out).rstrip() + "\n"


def _targets_section(figures: dict[str, Any]) -> list[str]:
    targets = figures.get("targets") or evaluate_targets(figures)
    rows = [[t["what"], t["target"], _fmt(t["value"], 2), t["status"]] for t in targets.values()]
    return ["## Targets", "", *_table(["what", "target", "measured", "status"], rows), ""]


def _pipeline_section(figures: dict[str, Any]) -> list[str]:
    pipeline = figures.get("pipeline") or []
    if not pipeline:
        return []
    steps = _steps(pipeline)
    days = pipeline[0].get("days", "?")
    out = [
        "## Pipeline scale",
        "",
        f"Synthetic fleets × {days} days, groups ingest, features and training materialized in one fresh process "
        "per fleet (`dagster.materialize`, in-process executor, ephemeral instance, isolated cwd, Dagster home "
        "and MLflow store). Seconds per step from the STEP_START and STEP_SUCCESS events; the whole graph is "
        "first step start to last step end. Peak RSS is the fleet process's ru_maxrss. The serving assets "
        "(`bento`, `bento_container`) are not part of these figures.",
        "",
    ]
    header = ["machines", "telemetry rows", "feature rows", "whole graph (s)", "peak RSS (MB)", "CPU (s)",
              *[f"{s} (s)" for s in steps]]
    rows = []
    for row in pipeline:
        per = row.get("per_asset_seconds", {})
        status = row.get("status", "done")
        total = _fmt(row.get("seconds")) if status == "done" else f"{status} ({_fmt(row.get('seconds'))})"
        rows.append([_fmt(row["machines"]), _fmt(row.get("telemetry_rows")), _fmt(row.get("feature_rows")), total,
                     _fmt(row.get("peak_rss_mb"), 0), _fmt(row.get("cpu_seconds")),
                     *[_fmt(per.get(s), 2) for s in steps]])
    out += _table(header, rows)
    out.append("")
    if any(row.get("per_asset_io_seconds") for row in pipeline):
        io_rows = [[_fmt(row["machines"]), *[_fmt(row.get("per_asset_io_seconds", {}).get(s), 2) for s in steps]]
                   for row in pipeline]
        out += ["Of which in Dagster's IO manager (s): unpickling inputs and pickling outputs, the default "
                "filesystem IO manager that `dagster asset materialize` also uses:", ""]
        out += _table(["machines", *steps], io_rows)
        out.append("")
    rss_rows = [[_fmt(row["machines"]), *[_fmt(row.get("per_asset_peak_rss_mb", {}).get(s), 0) for s in steps]]
                for row in pipeline]
    out += ["Peak RSS (MB) while each step ran (psutil, sampled every 0.1 s):", ""]
    out += _table(["machines", *steps], rss_rows)
    out.append("")
    share_rows = []
    for row in pipeline:
        per, graph_seconds = row.get("per_asset_seconds", {}), row.get("seconds") or 0
        if graph_seconds:
            share_rows.append([_fmt(row["machines"]),
                               *[f"{100 * per.get(s, 0) / graph_seconds:.0f} %" for s in steps]])
    if share_rows:
        out += ["Share of the whole graph:", ""]
        out += _table(["machines", *steps], share_rows)
        out.append("")
    k = figures.get("growth_exponent")
    out += [f"Growth exponent k (least squares of log seconds on log telemetry rows): **{_fmt(k, 2)}**.", ""]
    by_step = figures.get("growth_exponent_by_step") or {}
    if by_step:
        out += _table(["step", "k"], [[s, _fmt(by_step.get(s), 2)] for s in steps if s in by_step])
        out.append("")
    return out


def _profile_section(profile: dict[str, Any]) -> list[str]:
    if not profile:
        return []
    out = [
        "## Profile of the feature code",
        "",
        f"pyinstrument ({profile.get('interval_s', '?')} s interval) over {profile.get('scope', '?')} on "
        f"{_fmt(profile.get('machines'))} machines × {profile.get('days', '?')} days "
        f"({_fmt(profile.get('telemetry_rows'))} telemetry rows): {_fmt(profile.get('seconds'), 2)} s. "
        "Top 5 by self time (time in the function's own code, summed over calls from the same caller); "
        "the full tree is in reports/benchmarks_profile.txt and .html.",
        "",
    ]
    rows = [[i + 1, f"`{e['function']}`", e["location"], e["caller"], _fmt(e["self_seconds"], 3),
             f"{100 * e['share']:.1f} %"] for i, e in enumerate(profile.get("top", []))]
    out += _table(["#", "function", "where", "called from", "self (s)", "share"], rows)
    out.append("")
    return out


def _serving_section(serving: dict[str, Any]) -> list[str]:
    if not serving:
        return []
    ours, peer, floor = serving.get("ours", {}), serving.get("peer", {}), serving.get("floor", {})
    setup = serving.get("setup", {})
    plan = LoadPlan(**{f.name: setup[f.name] for f in fields(LoadPlan) if f.name in setup})
    at_rate = f"at {plan.rate_rps:g} rps"
    out = [
        "## Serving",
        "",
        f"The same champion ({setup.get('model_uri', '?')}, version {setup.get('registered_version', '?')}, trained "
        f"on the {setup.get('trained_on_machines', '?')}-machine fleet) served two ways on 127.0.0.1: ours = "
        f"`bentoml serve {setup.get('bento_tag', '?')}`, POST /predict with {{\"histories\": [MachineHistory]}} "
        f"(~{_fmt(setup.get('telemetry_rows_per_history'), 0)} hourly readings each); the peer = `mlflow models "
        "serve --env-manager local`, POST /invocations with the precomputed feature row (dataframe_split). "
        f"Load: locust headless ({setup.get('load_generator', 'FastHttpUser')}), one server after the other; "
        f"{_fmt(setup.get('distinct_requests'))} distinct requests sent round robin. Fixed rate "
        f"{_fmt(setup.get('rate_rps'), 0)} rps for {_fmt(setup.get('rate_seconds'), 0)} s at 1 worker; max "
        f"throughput = closed loop of {setup.get('max_rps_users', '?')} users for "
        f"{_fmt(setup.get('max_seconds'), 0)} s "
        f"(first {plan.warmup_seconds:g} s not counted); "
        "batch = one user posting 100 histories (rows) back to back, median latency / 100.",
        "",
    ]
    keys = [(f"p50 {at_rate} (ms)", "p50_ms", 2), (f"p95 {at_rate} (ms)", "p95_ms", 2),
            (f"p99 {at_rate} (ms)", "p99_ms", 2),
            ("achieved rps at the fixed rate", "achieved_rps_at_fixed_rate", 1),
            ("max rps, 1 worker", "max_rps_1_worker", 1), ("max rps, 2 workers", "max_rps_2_workers", 1),
            ("batch of 100, ms per history", "batch100_ms_per_history", 3),
            ("failed requests", "failures", 0),
            ("max |P(failure) − in-process|", "max_abs_diff_to_in_process", 12)]
    rows = []
    for label, key, digits in keys:
        a, b = ours.get(key), peer.get(key)
        ratio = a / b if isinstance(a, int | float) and isinstance(b, int | float) and b and not _missing(a) else None
        shown_ratio = _fmt(ratio, 2) if key not in ("failures", "max_abs_diff_to_in_process") else ""
        if key == "max_abs_diff_to_in_process":
            rows.append([label, f"{a:.1e}" if not _missing(a) else "–", f"{b:.1e}" if not _missing(b) else "–", ""])
        else:
            rows.append([label, _fmt(a, digits), _fmt(b, digits), shown_ratio])
    out += _table(["", "ours (BentoML)", "peer (mlflow models serve)", "ours / peer"], rows)
    out.append("")
    out += [
        f"Throughput ratio ours / peer: **{_fmt(serving.get('throughput_ratio'), 2)}** at 1 worker, "
        f"{_fmt(serving.get('throughput_ratio_2_workers'), 2)} at 2 workers.",
        "",
        "The floor, in process with one BLAS/OpenMP thread as the service scores (median of repeated calls):",
        "",
    ]
    floor_rows = [
        ["predict_proba, one feature row", _fmt(floor.get("predict_one_row_ms"), 3)],
        ["features for one history (`features_for_histories`)", _fmt(floor.get("features_one_history_ms"), 3)],
        ["parse one history's JSON (`MachineHistory.model_validate_json`)", _fmt(floor.get("parse_one_history_ms"), 3)],
        ["predict_proba, 100 rows", _fmt(floor.get("predict_100_rows_ms"), 3)],
        ["features for 100 histories", _fmt(floor.get("features_100_histories_ms"), 3)],
    ]
    out += _table(["work", "ms"], floor_rows)
    out.append("")
    gaps = serving.get("distance_from_floor") or {}
    if gaps:
        out += [f"How far each server is from the floor (p50 {at_rate} minus the in-process work it must do):", ""]
        out += _table(["", "floor (ms)", "p50 (ms)", "p50 − floor (ms)", "p50 / floor"],
                      [[name, _fmt(g.get("floor_ms"), 3), _fmt(g.get("p50_ms"), 2), _fmt(g.get("overhead_ms"), 2),
                        _fmt(g.get("ratio"), 1)] for name, g in gaps.items()])
        out.append("")
    return out

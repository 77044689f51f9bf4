"""Rolling-origin evaluation: expanding training windows, so every failure after the warm-up is scored once by
heads that never saw its period; the early-warning head, the 24 h head and the error rule on the same rows.

Each fold fits and tunes both heads on everything before its test period (minus the horizon's gap) exactly as
the `model` asset does, and thresholds them on its own validation. Test rows of every fold are pooled as
margins over their fold's threshold (`warning.margin`), so 0 is each fold's operating point and moving one
threshold over the margins traces the curve. Events count when their whole announcement window lies in the
pooled test rows.

`python -m pdm_assets.lib.evaluation.rolling_origin [--synthetic MACHINES DAYS]` runs it on the configured data
(or a synthetic fleet) and writes reports/rolling_origin.json and reports/plots/lead_time_vs_false_alarms.png.
"""

from __future__ import annotations

import argparse
import json
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from pdm_assets.lib.evaluation import bootstrap
from pdm_assets.lib.evaluation.baselines import error_rule
from pdm_assets.lib.evaluation.metrics import scored_frame
from pdm_assets.lib.evaluation.warning import margin, target_check, warning_curve, warning_figures
from pdm_assets.lib.modelling.dataset import modelling_table, split_parts
from pdm_assets.lib.modelling.early_warning import TuningCosts, early_warning_table, fit_early_warning, tuning_costs
from pdm_assets.lib.modelling.estimators import failure_probability, score_failure
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.split import SplitPlan, plan_for_horizon, rolling_plans
from pdm_assets.lib.modelling.train import fit_and_tune

logger = logging.getLogger(__name__)

EARLY, DAY_AHEAD, RULE = "early_warning", "day_ahead", "error_rule"
EITHER = "early_warning_or_day_ahead"  # what a crew acting on both answers of the API sees
MODELS: tuple[str, ...] = (EARLY, DAY_AHEAD, RULE)
RULE_THRESHOLD = 0.5
# The targets, on the rolling-origin evaluation at the early-warning horizon.
TARGETS: dict[str, tuple[str, float]] = {
    "share_first_alerted_36h_ahead": (">=", 0.5),
    "event_recall": (">=", 0.95),
    "false_alarm_episodes_per_100_machine_days": ("<=", 1.0),
}


@dataclass(frozen=True)
class RollingConfig:
    """The knobs of one rolling-origin run (from Settings)."""

    horizon_hours: int
    early_horizon_hours: int
    baseline_hours: int
    warmup_days: int
    step_days: int
    max_folds: int
    max_machines: int
    validation_fraction: float
    costs: TuningCosts
    resamples: int = bootstrap.DEFAULT_RESAMPLES
    level: float = bootstrap.DEFAULT_LEVEL
    threads: int = 1  # OpenMP threads per fit (PDM_TRAINING_THREADS)
    workers: int = 2  # folds fitted at once


@dataclass
class _Fold:
    plan: SplitPlan
    rows: pd.DataFrame  # the fold's test rows (early-warning table), labelled at the early-warning horizon
    margins: dict[str, np.ndarray]
    record: dict[str, Any]


def rolling_origin(features: pd.DataFrame, failures: pd.DataFrame, config: RollingConfig) -> dict[str, Any]:
    """The rolling-origin report: folds, figures with CIs at both horizons, the curve and the targets."""
    features = _machine_sample(features, config.max_machines, config.costs.seed)
    early_table = early_warning_table(features, failures, horizon_hours=config.early_horizon_hours,
                                      baseline_hours=config.baseline_hours)
    day_table = modelling_table(features, build_labels(features, failures, config.horizon_hours))
    first = features["datetime"].min().to_pydatetime()
    last = features["datetime"].max().to_pydatetime()
    common: dict[str, Any] = {"warmup": timedelta(days=config.warmup_days), "step": timedelta(days=config.step_days),
                              "validation_fraction": config.validation_fraction, "max_folds": config.max_folds}
    day_plans = rolling_plans(first, last, horizon_hours=config.horizon_hours, **common)
    early_plans = rolling_plans(first, last, horizon_hours=config.early_horizon_hours, **common)
    if not early_plans:
        raise ValueError(f"the data ({first} to {last}) ends before the rolling origin's warm-up of "
                         f"{config.warmup_days} days (PDM_ROLLING_ORIGIN_WARMUP_DAYS)")
    early_first = early_table["datetime"].min().to_pydatetime()

    def fold(number: int, day_plan: SplitPlan, early_plan: SplitPlan) -> _Fold:
        logger.info("rolling origin: fold %d/%d, test %s to %s", number, len(early_plans),
                    early_plan.test_start, early_plan.test_end)
        early_plan = plan_for_horizon(early_plan, early_first, config.early_horizon_hours, config.validation_fraction)
        with threadpool_limits(config.threads, user_api="openmp"):  # OpenMP limits hold per thread
            return _fold(day_table, early_table, failures, day_plan, early_plan, config)

    # The boosters fit without the GIL: folds in parallel use the cores a single fit leaves idle.
    with ThreadPoolExecutor(max_workers=config.workers) as pool:
        folds = list(pool.map(fold, range(1, len(early_plans) + 1), day_plans, early_plans))
    return _report(folds, failures, config)


def _machine_sample(features: pd.DataFrame, most: int, seed: int) -> pd.DataFrame:
    """The rows of at most `most` machines, a seeded sample when the fleet is larger."""
    machines = np.unique(features["machineID"].to_numpy())
    if len(machines) <= most:
        return features
    kept = np.random.default_rng(seed).choice(machines, size=most, replace=False)
    logger.info("rolling origin: %d of %d machines (PDM_ROLLING_ORIGIN_MAX_MACHINES)", most, len(machines))
    return features[features["machineID"].isin(kept)].reset_index(drop=True)


def _fold(
    day_table: pd.DataFrame, early_table: pd.DataFrame, failures: pd.DataFrame, day_plan: SplitPlan,
    early_plan: SplitPlan, config: RollingConfig,
) -> _Fold:
    """Fit both heads before the fold's test period and score its rows: margins over each one's threshold."""
    costs = config.costs
    rows = split_parts(early_table, early_plan)["test"]
    day_parts = split_parts(day_table, day_plan)
    record: dict[str, Any] = {"test_start": early_plan.test_start.isoformat(),
                              "test_end": early_plan.test_end.isoformat(), "test_rows": len(rows)}
    try:
        head = fit_early_warning(early_table, failures, early_plan, costs, baseline_hours=config.baseline_hours)
        day = fit_and_tune(
            day_parts["train"], day_parts["validation"], failures, feature_columns=FEATURE_COLUMNS,
            horizon_hours=config.horizon_hours, grid_hours=costs.grid_hours, cost_missed=costs.cost_missed,
            cost_false_alarm=costs.cost_false_alarm, negative_fraction=costs.negative_fraction, seed=costs.seed,
        )
    except ValueError as too_few:  # e.g. no failure yet in the training period: the fold cannot be scored
        logger.warning("rolling origin: fold from %s skipped: %s", early_plan.test_start, too_few)
        return _Fold(early_plan, rows.iloc[:0], {}, {**record, "skipped": str(too_few)})
    record |= {
        "train_end": {EARLY: early_plan.train_end.isoformat(), DAY_AHEAD: day_plan.train_end.isoformat()},
        "validation": {EARLY: [early_plan.validation_start.isoformat(), early_plan.validation_end.isoformat()],
                       DAY_AHEAD: [day_plan.validation_start.isoformat(), day_plan.validation_end.isoformat()]},
        "threshold": {EARLY: head.trained.threshold, DAY_AHEAD: day.threshold},
        # A validation period without a failure event leaves a threshold above every score (never alerts).
        "validation_events": {EARLY: int(head.trained.validation["events"]), DAY_AHEAD: int(day.validation["events"])},
        "params": {EARLY: head.trained.params, DAY_AHEAD: day.params},
    }
    scores = {
        EARLY: score_failure(head.trained.pipeline, rows[head.trained.feature_columns]),
        DAY_AHEAD: score_failure(day.pipeline, rows[day.feature_columns]),
        RULE: failure_probability(error_rule(rows)),
    }
    thresholds = {EARLY: head.trained.threshold, DAY_AHEAD: day.threshold, RULE: RULE_THRESHOLD}
    return _Fold(early_plan, rows, {name: margin(scores[name], thresholds[name]) for name in MODELS}, record)


def _report(folds: Sequence[_Fold], failures: pd.DataFrame, config: RollingConfig) -> dict[str, Any]:
    """Pool the folds' rows and compute every model's figures, the curves and the targets."""
    scored = [f for f in folds if f.margins]
    if not scored:
        raise ValueError("no rolling-origin fold could be fitted: " + "; ".join(f.record.get("skipped", "")
                                                                                 for f in folds))
    rows = pd.concat([f.rows for f in scored], ignore_index=True)
    margins = {name: np.concatenate([f.margins[name] for f in scored]) for name in MODELS}
    margins[EITHER] = np.maximum(margins[EARLY], margins[DAY_AHEAD])
    # Whole windows only: an event's (t_fail - H, t_fail) must lie in the pooled test rows.
    start = pd.Timestamp(scored[0].plan.test_start) + pd.Timedelta(hours=config.early_horizon_hours)
    counted: dict[str, Any] = {"events_from": start, "grid_hours": config.costs.grid_hours}
    draws = bootstrap.draw_machines(rows["machineID"].to_numpy(np.int64), config.resamples, config.costs.seed)
    day_rows = rows.assign(failure=build_labels(rows, failures, config.horizon_hours)["failure"].to_numpy())
    figures = {
        name: warning_figures(scored_frame(rows, margins[name]), failures, 0.0,
                              horizon_hours=config.early_horizon_hours, draws=draws, level=config.level, **counted)
        for name in margins
    }
    at_own_horizon = {
        name: warning_figures(scored_frame(day_rows, margins[name]), failures, 0.0, horizon_hours=config.horizon_hours,
                              draws=draws, level=config.level, **counted)
        for name in (DAY_AHEAD, RULE)
    }
    curves = {name: warning_curve(scored_frame(rows, margins[name]), failures,
                                  horizon_hours=config.early_horizon_hours, **counted)
              for name in (EARLY, DAY_AHEAD)}
    return {
        "kind": "rolling_origin",
        "horizon_hours": config.early_horizon_hours,
        "day_ahead_horizon_hours": config.horizon_hours,
        "baseline_lookback_hours": config.baseline_hours,
        "warmup_days": config.warmup_days,
        "step_days": config.step_days,
        "events_from": start.isoformat(),
        "machines": int(rows["machineID"].nunique()),
        "folds": [f.record for f in folds],
        "models": figures,
        "at_own_horizon": at_own_horizon,
        "curves": curves,
        "targets": {name: target_check(figures[name], TARGETS) for name in figures},
        "ci_level": config.level,
        "bootstrap_resamples": config.resamples,
    }


def config_from(settings: Any) -> RollingConfig:
    """The rolling origin's knobs from Settings."""
    return RollingConfig(
        horizon_hours=settings.horizon_hours, early_horizon_hours=settings.early_warning_horizon_hours,
        baseline_hours=settings.baseline_lookback_hours, warmup_days=settings.rolling_origin_warmup_days,
        step_days=settings.rolling_origin_step_days, max_folds=settings.rolling_origin_max_folds,
        max_machines=settings.rolling_origin_max_machines,
        validation_fraction=settings.validation_fraction,
        costs=tuning_costs(settings), threads=settings.training_threads,
    )


def rolling_table(report: dict[str, Any]) -> str:
    """The report's figures as a markdown table: one line per model, each figure with its interval."""
    def cell(figures: dict[str, Any], key: str, digits: int) -> str:
        value, (low, high) = figures[key], figures["ci"][key]
        show = (lambda v: "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}")  # noqa: E731
        return f"{show(value)} [{show(low)}, {show(high)}]"

    lines = [
        f"| model (events within {report['horizon_hours']} h) | event recall | share first alerted ≥ 36 h ahead "
        "| median lead (h) | false-alarm episodes / 100 machine-days |",
        "|---|---|---|---|---|",
    ]
    rows = list(report["models"].items())
    rows += [(f"{name} (own {report['day_ahead_horizon_hours']} h horizon)", figures)
             for name, figures in report["at_own_horizon"].items()]
    for name, figures in rows:
        cells = [cell(figures, key, digits) for key, digits in (
            ("event_recall", 3), ("share_first_alerted_36h_ahead", 3), ("lead_time_median_h", 1),
            ("false_alarm_episodes_per_100_machine_days", 2))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(report: dict[str, Any], reports_dir: Path) -> tuple[Path, Path]:
    """reports/rolling_origin.json and reports/plots/lead_time_vs_false_alarms.png."""
    from pdm_assets.lib.evaluation.plots import lead_time_vs_false_alarms

    (reports_dir / "plots").mkdir(parents=True, exist_ok=True)
    path = reports_dir / "rolling_origin.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    plot = reports_dir / "plots" / "lead_time_vs_false_alarms.png"
    plot.write_bytes(lead_time_vs_false_alarms(report))
    return path, plot


def main(argv: Sequence[str] | None = None) -> None:
    """Run the rolling-origin evaluation on the configured data (or a synthetic fleet) and write its report."""
    from pdm_assets.lib.data.sources import load_raw, load_synthetic
    from pdm_assets.lib.data.tables import TABLE_NAMES
    from pdm_assets.lib.data.validation import validate_all
    from pdm_assets.lib.modelling.features import build_features
    from pdm_assets.settings import get_settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--synthetic", type=int, nargs=2, metavar=("MACHINES", "DAYS"),
                        help="a synthetic fleet (PDM_SYNTHETIC_SEED, PDM_SYNTHETIC_START) instead of the data source")
    parser.add_argument("--out", type=Path, help="folder for the report and plot (default PDM_REPORTS_DIR)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = get_settings()
    if args.synthetic:
        raw = load_synthetic(args.synthetic[0], args.synthetic[1], settings.synthetic_seed, settings.synthetic_start)
    else:
        raw = load_raw(settings).tables
    valid = {name: outcome.valid for name, outcome in validate_all({n: raw.table(n) for n in TABLE_NAMES}).items()}
    features = build_features(valid["telemetry"], valid["errors"], valid["maint"], valid["machines"],
                              grid_hours=settings.scoring_grid_hours, baseline_hours=settings.baseline_lookback_hours)
    report = rolling_origin(features, valid["failures"], config_from(settings))
    report["data_source"] = raw.source if not args.synthetic else f"synthetic {args.synthetic[0]}x{args.synthetic[1]}"
    path, plot = write_report(report, args.out or settings.reports_dir)
    print(rolling_table(report))
    print(f"written to {path.resolve()} and {plot.resolve()}")


if __name__ == "__main__":
    main()

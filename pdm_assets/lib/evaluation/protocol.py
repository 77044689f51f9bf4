"""The evaluation protocol on one time split: our model and the baselines on the same rows, tuned on
validation only, scored once on test, with machine-bootstrap intervals; plus a second horizon.

`run_protocol` is what the evaluation asset calls; `evaluate_guide_splits` repeats the whole protocol
(fitting included) for the guide's three splits, for a report (`python -m pdm_assets.lib.evaluation.protocol`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score
from sklearn.pipeline import Pipeline

from pdm_assets.lib.evaluation import bootstrap
from pdm_assets.lib.evaluation.baselines import (
    GUIDE_FEATURES,
    GUIDE_MAX_ROWS,
    always_none,
    error_rule,
    fit_guide_replica,
)
from pdm_assets.lib.evaluation.events import (
    EventView,
    earliest_alert_lead_hours,
    event_view,
    operating_curve,
    per_100_machine_days,
)
from pdm_assets.lib.evaluation.metrics import (
    GUIDE_R_GBM_MACRO_F1,
    argmax_labels,
    calibration_table,
    class_metrics,
    confusion_matrix,
    evaluate_scores,
    failure_vs_none,
    guide_confusion,
    macro_f1,
    predicted_labels,
    scored_frame,
)
from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table, split_parts
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS, NON_TELEMETRY_FEATURES
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.split import SplitPlan
from pdm_assets.lib.modelling.train import (
    TrainedModel,
    choose_on_validation,
    failure_probability,
    fit_and_tune,
    fit_fixed,
    predict_components,
    score_failure,
)

# The Microsoft Modelling Guide's splits: (train before, test from).
GUIDE_SPLITS: Mapping[int, tuple[datetime, datetime]] = {
    1: (datetime(2015, 7, 31, 1), datetime(2015, 8, 1, 1)),
    2: (datetime(2015, 8, 31, 1), datetime(2015, 9, 1, 1)),
    3: (datetime(2015, 9, 30, 1), datetime(2015, 10, 1, 1)),
}
OURS = "ours"
# Rules are not tuned: they alert when they fire (score 1) and never otherwise (score 0).
RULE_THRESHOLD = 0.5
# Metrics with machine-bootstrap intervals, and whether higher is better.
CI_METRICS: Mapping[str, bool] = {
    "row_pr_auc": True,
    "row_f1": True,
    "event_recall": True,
    "false_alarms_per_100_machine_days": False,
}
# The keys every model reports, ours and each baseline alike.
METRIC_KEYS: tuple[str, ...] = (
    "row_pr_auc", "row_roc_auc", "row_f1", "row_precision", "row_recall", "brier", "threshold",
    "event_recall", "events", "events_detected", "lead_time_median_h", "lead_time_p10_h",
    "false_alarms", "false_alarms_per_100_machine_days", "positive_rate", "rows", "machine_days",
)
IMPORTANCE_NEGATIVES = 1500
IMPORTANCE_POSITIVES = 500
IMPORTANCE_REPEATS = 2


@dataclass(frozen=True)
class Scorer:
    """A model as the harness sees it: per-row none/comp1..4 frames, and P(failure) alone (cheaper)."""

    components: Callable[[pd.DataFrame], pd.DataFrame]
    failure: Callable[[pd.DataFrame], np.ndarray] | None = None

    def scores(self, rows: pd.DataFrame) -> np.ndarray:
        return self.failure(rows) if self.failure is not None else failure_probability(self.components(rows))

    @classmethod
    def of(cls, pipeline: Pipeline, columns: Sequence[str]) -> Scorer:
        """A fitted pipeline reading `columns`."""
        wanted = list(columns)
        return cls(lambda rows: predict_components(pipeline, rows[wanted]),
                   lambda rows: score_failure(pipeline, rows[wanted]))


@dataclass(frozen=True)
class ProtocolConfig:
    """The knobs of one protocol run (from Settings in the assets)."""

    horizon_hours: int
    grid_hours: int
    cost_missed: float
    cost_false_alarm: float
    negative_fraction: float
    seed: int
    validation_fraction: float = 0.2
    resamples: int = bootstrap.DEFAULT_RESAMPLES
    level: float = bootstrap.DEFAULT_LEVEL
    replica_max_rows: int = GUIDE_MAX_ROWS


@dataclass
class Assessment:
    """One model's test figures at the threshold it chose on validation (rules: fixed)."""

    name: str
    metrics: dict[str, Any]
    ci: dict[str, tuple[float, float]]
    at_f1_threshold: dict[str, Any]
    confusion: pd.DataFrame
    per_component: pd.DataFrame
    calibration: pd.DataFrame
    validation: dict[str, float]
    test_scores: np.ndarray
    lead_times_h: np.ndarray
    argmax_confusion: pd.DataFrame | None = None


@dataclass
class ProtocolResult:
    """Everything the report, plots, model card and promotion gate read."""

    plan: SplitPlan
    config: ProtocolConfig
    assessments: dict[str, Assessment]
    test_truth: np.ndarray
    comparisons: dict[str, dict[str, str]]
    event_curve: dict[str, list[float]]
    guide: dict[str, Any]
    importance: pd.DataFrame
    horizons: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def ours(self) -> Assessment:
        return self.assessments[OURS]


def assess(
    name: str,
    validation: pd.DataFrame,
    val_scores: np.ndarray,
    test: pd.DataFrame,
    test_components: pd.DataFrame,
    failures: pd.DataFrame,
    config: ProtocolConfig,
    draws: bootstrap.Resamples,
    *,
    fixed_threshold: float | None = None,
    chosen: tuple[float, float] | None = None,
) -> Assessment:
    """Pick thresholds on validation scores (unless fixed or already chosen), then score test once."""
    choice = choose_on_validation(
        validation, val_scores, failures, horizon_hours=config.horizon_hours, grid_hours=config.grid_hours,
        cost_missed=config.cost_missed, cost_false_alarm=config.cost_false_alarm, fixed=fixed_threshold,
    )
    threshold, f1_threshold = chosen if chosen is not None else (choice.threshold, choice.f1_threshold)
    scores = failure_probability(test_components)
    scored = scored_frame(test, scores)
    view = event_view(scored, failures, config.horizon_hours, config.grid_hours)
    metrics = evaluate_scores(scored, failures, threshold=threshold, horizon_hours=config.horizon_hours,
                              grid_hours=config.grid_hours, view=view)
    at_f1 = evaluate_scores(scored, failures, threshold=f1_threshold, horizon_hours=config.horizon_hours,
                            grid_hours=config.grid_hours, view=view)
    truth = test["failure"].to_numpy(bool)
    confusion = confusion_matrix(test["label"].to_numpy(object), predicted_labels(test_components, scores, threshold))
    leads = earliest_alert_lead_hours(view, scores, threshold)
    return Assessment(
        name=name,
        metrics=metrics,
        ci=intervals(draws, test, scores, view, threshold, config.level),
        at_f1_threshold={k: at_f1[k] for k in ("threshold", "row_f1", "row_precision", "row_recall",
                                                "event_recall", "false_alarms_per_100_machine_days")},
        confusion=confusion,
        per_component=class_metrics(confusion),
        calibration=calibration_table(truth, scores),
        validation=choice.figures,
        test_scores=scores,
        lead_times_h=leads[np.isfinite(leads)],
        argmax_confusion=confusion_matrix(test["label"].to_numpy(object), argmax_labels(test_components)),
    )


def intervals(
    draws: bootstrap.Resamples, rows: pd.DataFrame, scores: np.ndarray, view: EventView, threshold: float, level: float
) -> dict[str, tuple[float, float]]:
    """Machine-bootstrap intervals of PR-AUC, F1, event recall and false-alarm rate."""
    machines = rows["machineID"].to_numpy(np.int64)
    truth = rows["failure"].to_numpy(bool)
    samples = {
        "row_pr_auc": bootstrap.average_precision(draws, machines, truth, scores),
        "row_f1": bootstrap.f1_at_threshold(draws, machines, truth, scores, threshold),
        **bootstrap.event_figures(draws, view, threshold, machines),
    }
    return {name: bootstrap.interval(values, level) for name, values in samples.items()}


def compare(assessments: Mapping[str, Assessment]) -> dict[str, dict[str, str]]:
    """Per baseline and metric: "win", "loss" or "no separation", by whether the intervals overlap."""
    ours = assessments[OURS]
    out: dict[str, dict[str, str]] = {}
    for name, other in assessments.items():
        if name == OURS:
            continue
        verdicts = {}
        for metric, higher_is_better in CI_METRICS.items():
            a, b = ours.ci[metric], other.ci[metric]
            side = bootstrap.separated(a, b) if higher_is_better else bootstrap.separated(b, a)
            verdicts[metric] = {"better": "win", "worse": "loss"}.get(side, "no separation")
        out[name] = verdicts
    return out


def event_curve(
    test: pd.DataFrame, scores: np.ndarray, failures: pd.DataFrame, config: ProtocolConfig
) -> dict[str, list[float]]:
    """Event recall and false alarms per 100 machine-days of our scores over every useful threshold."""
    view = event_view(scored_frame(test, scores), failures, config.horizon_hours, config.grid_hours)
    finite = view.event_best_score[np.isfinite(view.event_best_score)]
    thresholds = np.unique(np.concatenate([finite, [np.nextafter(max(scores.max(initial=0.0), 1.0), np.inf)]]))
    detected, alarms = operating_curve(view, thresholds)
    events = len(view.event_best_score)
    return {
        "threshold": thresholds.tolist(),
        "event_recall": (detected / events if events else np.full(len(thresholds), np.nan)).tolist(),
        "false_alarms_per_100_machine_days": [per_100_machine_days(a, view.machine_days) for a in alarms],
    }


def feature_importance(
    pipeline: Pipeline, validation: pd.DataFrame, feature_columns: Sequence[str], seed: int
) -> pd.DataFrame:
    """Permutation importance on validation: the drop in PR-AUC of P(failure) when a column is shuffled.

    On up to 500 failure rows and 1,500 normal rows, 2 repeats: enough to rank, cheap to run.
    """
    rng = np.random.default_rng(seed)
    truth = validation["failure"].to_numpy(bool)
    pos, neg = np.flatnonzero(truth), np.flatnonzero(~truth)
    pick = np.concatenate([
        rng.choice(pos, size=min(len(pos), IMPORTANCE_POSITIVES), replace=False),
        rng.choice(neg, size=min(len(neg), IMPORTANCE_NEGATIVES), replace=False),
    ])
    rows = validation.iloc[np.sort(pick)]
    if rows["failure"].nunique() < 2:
        return pd.DataFrame({"feature": list(feature_columns), "importance": np.nan, "std": np.nan})

    def score(estimator: Pipeline, x: pd.DataFrame, y: np.ndarray) -> float:
        return float(average_precision_score(y, score_failure(estimator, x)))

    result = permutation_importance(
        pipeline, rows[list(feature_columns)], rows["failure"].to_numpy(bool), scoring=score,
        n_repeats=IMPORTANCE_REPEATS, random_state=seed,
    )
    table = pd.DataFrame({"feature": list(feature_columns), "importance": result.importances_mean,
                          "std": result.importances_std})
    return table.sort_values("importance", ascending=False).reset_index(drop=True)


def run_protocol(
    table: pd.DataFrame,
    failures: pd.DataFrame,
    plan: SplitPlan,
    trained: TrainedModel,
    config: ProtocolConfig,
    *,
    importance: bool = True,
) -> ProtocolResult:
    """Our tuned model and every baseline on the same validation and test rows of one split."""
    parts = split_parts(table, plan)
    validation, test = parts["validation"], parts["test"]
    _require_rows(parts)
    draws = bootstrap.draw_machines(test["machineID"].to_numpy(np.int64), config.resamples, config.seed)

    def run(name: str, model: Scorer, **kwargs: Any) -> Assessment:
        return assess(name, validation, model.scores(validation), test, model.components(test), failures, config,
                      draws, **kwargs)

    # sklearn's GradientBoostingClassifier builds trees without the GIL: fit the replica beside the rest.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(fit_guide_replica, parts["train"], negative_fraction=config.negative_fraction,
                              seed=config.seed, max_rows=config.replica_max_rows)
        assessments = _own_and_rules(run, trained, parts["train"], config)
        replica = pending.result()
    assessments["guide_replica"] = run("guide_replica", Scorer.of(replica, GUIDE_FEATURES))
    truth = test["failure"].to_numpy(bool)
    ours = assessments[OURS]
    return ProtocolResult(
        plan=plan,
        config=config,
        assessments=assessments,
        test_truth=truth,
        comparisons=compare(assessments),
        event_curve=event_curve(test, ours.test_scores, failures, config),
        guide=guide_comparison(assessments),
        importance=feature_importance(trained.pipeline, validation, trained.feature_columns, config.seed)
        if importance else pd.DataFrame(columns=["feature", "importance", "std"]),
    )


def _own_and_rules(
    run: Callable[..., Assessment], trained: TrainedModel, train: pd.DataFrame, config: ProtocolConfig
) -> dict[str, Assessment]:
    """Ours, ours without telemetry (same parameters, no new search), always-none and the error rule."""
    assessments = {
        OURS: run(OURS, Scorer.of(trained.pipeline, trained.feature_columns),
                  chosen=(trained.threshold, trained.f1_threshold)),
        "always_none": run("always_none", Scorer(always_none), fixed_threshold=RULE_THRESHOLD),
        "error_rule": run("error_rule", Scorer(error_rule), fixed_threshold=RULE_THRESHOLD),
    }
    no_telemetry = fit_fixed(train, feature_columns=NON_TELEMETRY_FEATURES, params=trained.params,
                             negative_fraction=config.negative_fraction, seed=config.seed)
    assessments["ours_no_telemetry"] = run("ours_no_telemetry", Scorer.of(no_telemetry, NON_TELEMETRY_FEATURES))
    return assessments


def guide_comparison(assessments: Mapping[str, Assessment]) -> dict[str, Any]:
    """The guide's published split-3 figures next to its replica's and ours, in the same layout."""
    published = guide_confusion()
    replica = assessments["guide_replica"]
    ours = assessments[OURS]
    assert replica.argmax_confusion is not None
    return {
        "published": _confusion_summary(published) | {"r_gbm_macro_f1": GUIDE_R_GBM_MACRO_F1},
        "replica_argmax": _confusion_summary(replica.argmax_confusion),
        "replica_at_threshold": _confusion_summary(replica.confusion),
        "ours_at_threshold": _confusion_summary(ours.confusion),
    }


def _confusion_summary(confusion: pd.DataFrame) -> dict[str, Any]:
    per_class = class_metrics(confusion)
    return {
        "confusion_matrix": confusion.to_numpy().tolist(),
        "macro_f1": macro_f1(confusion),
        "failure_vs_none": failure_vs_none(confusion),
        "per_class": {
            str(k): {m: _num(v) for m, v in row.items()} for k, row in per_class.to_dict(orient="index").items()
        },
    }


def other_horizon(
    features: pd.DataFrame,
    failures: pd.DataFrame,
    trained: TrainedModel,
    config: ProtocolConfig,
    *,
    horizon_hours: int,
    train_end: datetime,
    test_start: datetime,
) -> dict[str, Any]:
    """Refit our tuned model (same parameters, no new search) for another horizon; with the two rules."""
    cfg = replace(config, horizon_hours=horizon_hours)
    table = modelling_table(features, build_labels(features, failures, horizon_hours))
    plan = plan_for_table(table, train_end=train_end, test_start=test_start, horizon_hours=horizon_hours,
                    validation_fraction=config.validation_fraction)
    parts = split_parts(table, plan)
    _require_rows(parts)
    validation, test = parts["validation"], parts["test"]
    pipeline = fit_fixed(parts["train"], feature_columns=trained.feature_columns, params=trained.params,
                         negative_fraction=config.negative_fraction, seed=config.seed)
    draws = bootstrap.draw_machines(test["machineID"].to_numpy(np.int64), config.resamples, config.seed)
    models: dict[str, tuple[Scorer, float | None]] = {
        OURS: (Scorer.of(pipeline, trained.feature_columns), None),
        "always_none": (Scorer(always_none), RULE_THRESHOLD),
        "error_rule": (Scorer(error_rule), RULE_THRESHOLD),
    }
    out: dict[str, Any] = {"horizon_hours": horizon_hours, "split": plan.to_dict()}
    for name, (model, fixed) in models.items():
        result = assess(name, validation, model.scores(validation), test, model.components(test), failures, cfg,
                        draws, fixed_threshold=fixed)
        out[name] = {**{k: _num(result.metrics[k]) for k in METRIC_KEYS}, "ci": _ci(result.ci)}
    return out


def report(result: ProtocolResult, *, data_source: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The evaluation report under stable keys: ours at the top level, baselines under `baselines`."""
    ours = result.ours
    figures = {k: _num(ours.metrics[k]) for k in METRIC_KEYS}
    return {
        **figures,
        "data_source": data_source,
        "horizon_hours": result.config.horizon_hours,
        "grid_hours": result.config.grid_hours,
        "test_start": result.plan.test_start.isoformat(),
        "split": result.plan.to_dict(),
        "costs": {"missed_failure": result.config.cost_missed, "false_alarm": result.config.cost_false_alarm},
        "ci": _ci(ours.ci),
        "ci_level": result.config.level,
        "bootstrap_resamples": result.config.resamples,
        "f1_threshold": ours.at_f1_threshold["threshold"],
        "at_f1_threshold": {k: _num(v) for k, v in ours.at_f1_threshold.items()},
        "validation": {k: _num(v) for k, v in ours.validation.items()},
        "confusion_matrix": {"labels": list(ours.confusion.index), "counts": ours.confusion.to_numpy().tolist()},
        "per_component": _records(ours.per_component),
        "calibration": ours.calibration.replace({np.nan: None}).to_dict(orient="records"),
        "baselines": {
            name: {**{k: _num(a.metrics[k]) for k in METRIC_KEYS}, "ci": _ci(a.ci),
                   "at_f1_threshold": {k: _num(v) for k, v in a.at_f1_threshold.items()},
                   "per_component": _records(a.per_component)}
            for name, a in result.assessments.items() if name != OURS
        },
        "comparisons": result.comparisons,
        "guide_comparison": result.guide,
        "event_curve": result.event_curve,
        "feature_importance": result.importance.head(20).replace({np.nan: None}).to_dict(orient="records"),
        "horizons": result.horizons,
        **(dict(extra) if extra else {}),
    }


def _records(frame: pd.DataFrame) -> dict[str, dict[str, float | None]]:
    return {str(k): {str(m): _num(v) for m, v in row.items()} for k, row in frame.to_dict(orient="index").items()}


def _ci(ci: Mapping[str, tuple[float, float]]) -> dict[str, list[float | None]]:
    return {name: [_num(low), _num(high)] for name, (low, high) in ci.items()}


def _num(value: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become None, numpy scalars plain Python."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def _require_rows(parts: Mapping[str, pd.DataFrame]) -> None:
    for name, rows in parts.items():
        if rows.empty:
            raise ValueError(f"the {name} period has no rows; use more days or a shorter PDM_HORIZON_HOURS")


def evaluate_guide_splits(
    features: pd.DataFrame, labels: pd.DataFrame, failures: pd.DataFrame, config: ProtocolConfig,
    splits: Sequence[int] = (1, 2, 3),
) -> list[dict[str, Any]]:
    """The whole protocol (search, thresholds, baselines, intervals) for each of the guide's splits."""
    table = modelling_table(features, labels)
    rows = []
    for split in splits:
        train_end, test_start = GUIDE_SPLITS[split]
        plan = plan_for_table(table, train_end=train_end, test_start=test_start, horizon_hours=config.horizon_hours,
                        validation_fraction=config.validation_fraction)
        parts = split_parts(table, plan)
        trained = fit_and_tune(
            parts["train"], parts["validation"], failures, feature_columns=FEATURE_COLUMNS,
            horizon_hours=config.horizon_hours, grid_hours=config.grid_hours, cost_missed=config.cost_missed,
            cost_false_alarm=config.cost_false_alarm, negative_fraction=config.negative_fraction, seed=config.seed,
        )
        result = run_protocol(table, failures, plan, trained, config, importance=False)
        rows.append({**report(result, data_source=""), "guide_split": split})
    return rows


def splits_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One line per split and model: the headline figures with their intervals."""
    lines = []
    for row in rows:
        for name, figures in [(OURS, row), *row["baselines"].items()]:
            lines.append({
                "split": row["guide_split"], "kind": row["split"]["kind"], "test_start": row["test_start"],
                "model": name,
                **{k: f"{_show(figures[k])} [{_show(figures['ci'][k][0])}, {_show(figures['ci'][k][1])}]"
                   for k in CI_METRICS},
            })
    return pd.DataFrame(lines)


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    """Evaluate the guide's splits on the configured data source and write reports/splits.json."""
    from threadpoolctl import threadpool_limits

    from pdm_assets.lib.data.sources import load_raw
    from pdm_assets.lib.data.tables import TableName
    from pdm_assets.lib.data.validation import validate_table
    from pdm_assets.lib.modelling.features import build_features
    from pdm_assets.settings import get_settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3], choices=sorted(GUIDE_SPLITS))
    args = parser.parse_args(argv)
    settings = get_settings()
    raw = load_raw(settings).tables
    machines = validate_table("machines", raw.machines).valid
    known = machines["machineID"].tolist()
    tables: tuple[TableName, ...] = ("telemetry", "errors", "maint", "failures")
    valid = {name: validate_table(name, raw.table(name), known_machines=known).valid for name in tables}
    features = build_features(valid["telemetry"], valid["errors"], valid["maint"], machines,
                              grid_hours=settings.scoring_grid_hours)
    labels = build_labels(features, valid["failures"], settings.horizon_hours)
    config = config_from(settings)
    with threadpool_limits(settings.training_threads, user_api="openmp"):
        rows = evaluate_guide_splits(features, labels, valid["failures"], config, args.splits)
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    path = settings.reports_dir / "splits.json"
    path.write_text(json.dumps({"data_source": raw.source, "splits": rows}, indent=2, default=str))
    print(splits_table(rows).to_markdown(index=False))
    print(f"written to {Path(path).resolve()}")


def config_from(settings: Any) -> ProtocolConfig:
    """The protocol's knobs from Settings."""
    return ProtocolConfig(
        horizon_hours=settings.horizon_hours,
        grid_hours=settings.scoring_grid_hours,
        cost_missed=settings.cost_missed_failure,
        cost_false_alarm=settings.cost_false_alarm,
        negative_fraction=settings.negative_sample_fraction,
        seed=settings.random_seed,
        validation_fraction=settings.validation_fraction,
    )


if __name__ == "__main__":
    main()

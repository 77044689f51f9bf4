"""The evaluation protocol on one time split: our model and the baselines on the same rows, tuned on
validation only, scored once on test, with machine-bootstrap intervals; plus a second horizon.

`run_protocol` is what the evaluation asset calls and `report` turns its result into the evaluation report;
one model's scoring is in `assessment`, the guide's three splits in `guide_splits`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from pdm_assets.lib.evaluation import bootstrap
from pdm_assets.lib.evaluation.assessment import OURS, Assessment, Scorer
from pdm_assets.lib.evaluation.baselines import GUIDE_MAX_ROWS
from pdm_assets.lib.evaluation.events import event_view, operating_curve, per_100_machine_days
from pdm_assets.lib.evaluation.metrics import (
    GUIDE_R_GBM_MACRO_F1,
    class_metrics,
    failure_vs_none,
    guide_confusion,
    macro_f1,
    scored_frame,
)
from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table, split_parts
from pdm_assets.lib.modelling.early_warning import EARLY_WARNING, EarlyWarningHead
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.split import SplitPlan
from pdm_assets.lib.modelling.train import TrainedModel, fit_fixed

# Rules are not tuned: they alert when they fire (score 1) and never otherwise (score 0).
RULE_THRESHOLD = 0.5
# The keys every model reports, ours and each baseline alike.
METRIC_KEYS: tuple[str, ...] = (
    "row_pr_auc", "row_roc_auc", "row_f1", "row_precision", "row_recall", "brier", "threshold",
    "event_recall", "events", "events_detected", "lead_time_median_h", "lead_time_p10_h",
    "false_alarms", "false_alarms_per_100_machine_days", "positive_rate", "rows", "machine_days",
)


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
    from pdm_assets.lib.evaluation import scored  # scored builds on this module's types

    parts = split_parts(table, plan)
    _require_rows(parts)
    baselines = scored.fit_baselines(parts["train"], trained, config)
    group = scored.score_group(table, table, failures, plan, trained, baselines, None)
    return scored.protocol_from_scores([group], failures, plan, trained, None, config,
                                       parts["validation"] if importance else None)


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
    from pdm_assets.lib.evaluation import scored  # scored builds on this module's types

    table = modelling_table(features, build_labels(features, failures, horizon_hours))
    plan = plan_for_table(table, train_end=train_end, test_start=test_start, horizon_hours=horizon_hours,
                    validation_fraction=config.validation_fraction)
    parts = split_parts(table, plan)
    _require_rows(parts)
    pipeline = fit_fixed(parts["train"], feature_columns=trained.feature_columns, params=trained.params,
                         negative_fraction=config.negative_fraction, seed=config.seed)
    scorers = {OURS: Scorer.of(pipeline, trained.feature_columns), **scored.RULE_SCORERS}
    rows = scored.scored_rows(table, {scored.DAY: scored.day_role(table, plan)},
                              {name: (scorer, (scored.DAY,)) for name, scorer in scorers.items()})
    models = {OURS: (OURS, {}), **{name: (name, kwargs) for name, kwargs in scored.RULE_OPTIONS.items()}}
    out, *_ = scored.horizon_figures(rows, scored.DAY, failures, models, replace(config, horizon_hours=horizon_hours))
    return {"horizon_hours": horizon_hours, "split": plan.to_dict(), **out}


def early_warning_horizon(
    features: pd.DataFrame, failures: pd.DataFrame, day_ahead: TrainedModel, head: EarlyWarningHead,
    config: ProtocolConfig,
) -> dict[str, Any]:
    """The early-warning head on its test period at its horizon, at the threshold it chose on validation,
    beside the rules and the 24 h head (at its own threshold); with the crew's figures (warning.py)."""
    from pdm_assets.lib.evaluation import scored  # scored builds on this module's types

    scorers = {EARLY_WARNING: Scorer.of(head.trained.pipeline, head.trained.feature_columns),
               OURS: Scorer.of(day_ahead.pipeline, day_ahead.feature_columns), **scored.RULE_SCORERS}
    rows = scored.scored_rows(features, {scored.EARLY: scored.early_role(features, features, failures, head)},
                              {name: (scorer, (scored.EARLY,)) for name, scorer in scorers.items()})
    return scored.early_warning_figures(rows, failures, day_ahead, head, config)


DAY_AHEAD = "day_ahead"  # the 24 h head scored at the early-warning horizon


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

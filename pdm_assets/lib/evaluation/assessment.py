"""One model in the harness: its thresholds chosen on validation, its test figures with machine-bootstrap
intervals, and whether it beats another model beyond those intervals."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from pdm_assets.lib.evaluation import bootstrap
from pdm_assets.lib.evaluation.events import EventView, earliest_alert_lead_hours, event_view
from pdm_assets.lib.evaluation.metrics import (
    calibration_table,
    class_codes,
    class_metrics,
    component_codes,
    confusion_matrix,
    evaluate_scores,
    labels_at,
    scored_frame,
)
from pdm_assets.lib.modelling.estimators import failure_probability, predict_components, score_failure
from pdm_assets.lib.modelling.labels import CLASSES
from pdm_assets.lib.modelling.train import choose_on_validation

if TYPE_CHECKING:  # the protocol's knobs; protocol.py imports this module
    from pdm_assets.lib.evaluation.protocol import ProtocolConfig

OURS = "ours"
# Metrics with machine-bootstrap intervals, and whether higher is better.
CI_METRICS: Mapping[str, bool] = {
    "row_pr_auc": True,
    "row_f1": True,
    "event_recall": True,
    "false_alarms_per_100_machine_days": False,
}


@dataclass(frozen=True)
class Scorer:
    """A model as the harness sees it: per-row none/comp1..4 frames, and P(failure) alone (cheaper)."""

    components: Callable[[pd.DataFrame], pd.DataFrame]
    failure: Callable[[pd.DataFrame], np.ndarray] | None = None

    def scores(self, rows: pd.DataFrame) -> np.ndarray:
        return self.failure(rows) if self.failure is not None else failure_probability(self.components(rows))

    def predicted(self, rows: pd.DataFrame) -> Predicted:
        return Predicted.of(self.components(rows))

    @classmethod
    def of(cls, pipeline: Pipeline, columns: Sequence[str]) -> Scorer:
        """A fitted pipeline reading `columns`."""
        wanted = list(columns)
        return cls(lambda rows: predict_components(pipeline, rows[wanted]),
                   lambda rows: score_failure(pipeline, rows[wanted]))


@dataclass(frozen=True)
class Predicted:
    """What the harness reads of a model's none/comp1..4 frame on test rows: P(failure) = 1 - P(none), the
    likeliest component (index in COMPONENTS) and the likeliest class (index in CLASSES)."""

    failure: np.ndarray
    component: np.ndarray
    top_class: np.ndarray

    @classmethod
    def of(cls, components: pd.DataFrame) -> Predicted:
        return cls(failure_probability(components), component_codes(components), class_codes(components))

    def labels(self, threshold: float) -> np.ndarray:
        """"none" below the threshold, otherwise the likeliest component."""
        return labels_at(self.component, self.failure, threshold)

    def argmax_labels(self) -> np.ndarray:
        """The likeliest of none/comp1..4: the guide's decision rule."""
        return np.asarray(CLASSES, dtype=object)[np.asarray(self.top_class, dtype=np.int64)]


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


def assess(
    name: str,
    validation: pd.DataFrame,
    val_scores: np.ndarray,
    test: pd.DataFrame,
    predicted: Predicted,
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
    scores = predicted.failure
    scored = scored_frame(test, scores)
    view = event_view(scored, failures, config.horizon_hours, config.grid_hours)
    metrics = evaluate_scores(scored, failures, threshold=threshold, horizon_hours=config.horizon_hours,
                              grid_hours=config.grid_hours, view=view)
    at_f1 = evaluate_scores(scored, failures, threshold=f1_threshold, horizon_hours=config.horizon_hours,
                            grid_hours=config.grid_hours, view=view)
    truth = test["failure"].to_numpy(bool)
    confusion = confusion_matrix(test["label"].to_numpy(object), predicted.labels(threshold))
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
        argmax_confusion=confusion_matrix(test["label"].to_numpy(object), predicted.argmax_labels()),
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

"""Test-period figures for one scored model: row level, per component, and event level."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from pdm_assets.lib.data.tables import COMPONENTS
from pdm_assets.lib.evaluation.events import EventView, event_metrics, event_view
from pdm_assets.lib.modelling.labels import CLASSES, NO_FAILURE

# The Microsoft Modelling Guide, split 3 (test from 2015-10-01 01:00), as published.
# Python GradientBoostingClassifier; rows = actual none/comp1..4, columns = predicted in the same order.
GUIDE_SPLIT3_CONFUSION: tuple[tuple[int, ...], ...] = (
    (71724, 7, 0, 4, 3),
    (17, 300, 1, 1, 1),
    (0, 1, 547, 0, 0),
    (11, 0, 0, 212, 1),
    (2, 1, 3, 0, 274),
)
GUIDE_R_GBM_MACRO_F1 = 0.952
CALIBRATION_BINS: tuple[float, ...] = (0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99, 1.0)


def row_metrics(failure: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """PR-AUC, ROC-AUC, Brier score and precision/recall/F1 of `score >= threshold` against `failure`."""
    truth = np.asarray(failure, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    predicted = score >= threshold
    both_classes = 0 < truth.sum() < len(truth)
    precision, recall, f1, _ = precision_recall_fscore_support(
        truth, predicted, average="binary", zero_division=0.0
    )
    return {
        "row_pr_auc": float(average_precision_score(truth, score)) if both_classes else float("nan"),
        "row_roc_auc": float(roc_auc_score(truth, score)) if both_classes else float("nan"),
        "row_precision": float(precision),
        "row_recall": float(recall),
        "row_f1": float(f1),
        "brier": brier_score(truth, score),
        "positive_rate": float(truth.mean()) if len(truth) else float("nan"),
        "rows": float(len(truth)),
    }


def brier_score(failure: np.ndarray, score: np.ndarray) -> float:
    """Mean squared difference between the probability and the 0/1 outcome."""
    truth = np.asarray(failure, dtype=np.float64)
    return float(np.mean((np.asarray(score, dtype=np.float64) - truth) ** 2)) if len(truth) else float("nan")


def calibration_table(
    failure: np.ndarray, score: np.ndarray, edges: tuple[float, ...] = CALIBRATION_BINS
) -> pd.DataFrame:
    """Rows, mean predicted probability and observed failure rate per probability bin [lo, hi)."""
    truth = np.asarray(failure, dtype=np.float64)
    score = np.clip(np.asarray(score, dtype=np.float64), 0.0, 1.0)
    # The last bin is closed so that a probability of exactly 1 has a home.
    index = np.clip(np.searchsorted(np.asarray(edges), score, side="right") - 1, 0, len(edges) - 2)
    frame = pd.DataFrame({"bin": index, "score": score, "failure": truth})
    grouped = frame.groupby("bin").agg(rows=("score", "size"), mean_predicted=("score", "mean"),
                                       observed_rate=("failure", "mean"))
    table = pd.DataFrame({"bin_lower": edges[:-1], "bin_upper": edges[1:]})
    table = table.join(grouped, how="left")
    table["rows"] = table["rows"].fillna(0).astype(int)
    return table


def f1_optimal_threshold(failure: np.ndarray, score: np.ndarray) -> float:
    """The threshold that maximises row F1 (ties: the highest), as a midpoint between adjacent scores."""
    truth = np.asarray(failure, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    order = np.argsort(-score, kind="stable")
    sorted_scores, sorted_truth = score[order], truth[order]
    distinct = np.flatnonzero(np.diff(sorted_scores) != 0)
    ends = np.concatenate([distinct, [len(score) - 1]]) if len(score) else np.array([], dtype=int)
    tp = np.cumsum(sorted_truth)[ends]
    alerts = ends + 1
    positives = truth.sum()
    f1 = np.where(alerts + positives > 0, 2 * tp / (alerts + positives), 0.0)
    if not len(f1) or positives == 0:
        return float(np.nextafter(max(score.max(initial=1.0), 1.0), np.inf))
    best = int(np.flatnonzero(f1 == f1.max())[0])  # the first in descending scores: the highest threshold
    top = sorted_scores[ends[best]]
    below = sorted_scores[ends[best] + 1] if ends[best] + 1 < len(score) else None
    return float((top + below) / 2.0) if below is not None else float(top)


def predicted_labels(components: pd.DataFrame, failure_score: np.ndarray, threshold: float) -> np.ndarray:
    """"none" below the threshold; otherwise the most probable component."""
    return labels_at(component_codes(components), failure_score, threshold)


def argmax_labels(components: pd.DataFrame) -> np.ndarray:
    """The most probable of none/comp1..4: the guide's decision rule."""
    return np.asarray(CLASSES, dtype=object)[class_codes(components)]


# Codes instead of labels: one byte per row is what the per-group scores keep of a model's components.
def component_codes(components: pd.DataFrame) -> np.ndarray:
    """The index in COMPONENTS of each row's most probable component."""
    return components[list(COMPONENTS)].to_numpy(np.float64).argmax(axis=1).astype(np.int8)


def class_codes(components: pd.DataFrame) -> np.ndarray:
    """The index in CLASSES of each row's most probable class, "none" included."""
    return components[list(CLASSES)].to_numpy(np.float64).argmax(axis=1).astype(np.int8)


def labels_at(component: np.ndarray, failure_score: np.ndarray, threshold: float) -> np.ndarray:
    """"none" below the threshold; otherwise the component whose code (index in COMPONENTS) is given."""
    comp = np.asarray(COMPONENTS, dtype=object)[np.asarray(component, dtype=np.int64)]
    return np.where(np.asarray(failure_score) >= threshold, comp, NO_FAILURE)


def confusion_matrix(actual: np.ndarray, predicted: np.ndarray) -> pd.DataFrame:
    """Counts with rows = actual none/comp1..4 and columns = predicted, the guide's layout."""
    classes = list(CLASSES)
    rows = pd.Categorical(np.asarray(actual, dtype=object), categories=classes).codes.astype(np.int64)
    cols = pd.Categorical(np.asarray(predicted, dtype=object), categories=classes).codes.astype(np.int64)
    if (rows < 0).any() or (cols < 0).any():
        raise ValueError(f"labels must be among {classes}")
    counts = np.zeros((len(classes), len(classes)), dtype=np.int64)
    np.add.at(counts, (rows, cols), 1)
    frame = pd.DataFrame(counts, index=pd.Index(classes, name="actual"), columns=pd.Index(classes, name="predicted"))
    return frame


def class_metrics(confusion: pd.DataFrame) -> pd.DataFrame:
    """Precision, recall, F1 and support of each class from a confusion matrix."""
    counts = confusion.to_numpy(np.float64)
    hits = np.diag(counts)
    predicted = counts.sum(axis=0)
    actual = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(predicted > 0, hits / predicted, 0.0)
        recall = np.where(actual > 0, hits / actual, np.nan)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(int)}, index=confusion.index
    )


def macro_f1(confusion: pd.DataFrame) -> float:
    """Unweighted mean of the per-class F1 over classes that occur."""
    table = class_metrics(confusion)
    return float(table.loc[table["support"] > 0, "f1"].mean())


def failure_vs_none(confusion: pd.DataFrame) -> dict[str, float]:
    """Row precision, recall and F1 of "some failure" against "none", read off a 5-class confusion matrix."""
    counts = confusion.to_numpy(np.float64)
    tp = counts[1:, 1:].sum()
    fp = counts[0, 1:].sum()
    fn = counts[1:, 0].sum()
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": float(precision), "recall": float(recall), "f1": float(f1)}


def guide_confusion() -> pd.DataFrame:
    """The guide's published split-3 confusion matrix in our layout."""
    classes = list(CLASSES)
    return pd.DataFrame(
        np.asarray(GUIDE_SPLIT3_CONFUSION, dtype=np.int64),
        index=pd.Index(classes, name="actual"),
        columns=pd.Index(classes, name="predicted"),
    )


def scored_frame(rows: pd.DataFrame, score: np.ndarray) -> pd.DataFrame:
    """The (machineID, datetime, failure, score) frame the event functions read."""
    return rows[["machineID", "datetime", "failure"]].assign(score=np.asarray(score, dtype=np.float64))


def evaluate_scores(
    scored: pd.DataFrame,
    failures: pd.DataFrame,
    *,
    threshold: float,
    horizon_hours: int,
    grid_hours: int,
    view: EventView | None = None,
) -> dict[str, Any]:
    """Row and event metrics for rows (machineID, datetime, failure, score) at one threshold."""
    scores = scored["score"].to_numpy(float)
    rows = row_metrics(scored["failure"].to_numpy(bool), scores, threshold)
    view = view if view is not None else event_view(scored, failures, horizon_hours, grid_hours)
    events = event_metrics(view, scores, threshold)
    return {
        **rows,
        "threshold": float(threshold),
        "events": events.events,
        "events_detected": events.detected,
        "event_recall": events.event_recall,
        "lead_time_median_h": events.lead_time_median_h,
        "lead_time_p10_h": events.lead_time_p10_h,
        "false_alarms": events.false_alarms,
        "false_alarms_per_100_machine_days": events.false_alarms_per_100_machine_days,
        "machine_days": view.machine_days,
    }

"""Test-period evaluation: row-level and event-level figures for one scored model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from pdm_assets.lib.events import event_metrics, event_view


def row_metrics(failure: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """PR-AUC, ROC-AUC and precision/recall/F1 of `score >= threshold` against `failure`."""
    truth = np.asarray(failure, dtype=bool)
    predicted = np.asarray(score) >= threshold
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
        "positive_rate": float(truth.mean()) if len(truth) else float("nan"),
        "rows": float(len(truth)),
    }


def evaluate_scores(
    scored: pd.DataFrame, failures: pd.DataFrame, *, threshold: float, horizon_hours: int, grid_hours: int
) -> dict[str, Any]:
    """Row and event metrics for rows (machineID, datetime, failure, score) at one threshold."""
    rows = row_metrics(scored["failure"].to_numpy(bool), scored["score"].to_numpy(float), threshold)
    view = event_view(scored, failures, horizon_hours, grid_hours)
    events = event_metrics(view, scored["score"].to_numpy(float), threshold)
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
    }

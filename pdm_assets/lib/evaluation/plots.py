"""Evaluation figures as small PNGs (bytes), and the markdown that shows them inline in the Dagster UI."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

DPI = 72
SIZE = (5.0, 3.6)
CURVE_POINTS = 2000
PLOT_NAMES: tuple[str, ...] = ("pr_curve", "calibration", "confusion_matrix", "lead_time", "feature_importance")


def png(figure: Figure) -> bytes:
    """Render a figure to PNG bytes and release it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def markdown_image(name: str, data: bytes) -> str:
    """A markdown image with a base64 data URI, which Dagster's MetadataValue.md renders."""
    return f"![{name}](data:image/png;base64,{base64.b64encode(data).decode('ascii')})"


def pr_curves(
    truth: np.ndarray, scores: Mapping[str, np.ndarray], points: Mapping[str, tuple[float, float]] | None = None
) -> bytes:
    """Precision against recall of each scored model; rules as single points; the positive rate as a line."""
    figure, axis = plt.subplots(figsize=SIZE)
    positive_rate = float(np.mean(truth)) if len(truth) else 0.0
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(truth, score)
        step = max(1, len(recall) // CURVE_POINTS)  # a few thousand points draw the same picture
        axis.step(recall[::step], precision[::step], where="post", label=name, linewidth=1.4)
    for name, (recall_at, precision_at) in (points or {}).items():
        axis.plot([recall_at], [precision_at], marker="o", linestyle="none", label=name)
    axis.axhline(positive_rate, color="grey", linestyle=":", label=f"always none (positive rate {positive_rate:.3f})")
    axis.set(xlabel="recall (rows)", ylabel="precision (rows)", xlim=(0, 1.01), ylim=(0, 1.02),
             title="Precision-recall on the test period")
    axis.legend(fontsize=7, loc="lower left")
    return png(figure)


def calibration(tables: Mapping[str, pd.DataFrame]) -> bytes:
    """Observed failure rate against mean predicted probability per bin, bins with rows only."""
    figure, axis = plt.subplots(figsize=SIZE)
    axis.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    for name, table in tables.items():
        used = table[table["rows"] > 0]
        axis.plot(used["mean_predicted"], used["observed_rate"], marker="o", label=name)
    axis.set(xlabel="mean predicted P(failure within horizon)", ylabel="observed failure rate",
             xlim=(0, 1), ylim=(0, 1), title="Calibration on the test period")
    axis.legend(fontsize=7, loc="upper left")
    return png(figure)


def confusion(matrix: pd.DataFrame, title: str) -> bytes:
    """A confusion matrix with counts, rows = actual, columns = predicted (log colour scale)."""
    figure, axis = plt.subplots(figsize=(4.4, 3.8))
    counts = matrix.to_numpy()
    axis.imshow(np.log1p(counts), cmap="Blues")
    for (i, j), value in np.ndenumerate(counts):
        axis.text(j, i, str(value), ha="center", va="center", fontsize=8,
                  color="white" if np.log1p(value) > np.log1p(counts.max()) * 0.6 else "black")
    axis.set_xticks(range(len(matrix.columns)), list(matrix.columns))
    axis.set_yticks(range(len(matrix.index)), list(matrix.index))
    axis.set(xlabel="predicted", ylabel="actual", title=title)
    return png(figure)


def lead_times(hours: np.ndarray, horizon_hours: int, grid_hours: int) -> bytes:
    """Histogram of the hours from the earliest alert to the failure, per announced event."""
    figure, axis = plt.subplots(figsize=SIZE)
    edges = [float(x) for x in np.arange(0, horizon_hours + grid_hours, grid_hours) - grid_hours / 2]
    axis.hist(hours, bins=edges, color="tab:blue", edgecolor="white")
    if len(hours):
        axis.axvline(float(np.median(hours)), color="black", linestyle="--", label=f"median {np.median(hours):.0f} h")
        axis.legend(fontsize=8)
    axis.set(xlabel="lead time of the earliest alert (h)", ylabel="failure events",
             title=f"Lead time ({len(hours)} announced events)")
    return png(figure)


def importance(table: pd.DataFrame, top: int = 15) -> bytes:
    """Horizontal bars of the largest permutation importances, with their spread."""
    shown = table.head(top).iloc[::-1]
    figure, axis = plt.subplots(figsize=(5.0, 0.25 * len(shown) + 1.2))
    axis.barh(shown["feature"], shown["importance"], xerr=shown["std"], color="tab:blue")
    axis.set(xlabel="drop in validation PR-AUC when shuffled", title="Permutation importance (validation)")
    axis.tick_params(axis="y", labelsize=7)
    return png(figure)


def render(
    truth: np.ndarray,
    scores: Mapping[str, np.ndarray],
    points: Mapping[str, tuple[float, float]],
    calibration_tables: Mapping[str, pd.DataFrame],
    matrix: pd.DataFrame,
    lead_hours: np.ndarray,
    importance_table: pd.DataFrame,
    *,
    horizon_hours: int,
    grid_hours: int,
) -> dict[str, bytes]:
    """Every evaluation figure, by name (PLOT_NAMES)."""
    return {
        "pr_curve": pr_curves(truth, scores, points),
        "calibration": calibration(calibration_tables),
        "confusion_matrix": confusion(matrix, "Ours at the chosen threshold (test)"),
        "lead_time": lead_times(lead_hours, horizon_hours, grid_hours),
        "feature_importance": importance(importance_table),
    }


def gallery(images: Mapping[str, bytes], order: Sequence[str] = PLOT_NAMES) -> str:
    """All figures as one markdown document."""
    return "\n\n".join(f"**{name}**\n\n{markdown_image(name, images[name])}" for name in order if name in images)


def lead_time_vs_false_alarms(report: Mapping[str, Any]) -> bytes:
    """First-alert lead (share >= 36 h ahead, median) and event recall against false-alarm episodes as the
    threshold moves (rolling origin), each model's operating point with its interval, the targets shaded."""
    figure, axes = plt.subplots(1, 3, figsize=(13.5, 3.8), sharex=True)
    horizon = report["horizon_hours"]
    panels = (("share_first_alerted_36h_ahead", "share of events first alerted ≥ 36 h ahead", (0.5, 1.05)),
              ("lead_time_median_h", "median first-alert lead (h)", None),
              ("event_recall", f"event recall within {horizon} h", (0.95, 1.05)))
    for axis, (key, label, target) in zip(axes, panels, strict=True):
        for name, curve in report["curves"].items():
            # In threshold order: the path the operating point takes as the threshold falls.
            order = np.argsort(np.asarray(curve["threshold"], dtype=float))[::-1]
            x = np.asarray(curve["false_alarm_episodes_per_100_machine_days"], dtype=float)[order]
            y = np.asarray([np.nan if v is None else v for v in curve[key]], dtype=float)[order]
            axis.plot(x, y, linewidth=1.1, marker=".", markersize=3, label=f"{name} (threshold moves)")
        for name, figures in report["models"].items():
            x, y = figures["false_alarm_episodes_per_100_machine_days"], figures[key]
            if x is None or y is None:
                continue
            x_ci, y_ci = figures["ci"]["false_alarm_episodes_per_100_machine_days"], figures["ci"][key]
            axis.errorbar([x], [y], xerr=_error(x, x_ci), yerr=_error(y, y_ci), marker="o", capsize=3,
                          linestyle="none", label=f"{name} at its threshold")
        if target is not None:
            axis.fill_between([0.0, 1.0], target[0], target[1], color="tab:green", alpha=0.15, label="target")
            axis.set_ylim(0, 1.05)
        else:
            axis.axhline(36.0, color="grey", linestyle=":")
            axis.set_ylim(0, horizon)
        axis.set(xscale="symlog", xlim=(0, None), xlabel="false-alarm episodes per 100 machine-days", ylabel=label)
    axes[1].legend(fontsize=6.5, loc="lower right")
    figure.suptitle(f"Rolling origin ({report.get('data_source', '')}): {report['models']['early_warning']['events']} "
                    f"events within {horizon} h, {report['machines']} machines", fontsize=10)
    return png(figure)


def _error(value: float | None, interval: Sequence[float | None]) -> list[list[float]]:
    """Asymmetric error bar lengths from an interval (zero where unknown)."""
    if value is None or interval[0] is None or interval[1] is None:
        return [[0.0], [0.0]]
    return [[max(value - float(interval[0]), 0.0)], [max(float(interval[1]) - value, 0.0)]]

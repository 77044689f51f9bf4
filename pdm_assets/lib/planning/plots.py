"""The planner's figures as PNG bytes: the fleet heat-map and the realized outcomes per week."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pdm_assets.lib.evaluation.plots import DPI, png

MAX_MACHINES_SHOWN = 100


def risk_heatmap(worklists: pd.DataFrame, threshold: float | None = None) -> bytes:
    """Machines x days, coloured by P(failure) on a log scale; alerts ringed; the riskiest machines first."""
    grid = worklists.pivot_table(index="machineID", columns="day", values="failure_probability", aggfunc="max")
    grid = grid.loc[grid.max(axis=1).sort_values(ascending=False).index[:MAX_MACHINES_SHOWN]]
    height = 1.2 + 0.12 * len(grid)
    figure, axis = plt.subplots(figsize=(min(14.0, 3.0 + 0.12 * grid.shape[1]), min(16.0, height)))
    values = np.clip(grid.to_numpy(np.float64), 1e-4, 1.0)
    image = axis.imshow(np.log10(values), aspect="auto", cmap="magma_r", vmin=-4, vmax=0, interpolation="nearest")
    if threshold is not None:
        rows, cols = np.nonzero(grid.to_numpy(np.float64) >= threshold)
        axis.scatter(cols, rows, s=8, facecolors="none", edgecolors="cyan", linewidths=0.6, label="alert")
        if len(rows):
            axis.legend(loc="upper right", fontsize=7)
    days = [str(d) for d in grid.columns]
    step = max(1, len(days) // 12)
    axis.set_xticks(range(0, len(days), step), days[::step], rotation=60, fontsize=7)
    machine_step = max(1, len(grid) // 40)
    axis.set_yticks(range(0, len(grid), machine_step), [str(m) for m in grid.index[::machine_step]], fontsize=6)
    axis.set(xlabel="day (scored at 23:00)", ylabel="machine", title="Fleet risk: P(failure within the horizon)")
    colorbar = figure.colorbar(image, ax=axis, fraction=0.03)
    colorbar.set_ticks([-4, -3, -2, -1, 0], labels=["1e-4", "0.001", "0.01", "0.1", "1"])
    return png(figure)


def outcome_trends(weekly: pd.DataFrame, champion_recall: float | None = None) -> bytes:
    """Realized event recall and precision of the top N per week, and false alarms per 100 machine-days."""
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(6.0, 4.6), sharex=True)
    for source, rows in weekly.groupby("source"):
        weeks = pd.to_datetime(rows["week"])
        top.plot(weeks, rows["event_recall"], marker="o", label=f"event recall ({source})")
        top.plot(weeks, rows["top_n_precision"], marker="s", linestyle="--", label=f"top-N precision ({source})")
        bottom.plot(weeks, rows["false_alarms_per_100_machine_days"], marker="o", label=str(source))
    if champion_recall is not None:
        top.axhline(champion_recall, color="grey", linestyle=":", label="champion's test recall")
    top.set(ylabel="share", ylim=(-0.02, 1.05), title="Realized outcomes per week")
    top.legend(fontsize=6, loc="lower left")
    bottom.set(ylabel="false alarms / 100 machine-days", xlabel="week")
    bottom.legend(fontsize=6)
    figure.autofmt_xdate()
    figure.set_dpi(DPI)
    return png(figure)

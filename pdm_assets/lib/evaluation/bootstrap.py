"""Bootstrap confidence intervals that resample machines, not rows, computed for all resamples at once.

Rows of one machine are correlated (the same failure labels eight 3-hour rows), so resampling rows would
give intervals that are too narrow. A resample draws machines with replacement; a machine drawn k times
counts k times. Every figure is a ratio of per-machine sums, so one matrix product (resamples x machines)
@ (machines x sums) gives it for every resample; the models compared share the same draws (paired).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from pdm_assets.lib.evaluation.events import EventView

logger = logging.getLogger(__name__)

DEFAULT_RESAMPLES = 200
DEFAULT_LEVEL = 0.95


@dataclass(frozen=True)
class Resamples:
    """How many times each machine is drawn in each resample: counts[b, m] for machines[m]."""

    machines: np.ndarray
    counts: np.ndarray

    def index(self, machine_ids: np.ndarray) -> np.ndarray:
        """Column of each machine id in `counts` (every id must be one of `machines`)."""
        position = np.searchsorted(self.machines, machine_ids)
        known = np.isin(machine_ids, self.machines)
        if not known.all():
            raise ValueError("a machine id is missing from the resampled machines; draw over every scored machine")
        return position


def draw_machines(machine_ids: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Resamples:
    """Resamples of the distinct machines with replacement, deterministic under the seed."""
    machines = np.unique(np.asarray(machine_ids, dtype=np.int64))
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(machines), np.full(len(machines), 1.0 / len(machines)), size=resamples)
    logger.info("bootstrap: %d resamples of %d machines (seed %d)", resamples, len(machines), seed)
    return Resamples(machines, counts.astype(np.float64))


def per_machine(draws: Resamples, machine_ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Sum of `values` per machine, in the order of draws.machines."""
    sums = np.zeros(len(draws.machines))
    np.add.at(sums, draws.index(np.asarray(machine_ids, dtype=np.int64)), values)
    return sums


def average_precision(draws: Resamples, machine_ids: np.ndarray, failure: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Average precision (as sklearn's average_precision_score) of each resample.

    AP = sum over distinct positive scores s (descending) of (R(s) - R(s_prev)) * P(s), where P and R count
    rows scoring >= s. Only positive scores move R, so each row is filed under the lowest positive score it
    reaches; a sparse (machines x levels) count matrix weighted by each resample's machine counts, summed
    cumulatively over levels, gives the true and false positives of every resample at every level.
    """
    truth = np.asarray(failure, dtype=bool)
    score = np.asarray(score, dtype=np.float64)
    column = draws.index(np.asarray(machine_ids, dtype=np.int64))
    ascending = np.unique(score[truth])
    if len(ascending) == 0:
        return np.full(len(draws.counts), np.nan)
    levels = len(ascending)
    reach = np.searchsorted(ascending, score, side="right") - 1  # rows below every positive score: -1
    keep = reach >= 0
    level = levels - 1 - reach[keep]  # 0 = the highest positive score
    machines = len(draws.machines)

    def weighted(rows: np.ndarray) -> np.ndarray:
        counts = sparse.csr_matrix(
            (np.ones(int(rows.sum())), (level[rows], column[keep][rows])), shape=(levels, machines)
        )
        return np.cumsum(np.asarray(counts @ draws.counts.T).T, axis=1)  # (resamples, levels)

    tp = weighted(truth[keep])
    fp = weighted(~truth[keep])
    total = tp[:, -1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / total
        precision = np.where(tp + fp > 0, tp / (tp + fp), 0.0)
        gain = np.diff(np.concatenate([np.zeros((len(tp), 1)), recall], axis=1), axis=1)
        ap = np.nansum(gain * precision, axis=1)
    return np.where(total[:, 0] > 0, ap, np.nan)


def f1_at_threshold(
    draws: Resamples, machine_ids: np.ndarray, failure: np.ndarray, score: np.ndarray, threshold: float
) -> np.ndarray:
    """Row F1 of `score >= threshold` in each resample."""
    truth = np.asarray(failure, dtype=bool)
    alert = np.asarray(score, dtype=np.float64) >= threshold
    tp = draws.counts @ per_machine(draws, machine_ids, (truth & alert).astype(float))
    fp = draws.counts @ per_machine(draws, machine_ids, (~truth & alert).astype(float))
    fn = draws.counts @ per_machine(draws, machine_ids, (truth & ~alert).astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), np.nan)


def event_figures(
    draws: Resamples, view: EventView, threshold: float, row_machine_ids: np.ndarray
) -> dict[str, np.ndarray]:
    """Event recall and false alarms per 100 machine-days of each resample (rows = every scored row)."""
    events = draws.counts @ per_machine(draws, view.event_machine, np.ones(len(view.event_machine)))
    detected = draws.counts @ per_machine(
        draws, view.event_machine, (view.event_best_score >= threshold).astype(float)
    )
    alarms = draws.counts @ per_machine(
        draws, view.negative_machine, (view.negative_scores >= threshold).astype(float)
    )
    machine_days = draws.counts @ per_machine(draws, row_machine_ids, np.ones(len(row_machine_ids))) * (
        view.grid_hours / 24.0
    )
    return {
        "event_recall": _ratio(detected, events),
        "false_alarms_per_100_machine_days": _ratio(100.0 * alarms, machine_days),
    }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def interval(samples: np.ndarray, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Percentile interval of the finite samples (NaN, NaN when none is finite)."""
    finite = np.asarray(samples, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if not len(finite):
        return (float("nan"), float("nan"))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(low), float(high))


def separated(ours: tuple[float, float], theirs: tuple[float, float]) -> str:
    """"better" / "worse" when two intervals do not overlap (higher is better), else "overlap"."""
    if not all(np.isfinite([*ours, *theirs])):
        return "overlap"
    if ours[0] > theirs[1]:
        return "better"
    if ours[1] < theirs[0]:
        return "worse"
    return "overlap"

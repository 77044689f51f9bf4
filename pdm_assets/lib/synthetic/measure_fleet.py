"""Measure the fleet the simulator reproduces: machine models and ages, and how often a replaced component
had failed, by model and age, once enough days had passed since its last replacement."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy.special import xlogy

from pdm_assets.lib.data.tables import COMPONENTS, MACHINE_MODELS
from pdm_assets.lib.synthetic.measure_common import as_times, hours_from, in_days, keyed, rounded


def model_shares(machines: pd.DataFrame) -> dict[str, float]:
    """Share of machines of each model."""
    counts = machines["model"].astype(str).value_counts()
    return {m: rounded(counts.get(m, 0) / len(machines)) for m in MACHINE_MODELS}


def age_probabilities(machines: pd.DataFrame) -> tuple[float, ...]:
    """Share of machines of each age in years, from 0 to the oldest."""
    counts = np.bincount(machines["age"].to_numpy(dtype=np.int64))
    return tuple(rounded(c / len(machines)) for c in counts)


def regular_failures(failures: pd.DataFrame, hour: int) -> pd.DataFrame:
    """Failures at the hour of day of replacements (the others are log-start artifacts)."""
    return failures[as_times(failures).dt.hour == hour]


def min_days_to_failure(maint: pd.DataFrame, failures: pd.DataFrame, interval_days: int) -> dict[str, int]:
    """Per component, the fewest days from a replacement to its next failure, up to whole intervals."""
    gaps = _days_since_replacement(maint, failures)
    shortest = _inspections_since(gaps.groupby("comp")["days"].min(), interval_days)
    return {c: int(shortest.get(c, 1)) * interval_days for c in COMPONENTS}


def _inspections_since(days: pd.Series, interval_days: int) -> pd.Series:
    """Days as whole inspections, rounded up (off-schedule records count as the next inspection)."""
    return np.ceil(days / interval_days - 1e-9)


def _days_since_replacement(maint: pd.DataFrame, failures: pd.DataFrame) -> pd.DataFrame:
    """Each failure with the days since its component's previous replacement."""
    left = keyed(failures, "failure").sort_values("datetime")
    right = keyed(maint, "comp").rename(columns={"datetime": "replaced"}).sort_values("replaced")
    merged = pd.merge_asof(
        left,
        right,
        left_on="datetime",
        right_on="replaced",
        by=["machineID", "comp"],
        allow_exact_matches=False,
    )
    merged["days"] = in_days(merged["datetime"] - merged["replaced"])
    return merged.dropna(subset=["days"])


def eligible_replacements(
    maint: pd.DataFrame,
    window: tuple[pd.Timestamp, pd.Timestamp],
    min_days: Mapping[str, int],
    interval_days: int,
    machine_ids: np.ndarray,
) -> np.ndarray:
    """Machines x components: replacements in the window at least `min_days` after the previous one.

    A first record (no previous one known) counts as eligible.
    """
    frame = keyed(maint, "comp").sort_values(["machineID", "comp", "datetime"])
    days = in_days(frame.groupby(["machineID", "comp"])["datetime"].diff())
    shortest = frame["comp"].map(min_days).to_numpy(dtype=np.float64) / interval_days
    counted = (frame["datetime"] >= window[0]) & (frame["datetime"] < window[1])
    counted &= days.isna() | (_inspections_since(days, interval_days) >= shortest)
    table = pd.crosstab(frame.loc[counted, "machineID"], frame.loc[counted, "comp"])
    return table.reindex(index=machine_ids, columns=list(COMPONENTS), fill_value=0).to_numpy()


def _fit_rates(
    failures: np.ndarray, exposure: np.ndarray, models: np.ndarray, young: np.ndarray
) -> tuple[dict[str, float], float, float]:
    """Poisson fit of failures = exposure * p[model] * (young_factor if young): p, factor, log-likelihood."""
    factor = 1.0
    share = dict.fromkeys(MACHINE_MODELS, 0.0)
    for _ in range(200):
        weight = exposure * np.where(young, factor, 1.0)
        for model in MACHINE_MODELS:
            chosen = models == model
            total = weight[chosen].sum()
            share[model] = failures[chosen].sum() / total if total > 0 else 0.0
        expected_young = (exposure * np.array([share[m] for m in models]))[young].sum()
        factor = failures[young].sum() / expected_young if expected_young > 0 else 1.0
    rate = exposure * np.array([share[m] for m in models]) * np.where(young, factor, 1.0)
    return share, factor, float((xlogy(failures, rate) - rate).sum())


def failure_probabilities(
    failures: np.ndarray, exposure: np.ndarray, models: np.ndarray, ages: np.ndarray
) -> tuple[dict[str, dict[str, float]], dict[str, float], dict[str, int]]:
    """Per component: failures per eligible replacement by model, and the age split that explains them best.

    `failures` and `exposure` are machines x components. An age split (young = under the threshold) is kept
    only when it raises the log-likelihood by more than log(machines), a BIC-like penalty.
    """
    shares, factors, thresholds = {}, {}, {}
    for index, comp in enumerate(COMPONENTS):
        counts, exposed = failures[:, index], exposure[:, index]
        unsplit = (*_fit_rates(counts, exposed, models, np.zeros(len(ages), dtype=bool)), 0)
        splits = [(*_fit_rates(counts, exposed, models, ages < a), int(a)) for a in np.unique(ages)[1:]]
        best = max(splits, key=lambda split: split[2], default=unsplit)
        if best[2] <= unsplit[2] + math.log(len(ages)):
            best = unsplit
        shares[comp] = {model: rounded(value) for model, value in best[0].items()}
        factors[comp], thresholds[comp] = rounded(best[1]), best[3]
    return shares, factors, thresholds


def failure_counts(failures: pd.DataFrame, machine_ids: np.ndarray) -> np.ndarray:
    """Machines x components: how many failures."""
    table = pd.crosstab(failures["machineID"], failures["failure"].astype(str))
    return table.reindex(index=machine_ids, columns=list(COMPONENTS), fill_value=0).to_numpy()


def log_start_failures(
    failures: pd.DataFrame, hour: int, start: pd.Timestamp, machines: int
) -> tuple[float, int]:
    """Failures away from the replacement hour per machine, and their median hours after `start`."""
    odd = failures[as_times(failures).dt.hour != hour]
    if odd.empty:
        return 0.0, 0
    return rounded(len(odd) / machines), int(np.median(hours_from(as_times(odd), start)))

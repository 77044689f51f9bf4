"""Feature drift between a reference window and a recent window: PSI, KS and the alert-rate shift."""

from __future__ import annotations

import http.client
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from prometheus_client import CollectorRegistry, Gauge, generate_latest, push_to_gateway
from scipy import stats

PSI_BINS = 10
# The usual reading of PSI: < 0.1 stable, 0.1-0.25 moderate, > 0.25 a real shift.
PSI_DRIFT = 0.25
KS_ALPHA = 0.01
ALERT_RATE_RATIO_DRIFT = 3.0
_EPS = 1e-4
# The Pushgateway's job label: the textfile exporter's scrape job has the same name, so dashboards match either.
PUSHGATEWAY_JOB = "pdm-drift"
PUSH_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class DriftReport:
    """Per-feature PSI and KS, the alert rates of both windows, and whether it counts as drift."""

    features: pd.DataFrame  # feature, psi, ks_statistic, ks_pvalue, reference_mean, current_mean; worst first
    reference_rows: int
    current_rows: int
    reference_alert_rate: float
    current_alert_rate: float

    @property
    def max_psi(self) -> float:
        return float(self.features["psi"].max()) if len(self.features) else 0.0

    @property
    def alert_rate_ratio(self) -> float:
        return (self.current_alert_rate + _EPS) / (self.reference_alert_rate + _EPS)

    @property
    def drifted(self) -> bool:
        ratio = self.alert_rate_ratio
        return self.max_psi > PSI_DRIFT or ratio > ALERT_RATE_RATIO_DRIFT or ratio < 1 / ALERT_RATE_RATIO_DRIFT

    def worst(self, n: int = 10) -> pd.DataFrame:
        return self.features.head(n)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = PSI_BINS) -> float:
    """Population stability index over the reference's quantile bins (NaN counted as its own bin)."""
    ref, cur = np.asarray(reference, float), np.asarray(current, float)
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    finite = ref[~np.isnan(ref)]
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1))) if len(finite) else np.array([0.0])
    inner = edges[1:-1]

    def shares(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        counts = np.bincount(np.searchsorted(inner, values[~missing], side="right"), minlength=len(inner) + 1)
        counts = np.append(counts, missing.sum())
        return np.maximum(counts / len(values), _EPS)

    expected, actual = shares(ref), shares(cur)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and p-value on the non-missing values."""
    ref = np.asarray(reference, float)
    cur = np.asarray(current, float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    if len(ref) == 0 or len(cur) == 0:
        return float("nan"), float("nan")
    result = stats.ks_2samp(ref, cur)
    return float(result.statistic), float(result.pvalue)


def drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric_features: Sequence[str],
    reference_scores: np.ndarray,
    current_scores: np.ndarray,
    threshold: float,
) -> DriftReport:
    """Compare every numeric feature of two windows, worst PSI first, plus the alert rates at a threshold."""
    rows = []
    for feature in numeric_features:
        ref, cur = reference[feature].to_numpy(float), current[feature].to_numpy(float)
        statistic, pvalue = ks(ref, cur)
        rows.append(
            {
                "feature": feature,
                "psi": psi(ref, cur),
                "ks_statistic": statistic,
                "ks_pvalue": pvalue,
                "reference_mean": float(np.nanmean(ref)) if np.isfinite(ref).any() else float("nan"),
                "current_mean": float(np.nanmean(cur)) if np.isfinite(cur).any() else float("nan"),
            }
        )
    table = pd.DataFrame(rows).sort_values("psi", ascending=False, na_position="last").reset_index(drop=True)
    return DriftReport(
        features=table,
        reference_rows=len(reference),
        current_rows=len(current),
        reference_alert_rate=float(np.mean(reference_scores >= threshold)) if len(reference_scores) else 0.0,
        current_alert_rate=float(np.mean(current_scores >= threshold)) if len(current_scores) else 0.0,
    )


def drift_registry(report: DriftReport) -> CollectorRegistry:
    """The drift figures as Prometheus gauges, in a registry of their own (the textfile and the push share it)."""
    registry = CollectorRegistry()
    psi_gauge = Gauge(
        "pdm_feature_drift_psi",
        "PSI of a feature, recent window vs the champion training data.",
        ["feature"],
        registry=registry,
    )
    for feature, value in zip(report.features["feature"], report.features["psi"].to_numpy(float), strict=True):
        if np.isfinite(value):
            psi_gauge.labels(feature=str(feature)).set(float(value))
    ratio = Gauge("pdm_alert_rate_ratio", "Alert rate of the recent window over the reference's.", registry=registry)
    ratio.set(report.alert_rate_ratio)
    return registry


def prometheus_text(report: DriftReport) -> str:
    """The drift figures in Prometheus' text format, for a node-exporter textfile collector."""
    return generate_latest(drift_registry(report)).decode()


def push_drift_metrics(
    report: DriftReport, gateway_url: str, job: str = PUSHGATEWAY_JOB, timeout: float = PUSH_TIMEOUT_SECONDS
) -> str | None:
    """PUT the drift gauges to a Pushgateway; None when it took them, else why not (never raises for the network).

    PUT replaces everything the job pushed before, so a feature that left the report leaves the gateway too.
    """
    return push_registry(drift_registry(report), gateway_url, job, timeout)


def push_registry(
    registry: CollectorRegistry, gateway_url: str, job: str, timeout: float = PUSH_TIMEOUT_SECONDS
) -> str | None:
    """PUT a registry's gauges to a Pushgateway under `job`; None when it took them, else why not."""
    try:
        push_to_gateway(gateway_url, job=job, registry=registry, timeout=timeout)
    except (OSError, http.client.HTTPException, ValueError) as error:  # URLError and HTTPError are OSErrors
        return f"push to {gateway_url} failed: {type(error).__name__}: {error}"
    return None


def drift_windows(
    features: pd.DataFrame,
    reference_start: str,
    reference_end: str,
    window_days: int,
    max_reference_rows: int,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The champion's training rows (sampled) and the latest `window_days` of feature rows."""
    times = pd.to_datetime(features["datetime"])
    reference = features[(times >= pd.Timestamp(reference_start)) & (times < pd.Timestamp(reference_end))]
    if len(reference) > max_reference_rows:
        reference = reference.sample(max_reference_rows, random_state=seed)
    current = features[times > times.max() - pd.Timedelta(days=window_days)]
    return reference, current

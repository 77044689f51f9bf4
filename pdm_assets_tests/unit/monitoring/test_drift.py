"""Drift statistics on samples whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.monitoring.drift import PSI_DRIFT, drift_report, ks, prometheus_text, psi


def test_psi_of_identical_samples_is_zero() -> None:
    values = np.arange(100, dtype=float)
    assert psi(values, values) == pytest.approx(0.0, abs=1e-9)


def test_psi_by_hand_on_two_bins() -> None:
    reference = np.array([0.0, 0.0, 1.0, 1.0])  # two bins, 50/50
    current = np.array([0.0, 1.0, 1.0, 1.0])  # 25/75
    expected = (0.25 - 0.5) * np.log(0.25 / 0.5) + (0.75 - 0.5) * np.log(0.75 / 0.5)
    assert psi(reference, current, bins=2) == pytest.approx(expected, rel=1e-3)


def test_psi_counts_missing_values_as_their_own_bin() -> None:
    reference = np.arange(100, dtype=float)
    current = np.concatenate([np.arange(50, dtype=float), np.full(50, np.nan)])
    assert psi(reference, current) > PSI_DRIFT


def test_ks_separates_shifted_samples() -> None:
    rng = np.random.default_rng(0)
    same = ks(rng.normal(0, 1, 500), rng.normal(0, 1, 500))
    shifted = ks(rng.normal(0, 1, 500), rng.normal(1, 1, 500))
    assert same[1] > 0.01
    assert shifted[1] < 1e-6 and shifted[0] > same[0]


def test_report_ranks_the_shifted_feature_first_and_flags_drift() -> None:
    rng = np.random.default_rng(1)
    reference = pd.DataFrame({"volt": rng.normal(170, 15, 2000), "rotate": rng.normal(450, 50, 2000)})
    current = pd.DataFrame({"volt": rng.normal(200, 15, 300), "rotate": rng.normal(450, 50, 300)})
    report = drift_report(reference, current, ["volt", "rotate"], np.zeros(2000), np.zeros(300), threshold=0.5)
    assert report.worst(1)["feature"].item() == "volt"
    assert report.max_psi > PSI_DRIFT
    assert report.drifted
    assert 'pdm_feature_drift_psi{feature="volt"}' in prometheus_text(report)


def test_a_tripled_alert_rate_is_drift_even_without_feature_shift() -> None:
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"volt": rng.normal(170, 15, 1000)})
    reference_scores = np.r_[np.ones(10), np.zeros(990)]
    current_scores = np.r_[np.ones(40), np.zeros(960)]
    report = drift_report(frame, frame, ["volt"], reference_scores, current_scores, threshold=0.5)
    assert report.max_psi == pytest.approx(0.0, abs=1e-9)
    assert report.alert_rate_ratio == pytest.approx(4.0, rel=0.01)
    assert report.drifted


def test_same_distribution_is_not_drift() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"volt": rng.normal(170, 15, 3000)})
    current = pd.DataFrame({"volt": rng.normal(170, 15, 500)})
    report = drift_report(reference, current, ["volt"], np.zeros(3000), np.zeros(500), threshold=0.5)
    assert not report.drifted

"""Row, calibration and per-component figures on cases small enough to check by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.evaluation.metrics import (
    argmax_labels,
    brier_score,
    calibration_table,
    class_metrics,
    confusion_matrix,
    f1_optimal_threshold,
    failure_vs_none,
    guide_confusion,
    macro_f1,
    predicted_labels,
    row_metrics,
)
from pdm_assets.lib.modelling.labels import CLASSES

TRUTH = np.array([1, 1, 0, 0, 0], dtype=bool)
SCORE = np.array([0.9, 0.4, 0.6, 0.2, 0.1])


def test_row_metrics_by_hand() -> None:
    figures = row_metrics(TRUTH, SCORE, threshold=0.5)
    # Alerts: 0.9 (hit) and 0.6 (false); 0.4 missed.
    assert figures["row_precision"] == 0.5
    assert figures["row_recall"] == 0.5
    assert figures["row_f1"] == 0.5
    # Ranked P, N, P, N, N: AP = 1/2 * 1 + 1/2 * 2/3.
    assert figures["row_pr_auc"] == pytest.approx(0.5 + 1 / 3)
    # Positive-negative pairs ranked right: 0.9 beats 3, 0.4 beats 2 of 6.
    assert figures["row_roc_auc"] == pytest.approx(5 / 6)
    assert figures["brier"] == pytest.approx((0.01 + 0.36 + 0.36 + 0.04 + 0.01) / 5)
    assert figures["positive_rate"] == pytest.approx(0.4)


def test_row_metrics_of_a_model_that_never_alerts() -> None:
    figures = row_metrics(TRUTH, np.zeros(5), threshold=0.5)
    assert figures["row_f1"] == 0.0 and figures["row_recall"] == 0.0
    assert figures["row_pr_auc"] == pytest.approx(0.4)  # constant scores: AP is the positive rate


def test_brier_score_of_perfect_and_worst_forecasts() -> None:
    assert brier_score(TRUTH, TRUTH.astype(float)) == 0.0
    assert brier_score(TRUTH, 1.0 - TRUTH) == 1.0


def test_calibration_table_bins() -> None:
    table = calibration_table(np.array([0, 0, 1, 0, 1]), np.array([0.1, 0.2, 0.4, 0.6, 1.0]), edges=(0.0, 0.5, 1.0))
    assert list(table["rows"]) == [3, 2]
    assert table["mean_predicted"].tolist() == pytest.approx([0.7 / 3, 0.8])
    assert table["observed_rate"].tolist() == pytest.approx([1 / 3, 0.5])


def test_calibration_table_keeps_empty_bins() -> None:
    table = calibration_table(np.array([0, 1]), np.array([0.05, 0.06]), edges=(0.0, 0.5, 1.0))
    assert list(table["rows"]) == [2, 0]
    assert np.isnan(table["observed_rate"].iloc[1])


def test_f1_optimal_threshold_by_hand() -> None:
    # Alerting at >= 0.9: F1 2/3; >= 0.6: 1/2; >= 0.4: 4/5 (best); >= 0.2: 2/3; all: 4/7.
    threshold = f1_optimal_threshold(TRUTH, SCORE)
    assert threshold == pytest.approx(0.3)  # between 0.4 and the next score down, 0.2
    assert row_metrics(TRUTH, SCORE, threshold)["row_f1"] == pytest.approx(0.8)


def test_f1_optimal_threshold_without_positives_never_alerts() -> None:
    assert f1_optimal_threshold(np.zeros(3, bool), np.array([0.1, 0.5, 0.9])) > 0.9


def components(rows: list[list[float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=list(CLASSES))


def test_predicted_labels_name_the_likeliest_component_above_the_threshold() -> None:
    probs = components([[0.9, 0.05, 0.05, 0, 0], [0.3, 0.1, 0.5, 0.1, 0.0], [0.45, 0.0, 0.0, 0.05, 0.5]])
    score = 1.0 - probs["none"].to_numpy()
    assert list(predicted_labels(probs, score, threshold=0.6)) == ["none", "comp2", "none"]
    assert list(argmax_labels(probs)) == ["none", "comp2", "comp4"]


def test_confusion_matrix_layout_rows_actual_columns_predicted() -> None:
    actual = np.array(["none", "comp1", "comp1", "comp2"])
    matrix = confusion_matrix(actual, np.array(["none", "comp1", "none", "comp3"]))
    assert list(matrix.index) == list(CLASSES) and list(matrix.columns) == list(CLASSES)
    assert matrix.loc["comp1", "comp1"] == 1
    assert matrix.loc["comp1", "none"] == 1
    assert matrix.loc["comp2", "comp3"] == 1
    assert matrix.to_numpy().sum() == 4


def test_guide_matrix_figures_by_hand() -> None:
    guide = guide_confusion()
    per_class = class_metrics(guide)
    assert per_class.loc["comp1", "precision"] == pytest.approx(300 / 309)  # column comp1: 7 + 300 + 1 + 0 + 1
    assert per_class.loc["comp1", "recall"] == pytest.approx(300 / 320)  # row comp1: 17 + 300 + 1 + 1 + 1
    fvn = failure_vs_none(guide)
    # Some failure predicted for a failing row: 1342; for a normal row: 14; none for a failing row: 30.
    assert fvn["precision"] == pytest.approx(1342 / 1356)
    assert fvn["recall"] == pytest.approx(1342 / 1372)
    assert 0.95 < macro_f1(guide) < 1.0

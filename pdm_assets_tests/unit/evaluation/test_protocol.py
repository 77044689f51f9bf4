"""The whole protocol on a small synthetic fleet: every model on the same rows, intervals, stable keys."""

from __future__ import annotations

import json
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from pdm_assets.lib.evaluation import guide_splits, protocol
from pdm_assets.lib.modelling.dataset import plan_for_table
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.modelling.train import fit_and_tune
from pdm_assets_tests.support.fleet import TEST_START, TRAIN_END, StandardSplit

Result = tuple[protocol.ProtocolResult, pd.DataFrame, pd.DataFrame]
CONFIG = protocol.ProtocolConfig(horizon_hours=24, grid_hours=3, cost_missed=50, cost_false_alarm=1,
                                 negative_fraction=0.25, seed=0, resamples=60, replica_max_rows=300)
REPORT_KEYS = {
    "row_pr_auc", "row_roc_auc", "row_f1", "row_precision", "row_recall", "threshold", "event_recall",
    "lead_time_median_h", "false_alarms_per_100_machine_days", "ci", "baselines", "confusion_matrix", "split",
    "horizon_hours", "data_source", "positive_rate", "test_start",
}


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with threadpool_limits(1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def result(standard_split: StandardSplit) -> Result:
    fleet, features, table, plan, parts = (standard_split.fleet, standard_split.features, standard_split.table,
                                           standard_split.plan, standard_split.parts)
    with threadpool_limits(1, user_api="openmp"):
        trained = fit_and_tune(parts["train"], parts["validation"], fleet.failures, feature_columns=FEATURE_COLUMNS,
                               horizon_hours=24, grid_hours=3, cost_missed=50, cost_false_alarm=1,
                               negative_fraction=0.25, seed=0)
        outcome = protocol.run_protocol(table, fleet.failures, plan, trained, CONFIG)
        outcome.horizons["48"] = protocol.other_horizon(features, fleet.failures, trained, CONFIG, horizon_hours=48,
                                                        train_end=TRAIN_END, test_start=TEST_START)
    return outcome, parts["test"], fleet.failures


def test_every_model_is_scored_on_the_same_test_rows(result: Result) -> None:
    outcome, test, _ = result
    assert set(outcome.assessments) == {"ours", "always_none", "error_rule", "guide_replica", "ours_no_telemetry"}
    for assessment in outcome.assessments.values():
        assert len(assessment.test_scores) == len(test)
        assert assessment.confusion.to_numpy().sum() == len(test)
        assert assessment.metrics["events"] == outcome.ours.metrics["events"] > 0


def test_rules_keep_their_fixed_threshold_and_always_none_never_alerts(result: Result) -> None:
    outcome, _, _ = result
    none = outcome.assessments["always_none"].metrics
    assert none["threshold"] == protocol.RULE_THRESHOLD
    assert none["event_recall"] == 0.0 and none["false_alarms"] == 0
    assert outcome.assessments["error_rule"].metrics["threshold"] == protocol.RULE_THRESHOLD


def test_intervals_contain_the_point_figures(result: Result) -> None:
    outcome, _, _ = result
    for assessment in outcome.assessments.values():
        for metric, (low, high) in assessment.ci.items():
            value = assessment.metrics[metric]
            if np.isfinite([low, high, value]).all():
                assert low - 1e-9 <= value <= high + 1e-9, (assessment.name, metric)


def test_ours_beats_always_none_where_intervals_separate(result: Result) -> None:
    outcome, _, _ = result
    assert outcome.comparisons["always_none"]["event_recall"] == "win"
    assert set(outcome.comparisons["error_rule"].values()) <= {"win", "loss", "no separation"}


def test_the_event_curve_reaches_its_own_operating_point(result: Result) -> None:
    outcome, _, _ = result
    curve = outcome.event_curve
    assert len(curve["threshold"]) == len(curve["event_recall"]) == len(curve["false_alarms_per_100_machine_days"])
    assert curve["event_recall"][-1] == 0.0  # the last threshold is above every score
    assert max(curve["event_recall"]) >= outcome.ours.metrics["event_recall"]


def test_report_has_the_stable_keys_and_is_plain_json(result: Result) -> None:
    outcome, _, _ = result
    report = protocol.report(outcome, data_source="synthetic")
    assert set(report) >= REPORT_KEYS
    assert set(report["baselines"]) == {"always_none", "error_rule", "guide_replica", "ours_no_telemetry"}
    for figures in report["baselines"].values():
        assert {"row_pr_auc", "row_f1", "event_recall", "false_alarms_per_100_machine_days", "ci"} <= set(figures)
    assert report["confusion_matrix"]["labels"] == ["none", "comp1", "comp2", "comp3", "comp4"]
    assert report["horizons"]["48"]["horizon_hours"] == 48
    assert report["horizons"]["48"]["split"]["gap_hours"] == 48
    json.loads(json.dumps(report, allow_nan=False))  # no NaN or infinity sneaks in


def test_guide_comparison_carries_the_published_matrix(result: Result) -> None:
    outcome, _, _ = result
    published = outcome.guide["published"]
    assert published["confusion_matrix"][0] == [71724, 7, 0, 4, 3]
    assert published["r_gbm_macro_f1"] == 0.952
    assert "failure_vs_none" in outcome.guide["replica_argmax"]


def test_feature_importance_ranks_our_columns(result: Result) -> None:
    outcome, _, _ = result
    assert set(outcome.importance["feature"]) == set(FEATURE_COLUMNS)
    assert outcome.importance["importance"].is_monotonic_decreasing


@pytest.mark.parametrize("split", [1, 2, 3])
def test_the_guides_three_splits_are_used_as_published_on_a_full_year(split: int) -> None:
    year = pd.DataFrame({"datetime": pd.date_range("2015-01-01 06:00", "2016-01-01 06:00", freq="3h")})
    train_end, test_start = guide_splits.GUIDE_SPLITS[split]
    plan = plan_for_table(year, train_end=train_end, test_start=test_start, horizon_hours=24, validation_fraction=0.2)
    assert plan.kind == "configured"
    assert plan.test_start == test_start and plan.validation_end == train_end


def test_splits_table_has_a_line_per_model_with_intervals(result: Result) -> None:
    outcome, _, _ = result
    row = {**protocol.report(outcome, data_source="synthetic"), "guide_split": 3}
    table = guide_splits.splits_table([row])
    assert list(table["model"]) == ["ours", "always_none", "error_rule", "ours_no_telemetry", "guide_replica"]
    assert set(table["split"]) == {3}
    low, high = row["ci"]["event_recall"]
    assert table.loc[0, "event_recall"] == f"{row['event_recall']:.3f} [{low:.3f}, {high:.3f}]"

"""The protocol from per-group scores: on a small fleet, the same report as the whole-table protocol, whether the
fleet is one group or three; the scores hold no feature column."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from pdm_assets.lib.data.groups import rows_of_group
from pdm_assets.lib.evaluation import protocol, scored
from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table, split_parts
from pdm_assets.lib.modelling.early_warning import (
    EarlyWarningHead,
    TuningCosts,
    early_warning_plan,
    early_warning_table,
    fit_early_warning,
)
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS, build_features
from pdm_assets.lib.modelling.keys import KEY_COLUMNS
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.split import SplitPlan
from pdm_assets.lib.modelling.train import TrainedModel, fit_and_tune
from pdm_assets.lib.synthetic.simulate import generate_fleet

CONFIG = protocol.ProtocolConfig(horizon_hours=24, grid_hours=3, cost_missed=50, cost_false_alarm=1,
                                 negative_fraction=0.25, seed=0, resamples=40, replica_max_rows=300)
BASELINE_HOURS = 240
GROUPS = 3


@dataclass(frozen=True)
class Fleet:
    features: pd.DataFrame  # with the baseline features the early-warning head reads
    labels: pd.DataFrame
    failures: pd.DataFrame
    plan: SplitPlan
    trained: TrainedModel
    head: EarlyWarningHead
    baselines: scored.FittedBaselines
    validation: pd.DataFrame


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    with threadpool_limits(1, user_api="openmp"):
        yield


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    """12 machines over 120 days: both heads fitted as the model asset does, the baselines on the train rows."""
    raw = generate_fleet(machines=12, days=120, seed=3)
    with threadpool_limits(1, user_api="openmp"):
        features = build_features(raw.telemetry, raw.errors, raw.maint, raw.machines, grid_hours=3,
                                  baseline_hours=BASELINE_HOURS)
        labels = build_labels(features, raw.failures, 24)
        table = modelling_table(features, labels)
        plan = plan_for_table(table, train_end=datetime(2015, 3, 20, 1), test_start=datetime(2015, 4, 1, 1),
                              horizon_hours=24, validation_fraction=0.2)
        parts = split_parts(table, plan)
        trained = fit_and_tune(parts["train"], parts["validation"], raw.failures, feature_columns=FEATURE_COLUMNS,
                               horizon_hours=24, grid_hours=3, cost_missed=50, cost_false_alarm=1,
                               negative_fraction=0.25, seed=0, param_grid={"learning_rate": (0.1,)})
        early = early_warning_table(features, raw.failures, horizon_hours=48, baseline_hours=BASELINE_HOURS)
        head = fit_early_warning(early, raw.failures, early_warning_plan(early, plan, 48, 0.2),
                                 TuningCosts(3, 50, 1, 0.25, 0), baseline_hours=BASELINE_HOURS)
        baselines = scored.fit_baselines(parts["train"], trained, CONFIG)
    return Fleet(features, labels, raw.failures, plan, trained, head, baselines, parts["validation"])


def group_scores(fleet: Fleet, index: int, groups: int, head: EarlyWarningHead | None) -> scored.GroupScores:
    features, labels, failures = (rows_of_group(frame, index, groups)
                                  for frame in (fleet.features, fleet.labels, fleet.failures))
    return scored.score_group(modelling_table(features, labels), features, failures, fleet.plan, fleet.trained,
                              fleet.baselines, head)


def as_text(result: protocol.ProtocolResult) -> str:
    """The report as JSON text: NaN compares equal to NaN, and every figure to its last digit."""
    return json.dumps(protocol.report(result, data_source="synthetic"), sort_keys=True, default=str)


@pytest.fixture(scope="module")
def whole_table_report(fleet: Fleet) -> str:
    with threadpool_limits(1, user_api="openmp"):
        result = protocol.run_protocol(modelling_table(fleet.features, fleet.labels), fleet.failures, fleet.plan,
                                       fleet.trained, CONFIG)
        result.horizons["48"] = protocol.early_warning_horizon(fleet.features, fleet.failures, fleet.trained,
                                                               fleet.head, CONFIG)
    return as_text(result)


def from_groups(fleet: Fleet, groups: list[scored.GroupScores], head: EarlyWarningHead | None,
                **options: Any) -> protocol.ProtocolResult:
    return scored.protocol_from_scores(groups, fleet.failures, fleet.plan, fleet.trained, head, CONFIG,
                                       fleet.validation, **options)


def test_one_group_reports_what_the_whole_table_protocol_reports(fleet: Fleet, whole_table_report: str) -> None:
    result = from_groups(fleet, [group_scores(fleet, 0, 1, fleet.head)], fleet.head)
    assert set(result.horizons) == {"48"} and "skipped" not in result.horizons["48"]
    assert result.horizons["48"]["ours"]["events"] > 0
    assert as_text(result) == whole_table_report


def test_three_groups_in_any_order_report_what_one_group_reports(fleet: Fleet, whole_table_report: str) -> None:
    groups = [group_scores(fleet, index, GROUPS, fleet.head) for index in (2, 0, 1)]
    assert all(len(g.rows) for g in groups)
    assert sum(len(g.rows) for g in groups) == len(group_scores(fleet, 0, 1, fleet.head).rows)
    assert as_text(from_groups(fleet, groups, fleet.head)) == whole_table_report


def test_without_a_head_the_early_warning_horizon_is_reported_as_skipped(fleet: Fleet) -> None:
    result = from_groups(fleet, [group_scores(fleet, 0, 1, None)], None, early_warning_hours=48)
    assert result.horizons["48"]["horizon_hours"] == 48
    assert "no early-warning head" in result.horizons["48"]["skipped"]
    assert from_groups(fleet, [group_scores(fleet, 0, 1, None)], None).horizons == {}


def test_scores_hold_keys_labels_and_scores_but_no_feature(fleet: Fleet) -> None:
    group = group_scores(fleet, 0, 1, fleet.head)
    feature_columns = set(fleet.features.columns) - set(KEY_COLUMNS)
    assert not feature_columns & set(group.rows.columns)
    assert {"day_part", "day_failure", "day_label", "early_part", "early_failure", "early_label"} <= set(
        group.rows.columns)
    # 4 bytes of machine id, 8 of time, 3 per protocol, 10 per model (3 for a rule): 64 bytes a row, about
    # 0.75 GB for 10,000 machines' validation and test periods of a year at a 3 h grid (about 1,200 rows each).
    assert group.nbytes / len(group.rows) < 72
    assert group.rows["always_none"].dtype == np.uint8 and group.rows["ours"].dtype == np.float64


def test_lossless_narrows_only_what_it_can_restore() -> None:
    assert scored.lossless(np.array([0.0, 1.0])).dtype == np.uint8
    assert scored.lossless(np.array([0.5, 0.25])).dtype == np.float32
    assert scored.lossless(np.array([0.1, np.nan])).dtype == np.float64

"""The early warning beside the 24 h answer: the same features and probabilities as offline, null with the reason
when the history is too short, and the 24 h answer unchanged either way. Both heads trained here on a small
synthetic fleet with the same lib functions as the `model` asset."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.sources import load_synthetic
from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table, split_parts
from pdm_assets.lib.modelling.early_warning import (
    EarlyWarningHead,
    TuningCosts,
    early_warning_plan,
    early_warning_table,
    fit_early_warning,
)
from pdm_assets.lib.modelling.estimators import score_failure
from pdm_assets.lib.modelling.features import (
    BASELINE_FEATURES,
    BASELINE_READINGS_COLUMN,
    ERROR_LOOKBACK_HOURS,
    FEATURE_COLUMNS,
    TELEMETRY_LOOKBACK_HOURS,
    build_features,
)
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.registered import model_contract
from pdm_assets.lib.modelling.train import TrainedModel, fit_and_tune
from pdm_assets.lib.serving.contract import ServingContract, check_scores, predictions
from pdm_assets.lib.serving.history_arrays import features_for_histories
from pdm_assets.lib.serving.requests_from_tables import histories_from_tables
from pdm_assets.lib.serving.schema import Limits

LOOKBACK = 240
COSTS = TuningCosts(grid_hours=3, cost_missed=50.0, cost_false_alarm=1.0, negative_fraction=0.25, seed=0)
LIMITS = Limits(max_batch=500, max_telemetry_rows=336, max_event_rows=1000)
pytestmark = pytest.mark.slow  # trains both heads (about 10 s)


@dataclass
class Served:
    tables: Any
    features: pd.DataFrame
    day_ahead: TrainedModel
    head: EarlyWarningHead
    contract: ServingContract


@pytest.fixture(scope="module")
def served() -> Served:
    raw = load_synthetic(15, 100, 11, datetime(2015, 1, 1, 6))
    features = build_features(raw.telemetry, raw.errors, raw.maint, raw.machines, grid_hours=3,
                              baseline_hours=LOOKBACK)
    table = modelling_table(features, build_labels(features, raw.failures, 24))
    plan = plan_for_table(table, train_end=datetime(2015, 3, 1), test_start=datetime(2015, 3, 2), horizon_hours=24,
                          validation_fraction=0.25)
    parts = split_parts(table, plan)
    day_ahead = fit_and_tune(parts["train"], parts["validation"], raw.failures, feature_columns=FEATURE_COLUMNS,
                             horizon_hours=24, grid_hours=3, cost_missed=50.0, cost_false_alarm=1.0,
                             negative_fraction=0.25, seed=0)
    early = early_warning_table(features, raw.failures, horizon_hours=48, baseline_hours=LOOKBACK)
    head = fit_early_warning(early, raw.failures, early_warning_plan(early, plan, 48, 0.25), COSTS,
                             baseline_hours=LOOKBACK)
    metadata = model_contract(day_ahead, plan, data_source="synthetic", horizon_hours=24, grid_hours=3,
                              telemetry_lookback_hours=TELEMETRY_LOOKBACK_HOURS,
                              error_lookback_hours=ERROR_LOOKBACK_HOURS, costs={}, early_warning=head)
    contract = ServingContract.model_validate({
        **metadata, "registered_name": "pdm", "registered_version": "1", "run_id": "r", "model_uri": "m",
        "trained_at": 0.0,
    })
    contract.check_compatible()
    return Served(raw, features, day_ahead, head, contract)


def points(served: Served, count: int = 120) -> pd.DataFrame:
    """Random rows of the test period, where every machine has its baseline."""
    usable = served.features[served.features["datetime"] >= pd.Timestamp("2015-03-02")]
    return usable.sample(count, random_state=7).reset_index(drop=True)


def histories(served: Served, at: pd.DataFrame, hours: int) -> list[Any]:
    t = served.tables
    return histories_from_tables(t.telemetry, t.errors, t.maint, t.machines, at[["machineID", "datetime"]],
                                 telemetry_hours=hours)


def test_the_served_baseline_features_are_the_offline_ones(served: Served) -> None:
    at = points(served)
    online = features_for_histories(histories(served, at, LOOKBACK), limits=LIMITS, baseline_hours=LOOKBACK)
    columns = [BASELINE_READINGS_COLUMN, *BASELINE_FEATURES]
    np.testing.assert_array_equal(online[columns].to_numpy(float), at[columns].to_numpy(float))
    assert np.isfinite(online[list(BASELINE_FEATURES)].to_numpy(float)).all()


def test_a_full_history_gets_the_heads_own_probability_and_alert(served: Served) -> None:
    at = points(served)
    online = features_for_histories(histories(served, at, LOOKBACK), limits=LIMITS, baseline_hours=LOOKBACK)
    answers = predictions(served.day_ahead.pipeline, served.contract, online, "v1", served.head.trained.pipeline)
    offline = score_failure(served.head.trained.pipeline, at[served.head.trained.feature_columns])
    warnings = [a.early_warning for a in answers]
    assert all(w is not None for w in warnings) and all(a.early_warning_unavailable is None for a in answers)
    probability = np.array([w.failure_probability for w in warnings if w is not None])
    np.testing.assert_allclose(probability, offline, rtol=0, atol=1e-12)
    threshold = served.head.trained.threshold
    assert [w.alert for w in warnings if w is not None] == list(probability >= threshold)
    assert {(w.threshold, w.horizon_hours) for w in warnings if w is not None} == {(threshold, 48)}
    assert len(np.unique(probability.round(9))) > 10  # the comparison is not one constant


def test_a_day_of_telemetry_keeps_the_24h_answer_and_says_why_there_is_no_early_warning(served: Served) -> None:
    at = points(served, 40)
    full = features_for_histories(histories(served, at, LOOKBACK), limits=LIMITS, baseline_hours=LOOKBACK)
    short = features_for_histories(histories(served, at, TELEMETRY_LOOKBACK_HOURS), limits=LIMITS,
                                   baseline_hours=LOOKBACK)
    with_head = predictions(served.day_ahead.pipeline, served.contract, full, "v1", served.head.trained.pipeline)
    day_only = predictions(served.day_ahead.pipeline, served.contract, short, "v1", served.head.trained.pipeline)
    without_head = predictions(served.day_ahead.pipeline, served.contract.model_copy(update={"early_warning": None}),
                               features_for_histories(histories(served, at, TELEMETRY_LOOKBACK_HOURS), limits=LIMITS),
                               "v1")
    for answers in (day_only, without_head):
        assert [a.model_dump(exclude={"early_warning", "early_warning_unavailable"}) for a in answers] == [
            a.model_dump(exclude={"early_warning", "early_warning_unavailable"}) for a in with_head]
        assert all(a.early_warning is None for a in answers)
    reason = day_only[0].early_warning_unavailable or ""
    assert "needs 144 of them and this history has 0" in reason and "send the last 240 hourly readings" in reason
    assert without_head[0].early_warning_unavailable == "the served model has no early-warning head"


def test_a_head_this_code_cannot_build_is_refused(served: Served) -> None:
    check_scores(served.head.trained.pipeline, served.contract.early_warning)  # the real head scores
    broken = served.contract.model_copy(deep=True)
    assert broken.early_warning is not None
    broken.early_warning.feature_columns.append("volt_mean_96h_vs_baseline")
    with pytest.raises(ValueError, match="volt_mean_96h_vs_baseline"):
        broken.check_compatible()
    broken = served.contract.model_copy(deep=True)
    assert broken.early_warning is not None
    broken.early_warning.min_baseline_readings = 100
    with pytest.raises(ValueError, match="baseline readings"):
        broken.check_compatible()

"""The failure classifier: sampling correction, detector-and-head probabilities, tuning on validation."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from pdm_assets.lib.modelling.estimators import (
    HEAD_FLOOR,
    FailureThenComponent,
    FeatureMatrix,
    corrected_probability,
    failure_probability,
    predict_components,
    score_failure,
)
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.modelling.labels import CLASSES, COMPONENT_LABELS
from pdm_assets.lib.modelling.train import fit_and_tune, fit_fixed, training_rows
from pdm_assets_tests.support.fleet import StandardSplit


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One OpenMP thread, as the assets use: faster on small data and on shared cores."""
    with threadpool_limits(1, user_api="openmp"):
        yield


def test_corrected_probability_multiplies_the_odds_by_the_sampling_fraction() -> None:
    # Sampled p = 0.5 (odds 1) with a quarter of the negatives kept: odds 0.25, p = 0.2.
    assert corrected_probability(np.array([0.5]), 0.25)[0] == pytest.approx(0.2)
    assert corrected_probability(np.array([0.0, 1.0]), 0.1).tolist() == pytest.approx([0.0, 1.0])
    assert corrected_probability(np.array([0.3]), 1.0)[0] == pytest.approx(0.3)


def test_training_rows_keep_every_failure_and_a_seeded_sample_of_the_rest() -> None:
    table = pd.DataFrame({"failure": [True, False, False, False] * 250, "x": range(1000)})
    a, b = training_rows(table, 0.2, seed=3), training_rows(table, 0.2, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert a["failure"].sum() == 250
    assert 100 < (~a["failure"]).sum() < 200  # about 0.2 of 750


def test_detector_and_head_give_a_probability_per_class() -> None:
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 2))
    failing = x[:, 0] > 1.0
    indicators = np.zeros((n, 4), dtype=bool)
    indicators[failing, np.where(x[failing, 1] > 0, 0, 2)] = True  # comp1 when x1 > 0, else comp3
    model = FailureThenComponent({"max_iter": 30}, {"max_iter": 20}, negative_fraction=1.0).fit(x, indicators)
    proba = model.predict_proba(np.array([[2.5, 1.0], [2.5, -1.0], [-2.0, 0.0]]))
    assert list(model.classes_) == list(CLASSES)
    assert proba.sum(axis=1) == pytest.approx(np.ones(3))
    assert proba[0, 1] > 0.5 and proba[1, 3] > 0.5 and proba[2, 0] > 0.9
    assert list(model.predict(np.array([[2.5, 1.0], [-2.0, 0.0]]))) == ["comp1", "none"]


def test_a_single_failing_component_needs_no_head() -> None:
    x = np.arange(200, dtype=float).reshape(-1, 1)
    indicators = np.zeros((200, 4), dtype=bool)
    indicators[150:, 3] = True
    model = FailureThenComponent({"max_iter": 30}, None).fit(x, indicators)
    proba = model.predict_proba(np.array([[175.0]]))
    assert proba[0, 1:4].sum() == 0.0 and proba[0, 4] > 0.5


def test_fit_and_tune_chooses_on_validation_and_returns_one_pipeline(standard_split: StandardSplit) -> None:
    split, failures = standard_split.parts, standard_split.fleet.failures
    trained = fit_and_tune(
        split["train"], split["validation"], failures, feature_columns=FEATURE_COLUMNS, horizon_hours=24,
        grid_hours=3, cost_missed=50, cost_false_alarm=1, negative_fraction=0.25, seed=0,
    )
    assert len(trained.search) == 4
    assert {"validation_cost", "validation_pr_auc"} <= set(trained.search[0])
    assert 0.0 < trained.threshold <= 1.0 + 1e-9
    assert trained.validation["events"] > 0
    test = split["test"][trained.feature_columns]
    components = predict_components(trained.pipeline, test)
    assert components.sum(axis=1).to_numpy() == pytest.approx(np.ones(len(test)))
    # The fast path (detector only) gives the same P(failure) as the full prediction.
    assert score_failure(trained.pipeline, test) == pytest.approx(failure_probability(components))
    # The model separates failures from normal operation on the untouched test rows.
    scores = score_failure(trained.pipeline, test)
    truth = split["test"]["failure"].to_numpy(bool)
    assert scores[truth].mean() > 5 * scores[~truth].mean()


def test_fit_fixed_reads_only_its_columns(standard_split: StandardSplit) -> None:
    split = standard_split.parts
    columns = ["error1_count_24h", "hours_since_error1", "model", "age"]
    pipeline = fit_fixed(split["train"], feature_columns=columns, params={"max_iter": 20}, negative_fraction=0.5,
                         seed=0)
    proba = predict_components(pipeline, split["test"][columns])
    assert list(proba.columns) == list(CLASSES)


def test_a_training_period_without_failures_is_refused(standard_split: StandardSplit) -> None:
    split, failures = standard_split.parts, standard_split.fleet.failures
    quiet = split["train"][~split["train"]["failure"]]
    with pytest.raises(ValueError, match="0 failure rows"):
        fit_and_tune(quiet, split["validation"], failures, feature_columns=FEATURE_COLUMNS, horizon_hours=24,
                     grid_hours=3, cost_missed=50, cost_false_alarm=1, negative_fraction=0.25, seed=0)


def test_component_labels_line_up_with_components() -> None:
    assert [c.removeprefix("fails_") for c in COMPONENT_LABELS] == list(CLASSES[1:])


def test_a_feature_without_any_value_in_training_does_not_break_fitting() -> None:
    rng = np.random.default_rng(1)
    x = np.c_[rng.normal(size=300), np.full(300, np.nan)]
    indicators = np.zeros((300, 4), dtype=bool)
    indicators[x[:, 0] > 1.0, 1] = True
    indicators[x[:, 0] < -1.0, 2] = True
    model = FailureThenComponent({"max_iter": 20}, {"max_iter": 10}).fit(x, indicators)
    later = np.array([[2.0, 5.0], [2.0, np.nan]])  # the column may hold values when scoring
    assert model.predict_proba(later)[0] == pytest.approx(model.predict_proba(later)[1])


def test_rows_far_from_failure_skip_the_head_within_its_floor() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1500, 2))
    indicators = np.zeros((1500, 4), dtype=bool)
    failing = x[:, 0] > 1.0
    indicators[failing, np.where(x[failing, 1] > 0, 0, 3)] = True
    model = FailureThenComponent({"max_iter": 200, "learning_rate": 0.3}, {"max_iter": 10}).fit(x, indicators)
    proba = model.predict_proba(x)
    failure = model.failure_proba(x)
    assert not isinstance(model.head_, str)
    exact = failure[:, None] * model.head_.predict_proba(x)  # the head's classes here: comp1 and comp4
    assert (failure < HEAD_FLOOR).any() and (failure >= HEAD_FLOOR).any()
    assert np.abs(proba[:, [1, 4]] - exact).max() < HEAD_FLOOR
    assert model.component_shares_ == pytest.approx([failing[x[:, 1] > 0].sum() / failing.sum(), 0, 0,
                                                    failing[x[:, 1] <= 0].sum() / failing.sum()])


def test_the_feature_matrix_is_column_for_column_sklearns_one_hot_and_passthrough(
    standard_split: StandardSplit,
) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    from pdm_assets.lib.data.tables import MACHINE_MODELS

    table = standard_split.parts["train"]
    columns = list(FEATURE_COLUMNS)
    numeric = [c for c in columns if c != "model"]
    reference = ColumnTransformer([
        ("model", OneHotEncoder(categories=[list(MACHINE_MODELS)]), ["model"]), ("numeric", "passthrough", numeric),
    ]).fit(table[columns])
    ours = FeatureMatrix(columns).fit(table[columns])
    shuffled = table[list(reversed(table.columns))].head(500)  # column order and extra columns do not matter
    np.testing.assert_array_equal(ours.transform(shuffled), reference.transform(shuffled[columns]))
    assert ours.transform(shuffled).dtype == np.float64
    without_model = FeatureMatrix(numeric).fit(table)
    np.testing.assert_array_equal(without_model.transform(table.head(5)), table[numeric].head(5).to_numpy(float))


def test_the_feature_matrix_names_an_unknown_model_and_a_missing_column(standard_split: StandardSplit) -> None:
    table = standard_split.parts["train"].head(3)
    prep = FeatureMatrix(list(FEATURE_COLUMNS)).fit(table)
    odd = table.assign(model=["model1", "model9", None])
    with pytest.raises(ValueError, match=r"unknown machine model model9, nan; expected one of model1"):
        prep.transform(odd)
    with pytest.raises(ValueError, match=r"lacks the columns \['age'\]"):
        prep.transform(table.drop(columns=["age"]))

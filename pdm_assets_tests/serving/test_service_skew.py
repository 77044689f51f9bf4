"""Training/serving skew: requests built from the raw tables give the materialized features and probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.modelling.estimators import failure_probability, predict_components
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS, READINGS_COLUMN
from pdm_assets.lib.serving.history_arrays import features_for_histories
from pdm_assets.lib.serving.schema import Limits
from pdm_assets_tests.support.serving import TrainedProject, histories_at, make_service

POINTS = 200
pytestmark = pytest.mark.slow  # trains the session's small project (about a minute)



@pytest.fixture(scope="module")
def points(project: TrainedProject) -> pd.DataFrame:
    """200 random (machine, t) rows of the materialized feature table."""
    return project.features.sample(POINTS, random_state=20150302).reset_index(drop=True)


@pytest.fixture(scope="module")
def service(project: TrainedProject) -> Any:
    instance, _ = make_service(project, project.bento["model_tag"])
    return instance


def test_the_service_feature_vector_equals_the_offline_one(project: TrainedProject, points: pd.DataFrame) -> None:
    histories = histories_at(project, points[["machineID", "datetime"]])
    online = features_for_histories(histories, limits=Limits(POINTS, 336, 1000))

    assert online["machineID"].tolist() == points["machineID"].tolist()
    assert online["datetime"].tolist() == points["datetime"].tolist()
    assert online[READINGS_COLUMN].tolist() == points[READINGS_COLUMN].tolist()
    numeric = [c for c in FEATURE_COLUMNS if c != "model"]
    np.testing.assert_allclose(online[numeric].to_numpy(float), points[numeric].to_numpy(float),
                               rtol=0, atol=1e-9, equal_nan=True)
    assert online["model"].tolist() == points["model"].tolist()
    # The comparison is not vacuous: every feature family varies over the sample, and some are unknown (NaN).
    assert (online[numeric].nunique() > 1).sum() > len(numeric) // 2
    assert online["volt_mean_24h"].notna().all() and online["hours_since_error1"].isna().any()


def test_the_service_probabilities_equal_the_models_offline_predict_proba(
    project: TrainedProject, points: pd.DataFrame, service: Any
) -> None:
    answers = service.predict(histories_at(project, points[["machineID", "datetime"]]))
    model = project.model
    offline = predict_components(model["pipeline"], points[model["feature_columns"]])
    np.testing.assert_allclose([a.failure_probability for a in answers], failure_probability(offline),
                               rtol=0, atol=1e-12)
    for comp in ("comp1", "comp2", "comp3", "comp4"):
        np.testing.assert_allclose([getattr(a.component_probabilities, comp) for a in answers], offline[comp],
                                   rtol=0, atol=1e-12)
    assert len({round(a.failure_probability, 12) for a in answers}) > 10  # the scores are not all the same

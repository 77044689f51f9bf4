"""The service class called in-process: predictions, model card, metrics, bad input and readiness."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from bentoml.exceptions import BentoMLException, ServiceUnavailable
from prometheus_client import REGISTRY
from sklearn.base import BaseEstimator

from pdm_assets.lib.modelling.estimators import failure_probability, predict_components
from pdm_assets.lib.serving.schema import MachineHistory
from pdm_assets_tests.support.serving import TrainedProject, histories_at, make_service, variant_model

pytestmark = pytest.mark.slow  # trains the session's small project (about a minute)



@pytest.fixture(scope="module")
def service(project: TrainedProject) -> Iterator[Any]:
    instance, _ = make_service(project, project.bento["model_tag"])
    yield instance


@pytest.fixture(scope="module")
def points(project: TrainedProject) -> Any:
    return project.features.sample(12, random_state=1).reset_index(drop=True)


def sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_predictions_are_the_models_own_probabilities(project: TrainedProject, service: Any, points: Any) -> None:
    histories = histories_at(project, points[["machineID", "datetime"]])
    result = service.predict(histories)

    model = project.model
    offline = predict_components(model["pipeline"], points[model["feature_columns"]])
    expected = failure_probability(offline)
    assert [p.machine_id for p in result] == points["machineID"].tolist()
    assert [p.as_of for p in result] == [t.to_pydatetime() for t in points["datetime"]]
    np.testing.assert_allclose([p.failure_probability for p in result], expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose([p.component_probabilities.comp3 for p in result], offline["comp3"], atol=1e-12)
    assert [p.alert for p in result] == list(expected >= model["threshold"])
    version = model["record"]["version"]
    assert {(p.threshold, p.horizon_hours, p.model_version) for p in result} == {
        (model["threshold"], model["horizon_hours"], f"pdm_failure_classifier/{version} (source)")
    }


def test_the_model_card_comes_from_the_registry(project: TrainedProject, service: Any) -> None:
    card = service.model_card()
    model = project.model
    assert card["registered_version"] == model["record"]["version"]
    assert card["run_id"] == model["record"]["run_id"]
    assert card["data_source"] == "synthetic"
    assert (card["training_start"], card["training_end"]) == (model["training_start"], model["training_end"])
    assert card["feature_columns"] == model["feature_columns"]
    assert (card["threshold"], card["horizon_hours"], card["telemetry_lookback_hours"]) == (
        model["threshold"], model["horizon_hours"], model["telemetry_lookback_hours"]
    )
    assert {"validation_pr_auc", "test_row_pr_auc"} <= set(card["metrics"])
    assert card["bentoml_model_tag"] == project.bento["model_tag"]


def test_metrics_count_predictions_batches_and_feature_time(project: TrainedProject, service: Any, points: Any) -> None:
    histories = histories_at(project, points[["machineID", "datetime"]].head(3))
    before = {name: sample(name) for name in ("pdm_batch_size_count", "pdm_feature_seconds_count",
                                              "pdm_failure_probability_count")}
    alerts_before = sample("pdm_predictions_total", {"alert": "true"}) + sample("pdm_predictions_total",
                                                                                   {"alert": "false"})
    service.predict(histories)
    assert sample("pdm_batch_size_count") == before["pdm_batch_size_count"] + 1
    assert sample("pdm_feature_seconds_count") == before["pdm_feature_seconds_count"] + 1
    assert sample("pdm_failure_probability_count") == before["pdm_failure_probability_count"] + 3
    after = sample("pdm_predictions_total", {"alert": "true"}) + sample("pdm_predictions_total", {"alert": "false"})
    assert after == alerts_before + 3
    version = project.model["record"]["version"]
    assert sample("pdm_model_info", {"version": version, "bento_tag": "source"}) == 1
    assert sample("pdm_model_trained_timestamp_seconds") == service.contract.trained_at > 1e9


def bad(history: MachineHistory, **changes: Any) -> MachineHistory:
    return history.model_copy(update=changes)


def test_bad_history_becomes_an_http_4xx_with_the_reason_counted(
    project: TrainedProject, service: Any, points: Any
) -> None:
    good = histories_at(project, points[["machineID", "datetime"]].head(1))[0]
    late = good.telemetry[-1].model_copy(update={"datetime": good.as_of + timedelta(hours=1)})
    cases = [
        ([bad(good, telemetry=[*good.telemetry[:-1], late])], 422, "after_as_of",
         f"histories[0].telemetry[{len(good.telemetry) - 1}].datetime"),
        ([bad(good, telemetry=good.telemetry[-20:])], 422, "insufficient_telemetry", "histories[0].telemetry has 20"),
        ([good] * (service.limits.max_batch + 1), 413, "batch_size", f"histories has {service.limits.max_batch + 1}"),
    ]
    for histories, status, reason, start in cases:
        counted = sample("pdm_validation_rejections_total", {"reason": reason})
        with pytest.raises(BentoMLException) as caught:
            service.predict(histories)
        assert (int(caught.value.error_code), str(caught.value)[: len(start)]) == (status, start)
        assert sample("pdm_validation_rejections_total", {"reason": reason}) == counted + 1


def test_a_corrupt_model_file_keeps_the_service_unready_with_the_reason_logged(
    project: TrainedProject, caplog: pytest.LogCaptureFixture
) -> None:
    tag, model_file = variant_model(project, "v0-corrupt")
    model_file.write_bytes(b"not a pickle")
    with caplog.at_level(logging.ERROR, logger="bentoml.service.pdm"):
        instance, _ = make_service(project, tag)
    assert instance.__is_ready__() is False
    assert re.fullmatch(f"model {tag} could not be loaded: \\w+: .*", instance.not_ready_reason)
    assert any("not ready: model" in r.getMessage() for r in caplog.records)
    with pytest.raises(ServiceUnavailable, match="no model loaded: model .* could not be loaded"):
        instance.predict(histories_at(project, project.features[["machineID", "datetime"]].head(1)))


def test_a_missing_model_keeps_the_service_unready(project: TrainedProject) -> None:
    instance, _ = make_service(project, "pdm_failure_classifier:v999-missing")
    assert instance.__is_ready__() is False
    assert instance.not_ready_reason == (
        "model pdm_failure_classifier:v999-missing could not be loaded: "
        "LookupError: pdm_failure_classifier:v999-missing is not in the BentoML model store"
    )


def test_a_loaded_model_is_ready(service: Any) -> None:
    assert service.__is_ready__() is True and service.not_ready_reason == ""


class CannotScore(BaseEstimator):  # type: ignore[misc]
    """Stands in for a model pickled by code that no longer matches: it loads, but scoring fails."""

    classes_ = np.array(["comp1", "comp2", "comp3", "comp4", "none"], dtype=object)

    def predict_proba(self, features: Any) -> np.ndarray:
        raise AttributeError("'FailureThenComponent' object has no attribute 'negative_fraction'")


def test_a_model_that_loads_but_cannot_score_keeps_the_service_unready(project: TrainedProject) -> None:
    stale, _ = variant_model(project, "v0-stale", CannotScore())
    instance, _ = make_service(project, stale)
    assert instance.__is_ready__() is False
    assert instance.not_ready_reason.endswith(
        "could not be loaded: ValueError: the model cannot score with this code: "
        "AttributeError: 'FailureThenComponent' object has no attribute 'negative_fraction'"
    )


def test_a_model_file_with_one_byte_changed_is_not_unpickled(
    project: TrainedProject, caplog: pytest.LogCaptureFixture
) -> None:
    tag, model_file = variant_model(project, "v0-tampered")
    data = bytearray(model_file.read_bytes())
    data[len(data) // 2] ^= 1  # one bit of one byte
    model_file.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR, logger="bentoml.service.pdm"):
        instance, _ = make_service(project, tag)
    assert instance.__is_ready__() is False
    assert f"could not be loaded: IntegrityError: {model_file} has sha256 " in instance.not_ready_reason
    assert "refusing to unpickle it" in instance.not_ready_reason
    assert any("not ready: model" in r.getMessage() and "sha256" in r.getMessage() for r in caplog.records)

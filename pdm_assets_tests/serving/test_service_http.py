"""The bento served by `bentoml serve` over HTTP: answers, every kind of bad input, probes, metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pdm_assets.lib.modelling.estimators import failure_probability, predict_components
from pdm_assets.lib.serving.model_file import MODEL_FILE
from pdm_assets_tests.support.serving import (
    Server,
    TrainedProject,
    copy_home,
    histories_at,
    request_body,
    serve_bento,
)

MAX_BATCH, MAX_ROWS = 5, 48
LIMITS_ENV = {"PDM_MAX_BATCH": str(MAX_BATCH), "PDM_MAX_TELEMETRY_ROWS": str(MAX_ROWS)}
pytestmark = pytest.mark.slow  # trains the session's small project (about a minute)



@pytest.fixture(scope="module")
def server(project: TrainedProject, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("http") / "serve.log"
    with serve_bento(project.bento["tag"], project.bentoml_home, log, extra_env=LIMITS_ENV) as running:
        yield running


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.fixture(scope="module")
def good(project: TrainedProject) -> dict[str, Any]:
    """One valid request body (a machine history of the materialized feature table)."""
    point = project.features.sample(1, random_state=3)[["machineID", "datetime"]]
    return request_body(histories_at(project, point))["histories"][0]


def post(client: httpx.Client, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.post("/predict", content=content, headers={"content-type": "application/json"})


def test_predict_answers_in_request_order_with_the_models_probabilities(
    project: TrainedProject, client: httpx.Client
) -> None:
    points = project.features.sample(MAX_BATCH, random_state=4).reset_index(drop=True)
    response = post(client, request_body(histories_at(project, points[["machineID", "datetime"]])))
    assert response.status_code == 200, response.text
    answer = response.json()
    model = project.model
    expected = failure_probability(predict_components(model["pipeline"], points[model["feature_columns"]]))
    assert [a["machine_id"] for a in answer] == points["machineID"].tolist()
    np.testing.assert_allclose([a["failure_probability"] for a in answer], expected, atol=1e-12)
    assert set(answer[0]["component_probabilities"]) == {"comp1", "comp2", "comp3", "comp4"}
    assert [a["alert"] for a in answer] == [bool(p >= model["threshold"]) for p in expected]
    assert answer[0]["model_version"] == f"pdm_failure_classifier/{model['record']['version']} ({project.bento['tag']})"
    assert answer[0]["horizon_hours"] == model["horizon_hours"]


def with_reading(body: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    telemetry = [dict(r) for r in body["telemetry"]]
    telemetry[index].update(changes)
    return {**body, "telemetry": telemetry}


def bad_input_cases(good: dict[str, Any]) -> dict[str, tuple[Any, int, str]]:
    """name: (request body, status, start of the error message)."""
    last = len(good["telemetry"]) - 1
    as_of = good["as_of"][:16]
    nan_body = json.dumps({"histories": [good]}).replace('"volt": ', '"volt": NaN, "_": ', 1).encode()
    inf_body = json.dumps({"histories": [good]}).replace('"rotate": ', '"rotate": Infinity, "_": ', 1).encode()
    return {
        "malformed JSON": (b'{"histories": [', 400, "body: Invalid JSON"),
        "not an object": (b"[1, 2]", 400, "body: Input should be an object"),
        "empty body": (b"", 400, "histories: Field required"),
        "string for a number": ({"histories": [with_reading(good, 0, volt="high")]}, 400,
                                "histories[0].telemetry[0].volt: Input should be a valid number"),
        "string machine id": ({"histories": [{**good, "machine_id": "7"}]}, 400,
                              "histories[0].machine_id: Input should be a valid integer"),
        "NaN reading": (nan_body, 422, "histories[0].telemetry[0].volt: Input should be a finite number"),
        "infinite reading": (inf_body, 422, "histories[0].telemetry[0].rotate: Input should be a finite number"),
        "volt of 4000": ({"histories": [with_reading(good, 0, volt=4000.0)]}, 422,
                         "histories[0].telemetry[0].volt: Input should be less than or equal to 400"),
        "machine 0": ({"histories": [{**good, "machine_id": 0}]}, 422,
                      "histories[0].machine_id: Input should be greater than or equal to 1"),
        "as_of in year 9999": ({"histories": [{**good, "as_of": "9999-01-01T00:00:00"}]}, 422,
                               "histories[0].as_of: Value error, as_of 9999-01-01T00:00:00 is in the future"),
        "unknown error code": ({"histories": [{**good, "errors": [{"datetime": good["as_of"], "error_id": "E1"}]}]},
                               422, "histories[0].errors[0].error_id: Input should be 'error1', 'error2'"),
        "unknown component": ({"histories": [{**good, "maintenance": [{"datetime": good["as_of"], "comp": "c9"}]}]},
                              422, "histories[0].maintenance[0].comp: Input should be 'comp1'"),
        "unknown machine model": ({"histories": [{**good, "model": "model5"}]}, 422,
                                  "histories[0].model: Input should be 'model1'"),
        "unknown field": ({"histories": [{**good, "maintainance": []}]}, 400,
                          "histories[0].maintainance: Extra inputs are not permitted"),
        "empty batch": ({"histories": []}, 422, "histories: List should have at least 1 item"),
        "age out of range": ({"histories": [{**good, "age": 101}]}, 422,
                             "histories[0].age: Input should be less than or equal to 100"),
        "impossible date": ({"histories": [{**good, "as_of": "2015-02-30T00:00:00"}]}, 400,
                            "histories[0].as_of: Input should be a valid datetime"),
        "ancient maintenance": ({"histories": [{**good, "maintenance": [{"datetime": "0001-01-01T00:00:00",
                                                                          "comp": "comp1"}]}]}, 422,
                                "histories[0].maintenance[0].datetime 0001-01-01T00:00 is more than 100 years"),
        "reading after as_of": ({"histories": [with_reading(good, last, datetime=_plus_hours(good["as_of"], 1))]},
                                422, f"histories[0].telemetry[{last}].datetime {_plus_hours(good['as_of'], 1)[:16]} "
                                f"is after as_of {as_of}"),
        "unsorted readings": ({"histories": [with_reading(good, 5, datetime=good["telemetry"][2]["datetime"])]}, 422,
                              f"histories[0].telemetry[5].datetime {good['telemetry'][2]['datetime'][:16]} is earlier"),
        "duplicate readings": ({"histories": [with_reading(good, 5, datetime=good["telemetry"][4]["datetime"])]}, 422,
                               "histories[0].telemetry[5].datetime"),
        "too little history": ({"histories": [{**good, "telemetry": good["telemetry"][-12:]}]}, 422,
                               "histories[0].telemetry has 12 hourly readings in the 24 h window"),
        "oversized batch": ({"histories": [good] * (MAX_BATCH + 1)}, 413,
                            f"histories: List should have at most {MAX_BATCH} items"),
        "too many readings": ({"histories": [{**good, "telemetry": _hourly_before(good, MAX_ROWS + 1)}]}, 413,
                              f"histories[0].telemetry: List should have at most {MAX_ROWS} items"),
    }


def _plus_hours(iso: str, hours: int) -> str:
    from datetime import datetime, timedelta

    return (datetime.fromisoformat(iso) + timedelta(hours=hours)).isoformat()


def _hourly_before(good: dict[str, Any], rows: int) -> list[dict[str, Any]]:
    template = good["telemetry"][-1]
    return [{**template, "datetime": _plus_hours(good["as_of"], -h)} for h in reversed(range(rows))]


CASE_NAMES = [
    "malformed JSON", "not an object", "empty body", "string for a number", "string machine id", "NaN reading",
    "infinite reading", "volt of 4000", "machine 0", "as_of in year 9999", "unknown error code", "unknown component",
    "unknown machine model", "unknown field",
    "empty batch", "age out of range", "impossible date", "ancient maintenance", "reading after as_of",
    "unsorted readings", "duplicate readings", "too little history", "oversized batch", "too many readings",
]


@pytest.mark.parametrize("case", CASE_NAMES)
def test_bad_input_gets_a_4xx_with_a_readable_message(case: str, client: httpx.Client, good: dict[str, Any]) -> None:
    body, status, message = bad_input_cases(good)[case]
    response = post(client, body)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error.startswith(message), error


def test_every_predict_rejection_is_one_json_object_with_an_error_sentence(
    client: httpx.Client, good: dict[str, Any]
) -> None:
    """The rejection format, pinned once: an API rule, a schema error, and the guard's own answers."""
    last = len(good["telemetry"]) - 1
    response = post(client, {"histories": [with_reading(good, last, datetime=_plus_hours(good["as_of"], 1))]})
    assert response.json() == {"error": (
        f"histories[0].telemetry[{last}].datetime {_plus_hours(good['as_of'], 1)[:16]} is after as_of "
        f"{good['as_of'][:16]}; send only records at or before as_of")}
    schema = post(client, {"histories": [with_reading(good, 2, volt=-5.0)]}).json()
    assert schema == {"error": "histories[0].telemetry[2].volt: Input should be greater than or equal to 0",
                      "reason": "out_of_range",
                      "detail": [{"type": "greater_than_equal", "loc": ["histories", 0, "telemetry", 2, "volt"],
                                  "msg": "Input should be greater than or equal to 0"}]}
    form = client.post("/predict", content=b"{}", headers={"content-type": "multipart/form-data"}).json()
    assert form == {"error": "Content-Type multipart/form-data is not allowed for /predict: send application/json",
                    "reason": "http_415"}


def test_other_methods_and_media_types_are_4xx_not_500(client: httpx.Client) -> None:
    assert client.get("/predict").status_code == 405
    assert client.post("/model").status_code == 405
    pickled = client.post("/predict", content=b"\x80\x04K\x01.",
                          headers={"content-type": "application/vnd.bentoml+pickle"})
    assert pickled.status_code == 415 and "not allowed" in pickled.json()["error"]
    form = client.post("/predict", content=b'{"histories": []}', headers={"content-type": "multipart/form-data"})
    assert form.status_code == 415 and "send application/json" in form.json()["error"]


def test_probes_and_model_card(project: TrainedProject, client: httpx.Client) -> None:
    for probe in ("/livez", "/readyz", "/healthz"):
        assert client.get(probe).status_code == 200, probe
    card = client.get("/model").json()
    assert card["bento_tag"] == project.bento["tag"]
    assert card["registered_version"] == project.model["record"]["version"]
    assert card["feature_columns"] == project.model["feature_columns"]
    assert card["threshold"] == project.model["threshold"]
    assert card["limits"] == {"max_batch": MAX_BATCH, "max_telemetry_rows": MAX_ROWS, "max_event_rows": 1000}
    assert "test_row_pr_auc" in card["metrics"]


EXPECTED_METRICS = {
    # family name: (type, sample names)
    "pdm_predictions": ("counter", {"pdm_predictions_total"}),
    "pdm_failure_probability": ("histogram", {"pdm_failure_probability_bucket", "pdm_failure_probability_sum",
                                              "pdm_failure_probability_count"}),
    "pdm_feature_seconds": ("histogram", {"pdm_feature_seconds_bucket", "pdm_feature_seconds_sum",
                                          "pdm_feature_seconds_count"}),
    "pdm_batch_size": ("histogram", {"pdm_batch_size_bucket", "pdm_batch_size_sum", "pdm_batch_size_count"}),
    "pdm_validation_rejections": ("counter", {"pdm_validation_rejections_total"}),
    "pdm_scored_together": ("histogram", {"pdm_scored_together_count", "pdm_scored_together_sum"}),
    "pdm_model_info": ("gauge", {"pdm_model_info"}),
    "pdm_model_trained_timestamp_seconds": ("gauge", {"pdm_model_trained_timestamp_seconds"}),
}


def test_metrics_expose_the_custom_families_after_a_few_requests(
    project: TrainedProject, client: httpx.Client, good: dict[str, Any]
) -> None:
    for _ in range(3):
        assert post(client, {"histories": [good]}).status_code == 200
    assert post(client, b"{").status_code == 400
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    for name, (kind, samples) in EXPECTED_METRICS.items():
        assert name in families, name
        assert families[name].type == kind
        assert samples <= {s.name for s in families[name].samples}, name
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    version = project.model["record"]["version"]
    assert values[("pdm_model_info", (("bento_tag", project.bento["tag"]), ("version", version)))] == 1
    assert values[("pdm_validation_rejections_total", (("reason", "malformed_json"),))] >= 1
    predicted = sum(v for (n, _), v in values.items() if n == "pdm_predictions_total")
    assert predicted >= 3
    assert values[("pdm_batch_size_count", ())] >= 3
    assert values[("pdm_model_trained_timestamp_seconds", ())] > 1e9


def calls_merging_requests(client: httpx.Client) -> float:
    """Model calls so far that scored more than 2 histories (pdm_scored_together): with the 2-history requests
    of the overlap test, the calls that merged requests."""
    for family in text_string_to_metric_families(client.get("/metrics").text):
        if family.name == "pdm_scored_together":
            samples = {(s.name, s.labels.get("le")): s.value for s in family.samples}
            return samples[("pdm_scored_together_count", None)] - samples[("pdm_scored_together_bucket", "2.0")]
    raise AssertionError("/metrics has no pdm_scored_together")


def test_overlapping_requests_each_get_their_own_answers_or_their_own_rejection(
    project: TrainedProject, server: Server, good: dict[str, Any]
) -> None:
    """Concurrent requests are scored in one call; answers must not mix, and a bad one fails alone."""
    # two histories a request: with PDM_MAX_BATCH=5 two requests fit one call (three would not)
    points = project.features.sample(2 * MAX_BATCH, random_state=7).reset_index(drop=True)
    bodies = [request_body(histories_at(project, points.iloc[i : i + 2][["machineID", "datetime"]]))
              for i in range(0, len(points), 2)]
    late = {**good, "as_of": "2000-01-01T00:00:00"}  # every record is after as_of: a 422 for this request only
    with server.client() as c:
        alone = [post(c, body).json() for body in bodies]
        merged_before = calls_merging_requests(c)
    # 12 at once: with PDM_MAX_BATCH=5 a worker holds at most 4 x 45 KB of bodies (the guard's byte budget)
    requests: list[Any] = [*bodies, {"histories": [late]}] * 2
    with ThreadPoolExecutor(len(requests)) as pool, httpx.Client(base_url=server.url, timeout=60) as c:
        responses = list(pool.map(lambda body: post(c, body), requests))
        merged = calls_merging_requests(c) - merged_before
    assert merged >= 1, "no model call scored more than one request's histories: nothing was batched"
    for body, response in zip(requests, responses, strict=True):
        if body["histories"][0] is late:
            assert response.status_code == 422 and "after as_of" in response.json()["error"], response.text
        else:
            assert response.status_code == 200, response.text
            assert response.json() == alone[bodies.index(body)]


def test_a_corrupt_model_file_leaves_readyz_false_and_says_why(
    project: TrainedProject, tmp_path: Path, good: dict[str, Any]
) -> None:
    home = copy_home(project.bentoml_home, tmp_path / "bentoml_home")
    name, version = project.bento["model_tag"].split(":")
    (home / "models" / name / version / MODEL_FILE).write_bytes(b"\x80\x04corrupt")
    with serve_bento(project.bento["tag"], home, tmp_path / "serve.log", wait_ready=False) as broken:
        with broken.client() as c:
            assert c.get("/livez").status_code == 200
            assert c.get("/readyz").status_code == 503
            response = post(c, {"histories": [good]})
            assert response.status_code == 503
            assert c.get("/model").json()["error"].startswith(f"no model loaded: model {project.bento['model_tag']}")
        assert f"not ready: model {project.bento['model_tag']} could not be loaded" in broken.log_text()

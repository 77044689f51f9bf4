"""Reasons and the prediction log through `bentoml serve`: `?explain=true` or `"explain": true` adds exact
reasons, the default answer is unchanged, and every answer is logged where the pipeline reads it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from pdm_assets.lib.modelling.reasons import FailureExplainer
from pdm_assets.lib.planning.outcomes import logged_predictions
from pdm_assets.lib.serving.prediction_log import read_prediction_log
from pdm_assets_tests.support.serving import Server, TrainedProject, histories_at, request_body, serve_bento

pytestmark = pytest.mark.slow  # trains the session's small project (about a minute)
ROWS = 4



@pytest.fixture(scope="module")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prediction_log")


@pytest.fixture(scope="module")
def server(project: TrainedProject, log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log = tmp_path_factory.mktemp("explain") / "serve.log"
    with serve_bento(project.bento["tag"], project.bentoml_home, log,
                     extra_env={"PDM_PREDICTION_LOG_DIR": str(log_dir)}) as running:
        yield running


@pytest.fixture(scope="module")
def rows(project: TrainedProject) -> Any:
    """The riskiest feature rows, so the reasons are those of alerts."""
    features = project.features
    pipeline, columns = project.model["pipeline"], project.model["feature_columns"]
    scores = pipeline[-1].failure_proba(pipeline[0].transform(features[columns]))
    return features.iloc[np.argsort(-scores)[:ROWS]].reset_index(drop=True)


def post(client: httpx.Client, body: Any, query: str = "") -> list[dict[str, Any]]:
    response = client.post(f"/predict{query}", content=json.dumps(body).encode(),
                           headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    answer: list[dict[str, Any]] = response.json()
    return answer


def test_reasons_only_when_asked_and_the_same_either_way(project: TrainedProject, server: Server, rows: Any) -> None:
    body = request_body(histories_at(project, rows[["machineID", "datetime"]]))
    with server.client() as client:
        plain = post(client, body)
        by_query = post(client, body, "?explain=true")
        by_body = post(client, {**body, "explain": True})
        not_asked = post(client, body, "?explain=false")
    assert all("reasons" not in answer for answer in plain + not_asked)
    assert [{k: v for k, v in a.items() if k != "reasons"} for a in by_query] == plain
    assert by_query == by_body

    expected = FailureExplainer(project.model["pipeline"]).reasons(rows[project.model["feature_columns"]])
    for answer, reasons in zip(by_query, expected, strict=True):
        assert [r["feature"] for r in answer["reasons"]] == [r.feature for r in reasons]
        np.testing.assert_allclose([r["contribution"] for r in answer["reasons"]],
                                   [r.contribution for r in reasons], atol=1e-9)
        assert [r["text"] for r in answer["reasons"]] == [r.text for r in reasons]
        assert max(r["contribution"] for r in answer["reasons"]) > 0  # risky rows: something pushes risk up


def test_every_answer_is_logged_where_the_pipeline_reads_it(
    project: TrainedProject, server: Server, rows: Any, log_dir: Path
) -> None:
    before = len(read_prediction_log(log_dir))
    body = request_body(histories_at(project, rows[["machineID", "datetime"]]))
    with server.client() as client:
        answers = post(client, body)
    log = read_prediction_log(log_dir)
    assert len(log) == before + ROWS
    logged = log.tail(ROWS).reset_index(drop=True)
    assert sorted(logged["machine_id"]) == sorted(a["machine_id"] for a in answers)
    by_point = {(a["machine_id"], a["as_of"]): a for a in answers}
    for row in logged.itertuples():
        answer = by_point[(row.machine_id, row.as_of.isoformat())]
        assert row.failure_probability == pytest.approx(answer["failure_probability"], abs=1e-12)
        assert row.alert == answer["alert"] and row.model_version == answer["model_version"]
    for_outcomes = logged_predictions(log, project.model["horizon_hours"])
    assert len(for_outcomes) == len(log) and (for_outcomes["source"] == "service").all()
    assert for_outcomes["score"].tolist() == log["failure_probability"].tolist()

"""Container images really built and run with podman: the bento image and the Dagster code-location image."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import httpx
import numpy as np
import pytest

from pdm_assets.lib.modelling.estimators import failure_probability, predict_components
from pdm_assets_tests.support.paths import ROOT
from pdm_assets_tests.support.processes import free_port
from pdm_assets_tests.support.project import materialize
from pdm_assets_tests.support.serving import TrainedProject, histories_at, request_body, require_container_engine

CODE_IMAGE = "localhost/pdm-assets-code:test"
START_TIMEOUT_S = 240

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.fixture(scope="module", autouse=True)
def container_engine() -> None:
    """podman and its local python:3.11-slim base image, or a skip (before the module trains its project)."""
    require_container_engine()


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"podman {' '.join(args)} exited with {done.returncode}:\n"
                    f"{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return done


def logs(container: str) -> str:
    """What the container wrote, stdout and stderr."""
    done = podman("logs", container, check=False)
    return done.stdout + done.stderr



@pytest.fixture(scope="module")
def bento_image(project: TrainedProject, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The bento_container asset materialized with the podman backend (once per module)."""
    with project.settings_env() as patch:
        patch.setenv("PDM_BENTOML_HOME", str(tmp_path_factory.mktemp("container") / "bentoml_home"))
        patch.setenv("PDM_CONTAINER_BACKEND", "podman")
        result = materialize(dg.AssetSelection.assets("bento", "bento_container"))
    assert result.success
    check = result.get_asset_check_evaluations()[0]
    assert (check.check_name, check.passed) == ("image_built", True)
    value: dict[str, Any] = vars(result.output_for_node("bento_container"))  # a ContainerResult
    return value


@pytest.fixture
def running_bento(bento_image: dict[str, Any]) -> Iterator[tuple[str, str]]:
    port = free_port()
    container = podman("run", "-d", "-p", f"127.0.0.1:{port}:3100", str(bento_image["image"])).stdout.strip()
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if podman("inspect", "--format", "{{.State.Running}}", container).stdout.strip() != "true":
                pytest.fail(f"container exited:\n{logs(container)[-3000:]}")
            time.sleep(1)
        else:
            pytest.fail(f"/readyz not 200 after {START_TIMEOUT_S} s:\n{logs(container)[-3000:]}")
        yield container, url
    finally:
        podman("rm", "-f", container, check=False)


def test_the_bento_asset_builds_an_image_with_id_and_size(bento_image: dict[str, Any]) -> None:
    assert bento_image["status"] == "built" and bento_image["backend"] == "podman"
    inspected = json.loads(podman("image", "inspect", str(bento_image["image"])).stdout)[0]
    assert inspected["Id"] == bento_image["image_id"]
    assert inspected["Size"] == bento_image["size_bytes"] > 100_000_000


def test_the_bento_image_serves_predictions_as_a_non_root_user(
    project: TrainedProject, running_bento: tuple[str, str]
) -> None:
    container, url = running_bento
    points = project.features.sample(3, random_state=11).reset_index(drop=True)
    response = httpx.post(f"{url}/predict", json=request_body(histories_at(project, points[["machineID", "datetime"]])),
                          timeout=60)
    assert response.status_code == 200, response.text
    model = project.model
    expected = failure_probability(predict_components(model["pipeline"], points[model["feature_columns"]]))
    np.testing.assert_allclose([a["failure_probability"] for a in response.json()], expected, atol=1e-12)
    assert response.json()[0]["model_version"].endswith(f"(pdm_service:{project.bento['tag'].split(':')[1]})")

    assert httpx.post(f"{url}/predict", content=b"{", headers={"content-type": "application/json"},
                      timeout=30).status_code == 400
    assert "pdm_validation_rejections_total" in httpx.get(f"{url}/metrics", timeout=30).text
    uid = podman("exec", container, "id", "-u").stdout.strip()
    assert uid != "0" and podman("exec", container, "id", "-un").stdout.strip() == "bentoml"


@pytest.fixture(scope="module")
def code_image() -> str:
    """The top-level Dockerfile built on the local python:3.11-slim (layers are cached between sessions)."""
    podman("build", "--pull=never", "--format", "docker", "-t", CODE_IMAGE, str(ROOT), timeout=1800)
    return CODE_IMAGE


def test_the_code_location_image_validates_the_definitions_as_a_non_root_user(code_image: str) -> None:
    validated = podman("run", "--rm", code_image, "dagster", "definitions", "validate", "-m", "pdm_assets.definitions",
                       timeout=300)
    assert "All code locations passed validation" in validated.stdout + validated.stderr
    assert podman("run", "--rm", code_image, "id", "-u").stdout.strip() != "0"
    inspected = json.loads(podman("image", "inspect", code_image).stdout)[0]
    command = inspected["Config"]["Cmd"]
    assert command[:3] == ["dagster", "code-server", "start"] and command[-2:] == ["-m", "pdm_assets.definitions"]
    assert "4000" in command
    assert inspected["Healthcheck"]["Test"] == ["CMD", "dagster", "api", "grpc-health-check", "-p", "4000"]


def test_the_code_server_starts_and_passes_its_healthcheck(code_image: str) -> None:
    container = podman("run", "-d", code_image).stdout.strip()
    try:
        started = "Started Dagster code server for module pdm_assets.definitions"
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (started in logs(container)
                   and podman("healthcheck", "run", container, check=False).returncode == 0):
            if time.monotonic() > deadline:
                pytest.fail(f"code server not healthy after {START_TIMEOUT_S} s:\n{logs(container)[-3000:]}")
            time.sleep(2)
        assert podman("exec", container, "id", "-un").stdout.strip() == "dagster"
    finally:
        podman("rm", "-f", container, check=False)

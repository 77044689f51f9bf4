"""The tools' own commands in a project folder, with no make and no variables exported by it.

`dg launch` materializes a small fleet; then plain `dagster dev` shows that run (DAGSTER_HOME from `.env`),
plain `mlflow ui` shows the registered model (MLflow's own default store), `bentoml serve` with no target
serves the service from source ([tool.bentoml.build]) and `bentoml list` shows the bento the `bento` asset built.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from pdm_assets_tests.support.paths import ROOT
from pdm_assets_tests.support.processes import free_port, wait_for
from pdm_assets_tests.support.processes import stop_process_group as stop

BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "docs" / "examples" / "predict_request.json"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    """A project folder (pyproject, workspace, service source, a .env as make writes it) after `dg launch`."""
    folder = tmp_path_factory.mktemp("tool_commands")
    for name in ("pyproject.toml", "workspace.yaml"):
        shutil.copy(ROOT / name, folder / name)
    (folder / "bentos").symlink_to(ROOT / "bentos")
    (folder / ".dagster_home").mkdir()
    (folder / ".env").write_text(f"DAGSTER_HOME={folder / '.dagster_home'}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PDM_", "DAGSTER_", "MLFLOW_"))}
    env |= {"PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}", "BENTOML_HOME": str(folder / "bentoml"),
            "PDM_DATA_SOURCE": "synthetic", "PDM_SYNTHETIC_MACHINES": "10", "PDM_SYNTHETIC_DAYS": "90"}
    # `dg launch` reads DAGSTER_HOME from the environment: .env is for the UI commands below.
    launched = subprocess.run(
        [str(BIN / "dg"), "launch", "--assets", "* and not key:bento_container and not group:planning"],
        cwd=folder, env={**env, "DAGSTER_HOME": str(folder / ".dagster_home")},
        capture_output=True, text=True, timeout=900, check=False,
    )
    assert launched.returncode == 0, launched.stdout[-3000:] + launched.stderr[-3000:]
    yield folder, env


@contextmanager
def running(command: list[str], folder: Path, env: dict[str, str], ready_url: str) -> Iterator[str]:
    """Start a server command in the folder, wait until `ready_url` answers 200, stop its process group after."""
    log = folder / f"{Path(command[0]).name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        wait_for(ready_url, lambda: process.poll() is None and status(ready_url) == 200, timeout=240, interval=1)
        yield log.read_text(errors="replace")
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{log.read_text(errors='replace')[-3000:]}") from failure
    finally:
        stop(process)


def status(url: str) -> int:
    try:
        return httpx.get(url, timeout=5).status_code
    except httpx.HTTPError:
        return 0


def graphql(url: str, query: str) -> dict:
    return httpx.post(f"{url}/graphql", json={"query": query}, timeout=60).json()["data"]


def test_dagster_dev_shows_the_run_through_dot_env(project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([str(BIN / "dagster"), "dev", "-h", "127.0.0.1", "-p", str(port)], folder, env,
                 f"{url}/server_info") as log:
        query = "{ runsOrError { ... on Runs { results { status tags { key value } } } } }"
        runs = graphql(url, query)["runsOrError"]["results"]
        nodes = graphql(url, "{ assetNodes { assetKey { path } assetMaterializations(limit: 1) { runId } } }")
    assert "Loaded environment variables from .env file: DAGSTER_HOME" in log
    # The planner's sensor (running by default) may queue the completed days' fleet_risk once the daemon ticks.
    launched_by = [{t["key"]: t["value"] for t in run["tags"]}.get("dagster/sensor_name") for run in runs]
    assert set(launched_by) <= {None, "fleet_risk_sensor"}, launched_by
    assert [run["status"] for run, sensor in zip(runs, launched_by, strict=True) if sensor is None] == ["SUCCESS"]
    materialized = {"/".join(n["assetKey"]["path"]) for n in nodes["assetNodes"] if n["assetMaterializations"]}
    assert {"raw_telemetry", "features", "model", "evaluation", "promotion", "bento"} <= materialized


def test_mlflow_ui_shows_the_registered_model_in_its_default_store(project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    assert (folder / "mlflow.db").is_file()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([str(BIN / "mlflow"), "ui", "--host", "127.0.0.1", "--port", str(port)], folder, env,
                 f"{url}/health"):
        found = httpx.get(f"{url}/api/2.0/mlflow/registered-models/get",
                          params={"name": "pdm_failure_classifier"}, timeout=30).json()
    model = found["registered_model"]
    assert model["latest_versions"][0]["version"] == "1"
    aliases = {a["alias"]: a["version"] for a in model.get("aliases", [])}
    assert aliases == ({"champion": "1"} if promoted(folder) else {})


def promoted(folder: Path) -> bool:
    """What the promotion gate decided in the run, from the project's Dagster instance."""
    import dagster as dg

    with dg.instance_for_test(temp_dir=str(folder / ".dagster_home")) as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("promotion"))
    assert event is not None and event.asset_materialization is not None
    return event.asset_materialization.metadata["outcome"].value == "promoted"


def test_bentoml_serve_and_list_in_the_project_folder(project: tuple[Path, dict[str, str]]) -> None:
    folder, env = project
    listed = subprocess.run([str(BIN / "bentoml"), "list", "-o", "json"], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=120, check=True)
    assert [b["tag"].split(":")[0] for b in json.loads(listed.stdout)] == ["pdm_service"]
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running([str(BIN / "bentoml"), "serve", "--host", "127.0.0.1", "--port", str(port)], folder, env,
                 f"{url}/readyz"):
        answer = httpx.post(f"{url}/predict", json=json.loads(EXAMPLE.read_text()), timeout=60)
        card = httpx.get(f"{url}/model", timeout=30).json()
    assert answer.status_code == 200, answer.text
    (prediction,) = answer.json()
    assert 0.0 <= prediction["failure_probability"] <= 1.0
    assert (card["registered_name"], card["registered_version"]) == ("pdm_failure_classifier", "1")

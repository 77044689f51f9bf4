"""The serving assets: the bento built from the champion, and the container asset without an engine."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import dagster as dg
import pytest

from pdm_assets.lib.serving.bento import (
    BentoBuildError,
    ContainerResult,
    bento_version,
    container_engine_problem,
    directory_size,
    load_champion,
)
from pdm_assets_tests.support.project import materialize
from pdm_assets_tests.support.serving import TrainedProject


def test_serving_assets_follow_the_champion() -> None:
    from pdm_assets.definitions import defs

    graph = defs.load_fn().resolve_asset_graph()
    bento, container = dg.AssetKey("bento"), dg.AssetKey("bento_container")
    # only the gate's decision rebuilds the bento: its data version is the champion version
    assert graph.get(bento).parent_keys == {dg.AssetKey("promotion")}
    assert graph.get(container).parent_keys == {bento}
    assert {graph.get(k).group_name for k in (bento, container)} == {"serving"}


def test_bento_version_names_the_registered_version_and_run() -> None:
    assert bento_version("3", "76be58a407aa4be5a3dccd951fe7f023") == "v3-76be58a4"


@pytest.mark.slow  # creating an MLflow sqlite store takes about 10 s
def test_without_a_champion_the_build_says_what_to_do(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with pytest.raises(BentoBuildError, match="holds the alias 'champion'.*materialize the `model` asset first"):
        load_champion(uri, "pdm_failure_classifier")


def test_container_engine_problems_are_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert container_engine_problem("podman") == "'podman' is not on PATH"
    fake = tmp_path / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert container_engine_problem("docker") == "`docker info` exited with 1: Cannot connect to the Docker daemon"


@pytest.mark.slow
def test_bento_and_container_assets_without_a_container_engine(
    project: TrainedProject, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with project.settings_env() as patch:
        patch.setenv("PDM_BENTOML_HOME", str(tmp_path / "bentoml_home"))
        patch.setenv("PDM_CONTAINER_BACKEND", "podman")
        # No container engine on PATH; uv stays (the bento build locks its requirements with it).
        uv = shutil.which("uv")
        assert uv is not None, "uv must be on PATH for bento builds"
        patch.setenv("PATH", os.pathsep.join([str(Path(uv).parent), str(tmp_path / "no_engines")]))
        assert shutil.which("podman") is None
        result = materialize(dg.AssetSelection.assets("bento", "bento_container"))
    assert result.success

    record = project.model["record"]
    tag = f"pdm_service:{bento_version(record['version'], record['run_id'])}"
    bento_meta = result.asset_materializations_for_node("bento")[0].metadata
    assert bento_meta["bento_tag"].value == tag
    assert bento_meta["bentoml_model_tag"].value == f"pdm_failure_classifier:{tag.split(':')[1]}"
    assert bento_meta["registered_version"].value == f"pdm_failure_classifier/{record['version']}"
    assert bento_meta["endpoints"].value == [
        "POST /predict", "GET /model", "GET /livez", "GET /readyz", "GET /healthz", "GET /metrics"
    ]
    bento_path = tmp_path / "bentoml_home" / "bentos" / "pdm_service" / tag.split(":")[1]
    model_file = tmp_path / "bentoml_home" / "models" / "pdm_failure_classifier" / tag.split(":")[1]
    assert bento_meta["size_bytes"].value == directory_size(bento_path) + directory_size(model_file)
    # The bento holds the service and the package code it imports, and nothing of Dagster.
    src = bento_path / "src"
    assert (src / "bentos" / "pdm_service" / "service.py").is_file()
    shipped = {p.relative_to(src / "pdm_assets" / "lib").as_posix() for p in (src / "pdm_assets" / "lib").rglob("*.py")}
    assert {"modelling/features.py", "serving/history_arrays.py", "modelling/estimators.py"} <= shipped
    assert not (src / "pdm_assets" / "defs").exists() and not (src / "pdm_assets" / "definitions.py").exists()
    requirements = (bento_path / "env" / "python" / "requirements.txt").read_text()
    assert "scikit-learn==" in requirements and "pandas==" in requirements and "dagster" not in requirements

    container: ContainerResult = result.output_for_node("bento_container")
    assert container.status == "skipped" and container.image is None
    assert container.reason.startswith("skipped: no container engine ('podman' is not on PATH)")
    dockerfile = container.containerfile.read_text()
    assert "FROM python:3.11-slim AS base-container" in dockerfile
    assert "USER bentoml" in dockerfile and "build-essential" not in dockerfile
    check = result.get_asset_check_evaluations()[0]
    assert (check.check_name, check.passed, check.severity) == ("image_built", False, dg.AssetCheckSeverity.WARN)
    assert check.metadata["reason"].value == container.reason
    container_meta = result.asset_materializations_for_node("bento_container")[0].metadata
    assert container_meta["status"].value == "skipped"

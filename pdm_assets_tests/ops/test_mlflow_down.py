"""MLflow down in the middle of the pipeline: a real `mlflow server` (sqlite and artifacts in a temporary folder)
is the project's tracking URI; after a first full run it stops, and training, promotion and the bento build each
fail saying which MLflow they could not reach, with the champion alias where it was; restarted on the same port,
the same materializations succeed."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from pdm_assets.lib.tracking import alias_version
from pdm_assets.settings import get_settings
from pdm_assets_tests.support.planner import project_defs
from pdm_assets_tests.support.processes import free_port, start_until_ready, stop_process_group
from pdm_assets_tests.support.project import materialize_definitions

START_TIMEOUT_S = 180
PIPELINE = dg.AssetSelection.groups("ingest", "features", "training") | dg.AssetSelection.assets("bento")
MLFLOW_STEPS = ("model", "promotion", "bento")
NEW_VERSION_EVALUATION = ("baselines", "scored_rows", "evaluation")


@dataclass
class MlflowServer:
    """`mlflow server` on a fixed port over one sqlite store and artifact folder, to stop and start again."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        mlflow = Path(sys.executable).parent / "mlflow"
        self.process = start_until_ready(
            [str(mlflow), "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{self.folder / 'mlflow.db'}",
             "--serve-artifacts", "--artifacts-destination", str(self.folder / "artifacts")],
            f"{self.url}/health", self.folder / "mlflow.log", START_TIMEOUT_S)

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process)
            self.process = None


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    folder = tmp_path / "mlflow_server"
    folder.mkdir()
    server = MlflowServer(folder, free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    """The failed steps' errors, causes included."""
    return "\n".join(event.step_failure_data.error.to_string() for event in result.get_step_failure_events()
                     if event.step_failure_data.error is not None)


def test_mlflow_down_fails_training_promotion_and_bento_clearly_and_a_restart_recovers(
    isolated_project: Path, monkeypatch: pytest.MonkeyPatch, mlflow_server: MlflowServer
) -> None:
    monkeypatch.setenv("PDM_MLFLOW_TRACKING_URI", mlflow_server.url)
    monkeypatch.setenv("PDM_DATA_SOURCE", "synthetic")
    monkeypatch.setenv("PDM_SYNTHETIC_MACHINES", "12")  # the fleet on which version 1 passes the gate
    monkeypatch.setenv("PDM_SYNTHETIC_DAYS", "100")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a refused connection fails at once
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
    settings = get_settings()
    defs = project_defs()
    instance = dg.DagsterInstance.ephemeral()

    first = materialize_definitions(defs, PIPELINE, instance, raise_on_error=False)
    assert first.success, failure_messages(first)
    champion = alias_version(mlflow_server.url, settings.registered_model_name)
    assert champion == "1"

    mlflow_server.stop()
    for step in MLFLOW_STEPS:
        down = materialize_definitions(defs, dg.AssetSelection.assets(step), instance, raise_on_error=False)
        assert not down.success, f"{step} succeeded with MLflow stopped"
        failed = {event.step_key for event in down.get_step_failure_events()}
        assert failed == {step}, failed
        message = failure_messages(down)
        assert f"127.0.0.1:{mlflow_server.port}" in message, message
        assert "no version of" not in message, f"{step}: MLflow down reported as a missing alias:\n{message}"

    mlflow_server.start()
    assert alias_version(mlflow_server.url, settings.registered_model_name) == champion
    for step in MLFLOW_STEPS:
        # The gate judges a new version on its own evaluation: baselines, scores and evaluation come before it.
        steps = (*NEW_VERSION_EVALUATION, step) if step == "promotion" else (step,)
        again = materialize_definitions(defs, dg.AssetSelection.assets(*steps), instance, raise_on_error=False)
        assert again.success, f"{step} after the restart:\n{failure_messages(again)}"
    holder = alias_version(mlflow_server.url, settings.registered_model_name)
    assert holder in {"1", "2"}  # version 2 was registered by the retried model step and judged by the gate
    built = again.output_for_node("bento")
    assert built.contract["registered_version"] == holder

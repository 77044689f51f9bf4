"""Shared by the serving tests: one small trained project per session, a bento, and a served bento.

`trained_project()` caches its result, so the session fixture `trained` (conftest.py) and any other caller
reuse the same training run.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg
import httpx
import pandas as pd
import pytest

from pdm_assets.lib.serving.schema import MachineHistory
from pdm_assets_tests.benchmarks.pipeline import project_env as bench_project_env
from pdm_assets_tests.support.capabilities import require
from pdm_assets_tests.support.processes import free_port
from pdm_assets_tests.support.processes import stop_process_group as stop
from pdm_assets_tests.support.project import materialize

MACHINES, DAYS = 10, 90  # 5 x 60 trips sklearn 1.9 binning in the current train.py (component head)
READY_TIMEOUT_S = 180
SERVICE_MODULE = "bentos.pdm_service.service"
BASE_IMAGE = "docker.io/library/python:3.11-slim"  # what the container builds start from, never pulled


@dataclass
class TrainedProject:
    """A materialized small synthetic fleet: its folder, settings environment and frames."""

    root: Path
    env: dict[str, str]
    tables: dict[str, pd.DataFrame]  # validated telemetry, errors, maint, machines, failures
    features: pd.DataFrame
    model: dict[str, Any]
    bento: dict[str, Any] = field(default_factory=dict)

    @property
    def bentoml_home(self) -> Path:
        return Path(self.env["PDM_BENTOML_HOME"])

    @contextmanager
    def settings_env(self) -> Iterator[pytest.MonkeyPatch]:
        """The project's PDM_* environment (and cwd) for the block."""
        with pytest.MonkeyPatch.context() as patch:
            for key, value in self.env.items():
                patch.setenv(key, value)
            patch.chdir(self.root)
            yield patch


def make_service(project: TrainedProject, model_tag: str) -> tuple[Any, ModuleType]:
    """A service instance whose model reference is `model_tag` in the project's BentoML store.

    BentoML resolves its store from BENTOML_HOME once per process, so every in-process service of a test
    session reads the session project's store; a test that needs another model adds it there (variant_model).
    """
    import bentoml

    sys.modules.pop(SERVICE_MODULE, None)
    with project.settings_env() as patch:
        patch.setenv("BENTOML_HOME", str(project.bentoml_home))
        require_project_store(project)
        import bentos.pdm_service.service as module

        patch.setattr(module.PdmService.inner, "model_ref", bentoml.models.BentoModel(model_tag))
        return module.PdmService(), module


def require_project_store(project: TrainedProject) -> None:
    """Fail clearly if this process's BentoML store was resolved to another folder before."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bentoml.models.get(project.bento["model_tag"])
    except NotFound:
        pytest.fail(f"this process's BentoML store is not {project.bentoml_home}: something used BentoML's "
                    "store before the serving tests set BENTOML_HOME")


def variant_model(project: TrainedProject, version: str, model: Any | None = None) -> tuple[str, Path]:
    """A copy of the session's packed model (or of `model` with its metadata) as another version in the
    project's store: its tag and its model file, for tests to break."""
    import bentoml

    from pdm_assets.lib.serving.model_file import MODEL_FILE, SHA256_KEY, load_model, save_model

    with project.settings_env() as patch:
        patch.setenv("BENTOML_HOME", str(project.bentoml_home))
        require_project_store(project)
        original = bentoml.models.get(project.bento["model_tag"])
        name = project.bento["model_tag"].split(":")[0]
        with contextlib.suppress(bentoml.exceptions.NotFound):
            bentoml.models.delete(f"{name}:{version}")
        metadata = {k: v for k, v in original.info.metadata.items() if k != SHA256_KEY}
        tag = save_model(f"{name}:{version}", load_model(original) if model is None else model,
                         metadata=metadata, labels={})
        return tag, Path(bentoml.models.get(tag).path_of(MODEL_FILE))


_CACHE: dict[str, TrainedProject] = {}


def require_container_engine(*tools: str) -> None:
    """Skip (a failure under PDM_CI_REQUIRE) unless podman and `tools` are installed and podman holds the
    local python:3.11-slim base image (the container builds use --pull=never)."""
    for tool in dict.fromkeys(("podman", *tools)):
        require("container", shutil.which(tool) is not None,
                f"{tool} is not installed (../shared/tools/container-engine-setup.sh)")
    require("container", subprocess.run(["podman", "image", "exists", BASE_IMAGE], capture_output=True, timeout=120,
                                         check=False).returncode == 0,
            "no python:3.11-slim image (../shared/tools/container-engine-setup.sh builds the stand-in)")


def project_env(root: Path) -> dict[str, str]:
    """The isolated settings of the serving project: the benchmark's, on this fleet."""
    return bench_project_env(root, MACHINES, DAYS)


def trained_project(tmp_path_factory: pytest.TempPathFactory) -> TrainedProject:
    """Train (once per session) on a 5-machine, 60-day synthetic fleet and build its bento."""
    if "project" in _CACHE:
        return _CACHE["project"]
    root = tmp_path_factory.mktemp("serving_project")
    env = project_env(root)
    (root / ".dagster_home").mkdir()
    project = TrainedProject(root, env, {}, pd.DataFrame(), {})
    with project.settings_env():
        result = materialize(dg.AssetSelection.all() - dg.AssetSelection.assets("bento_container")
                             - dg.AssetSelection.groups("planning"))
    project.tables = {
        name: result.output_for_node("validated_tables", f"validated_{name}")
        for name in ("telemetry", "errors", "maint", "machines", "failures")
    }
    project.features = result.output_for_node("features")
    registered = result.output_for_node("model")  # a RegisteredModel
    project.model = {**registered.contract, "pipeline": registered.trained.pipeline,
                     "record": vars(registered.record)}
    bento = result.output_for_node("bento")  # a BuiltBento
    project.bento = {"tag": bento.tag, "model_tag": bento.model_tag, "path": bento.path}
    _CACHE["project"] = project
    return project


def histories_at(project: TrainedProject, points: pd.DataFrame) -> list[MachineHistory]:
    """The requests a client would send for these (machineID, datetime) points."""
    from pdm_assets.lib.serving.requests_from_tables import histories_from_tables

    t = project.tables
    return histories_from_tables(t["telemetry"], t["errors"], t["maint"], t["machines"], points)


def request_body(histories: list[MachineHistory]) -> dict[str, Any]:
    return {"histories": [json.loads(h.model_dump_json()) for h in histories]}


@dataclass
class Server:
    """A `bentoml serve` subprocess."""

    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=60)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve_bento(tag: str, bentoml_home: Path, log: Path, *, wait_ready: bool = True,
                extra_env: dict[str, str] | None = None) -> Iterator[Server]:
    """`bentoml serve TAG` on a free port with its own process group, stopped after the block."""
    port = free_port()
    env = {**os.environ, "BENTOML_HOME": str(bentoml_home), **(extra_env or {})}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "bentoml", "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    server = Server(process, f"http://127.0.0.1:{port}", log)
    try:
        wait_until_up(server, ready=wait_ready)
        yield server
    finally:
        stop(process)


def wait_until_up(server: Server, *, ready: bool) -> None:
    """Until /readyz answers 200 (ready) or /livez answers 200 (alive), or fail with the server log."""
    path = "/readyz" if ready else "/livez"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"bentoml serve exited with {server.process.returncode}:\n{server.log_text()[-3000:]}")
        try:
            if httpx.get(server.url + path, timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{server.url}{path} not 200 after {READY_TIMEOUT_S} s:\n{server.log_text()[-3000:]}")


def copy_home(source: Path, target: Path) -> Path:
    """A copy of a BentoML store (to corrupt or rebuild without touching the shared one)."""
    shutil.copytree(source, target, symlinks=True)
    return target

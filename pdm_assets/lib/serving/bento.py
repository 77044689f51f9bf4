"""Pack the champion model into a bento and a container image: plain functions, no Dagster.

Also a small CLI: `python -m pdm_assets.lib.serving.bento serve --port 3000` serves the bento built for the
current champion (`tag` prints its tag).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sklearn.pipeline import Pipeline

from pdm_assets.lib.serving.contract import MODEL_ROUTE, SERVICE_NAME, ServingContract, check_scores
from pdm_assets.lib.tracking import CHAMPION_ALIAS, tracking
from pdm_assets.settings import get_settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SERVICE_MODULE = "bentos.pdm_service.service"
SERVICE_IMPORT = f"{SERVICE_MODULE}:PdmService"
# The service and the package code it imports (the feature code path of training), nothing of Dagster.
BENTO_INCLUDE = (
    "bentos/__init__.py",
    "bentos/pdm_service/*.py",
    "pdm_assets/__init__.py",
    "pdm_assets/settings.py",
    "pdm_assets/lib/*.py",
)
BENTO_EXCLUDE = ("__pycache__", "*.pyc")
SYSTEM_ENDPOINTS = ("GET /livez", "GET /readyz", "GET /healthz", "GET /metrics")
ContainerBackend = Literal["docker", "podman", "buildah"]
LOG_TAIL_LINES = 30


class BentoBuildError(RuntimeError):
    """The champion could not be found, packed, built or containerized; the message says what to do."""


@dataclass(frozen=True)
class Champion:
    """The registered model version holding the alias, with everything the service reads from it."""

    contract: ServingContract
    pipeline: Pipeline

    @property
    def version(self) -> str:
        """Bento and BentoML model version: the MLflow version plus the run, unique across stores."""
        return bento_version(self.contract.registered_version, self.contract.run_id)


@dataclass(frozen=True)
class BuiltBento:
    """A bento in the store."""

    tag: str
    model_tag: str
    path: Path
    size_bytes: int  # bento files plus the packed model
    files_bytes: int  # bento files only (service, pdm_assets code, Dockerfile, requirements)
    endpoints: list[str]
    python_packages: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ContainerResult:
    """What containerizing produced: an image, or a skip with its reason and the Dockerfile to build later."""

    status: Literal["built", "skipped"]
    backend: str
    containerfile: Path
    build_context: Path
    reason: str = ""
    image: str | None = None
    image_id: str | None = None
    size_bytes: int | None = None
    log_tail: str = ""


def bento_version(registered_version: str, run_id: str) -> str:
    """`v<MLflow version>-<run id prefix>`: readable, and distinct for stores that reuse version numbers."""
    return f"v{registered_version}-{run_id[:8]}"


@contextmanager
def bentoml_home(home: Path) -> Iterator[Path]:
    """Point BentoML's model and bento stores at `home` for the block, restoring the previous ones after.

    BentoML resolves BENTOML_HOME once per process; this swaps its providers instead, so one process can
    build into the store the settings name (and tests into a temporary one).
    """
    from bentoml._internal.bento import BentoStore
    from bentoml._internal.configuration.containers import BentoMLContainer as C
    from bentoml._internal.models import ModelStore

    home = home.resolve()
    folders = {name: home / name for name in ("bentos", "models", "envs", "tmp")}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    values: list[tuple[Any, Any]] = [
        (C.bentoml_home, str(home)),
        (C.bento_store_dir, str(folders["bentos"])),
        (C.model_store_dir, str(folders["models"])),
        (C.env_store_dir, str(folders["envs"])),
        (C.tmp_bento_store_dir, str(folders["tmp"])),
        (C.bento_store, BentoStore(str(folders["bentos"]))),
        (C.tmp_bento_store, BentoStore(str(folders["tmp"]))),
        (C.model_store, ModelStore(str(folders["models"]))),
        # Build arguments stick to the process; each build starts from none.
        (C.bento_arguments, {}),
    ]
    # simple_di's own patch() does not restore on an exception, hence the explicit save and restore.
    saved = [(provider, provider._override) for provider, _ in values]
    try:
        for provider, value in values:
            provider._override = value
        yield home
    finally:
        for provider, original in saved:
            provider._override = original


def load_champion(tracking_uri: str, registered_name: str, alias: str = CHAMPION_ALIAS) -> Champion:
    """The pipeline and serving contract of the version holding `alias`, with its run's metrics."""
    import mlflow

    with tracking(tracking_uri) as client:
        found = _alias_holder(client, tracking_uri, registered_name, alias, ": materialize the `model` asset first")
        uri = f"models:/{registered_name}/{found.version}"
        info = mlflow.models.get_model_info(uri)
        pipeline = mlflow.sklearn.load_model(uri)
        run = client.get_run(str(found.run_id))
    contract = ServingContract.model_validate({
        **(info.metadata or {}),
        "registered_name": registered_name,
        "registered_version": str(found.version),
        "run_id": str(found.run_id),
        "model_uri": uri,
        "metrics": dict(run.data.metrics),
        "trained_at": run.info.start_time / 1000.0,
    })
    try:
        contract.check_compatible()
        check_scores(pipeline, contract)
    except ValueError as error:
        raise BentoBuildError(f"champion {uri} cannot be served by this code: {error}") from error
    return Champion(contract, pipeline)


def champion_tag(tracking_uri: str, registered_name: str, alias: str = CHAMPION_ALIAS) -> str:
    """The tag of the bento built for the current champion (it may not exist yet)."""
    with tracking(tracking_uri) as client:
        found = _alias_holder(client, tracking_uri, registered_name, alias)
    return f"{SERVICE_NAME}:{bento_version(str(found.version), str(found.run_id))}"


def _alias_holder(client: Any, tracking_uri: str, registered_name: str, alias: str, hint: str = "") -> Any:
    """The model version holding `alias`; BentoBuildError (with `hint` appended) when none does."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(registered_name, alias)
    except MlflowException as error:
        raise BentoBuildError(
            f"no version of {registered_name!r} holds the alias {alias!r} in {tracking_uri}{hint}"
        ) from error


def import_model(champion: Champion, home: Path) -> str:
    """Save the pipeline in the BentoML store with the contract as metadata; returns the model tag."""
    import bentoml
    from bentoml.exceptions import NotFound

    contract = champion.contract
    tag = f"{contract.registered_name}:{champion.version}"
    with bentoml_home(home):
        with suppress(NotFound):
            bentoml.models.delete(tag)
        saved = bentoml.sklearn.save_model(
            tag,
            champion.pipeline,
            metadata=contract.model_dump(mode="json"),
            labels={"mlflow_version": contract.registered_version, "mlflow_run_id": contract.run_id,
                    "data_source": contract.data_source},
        )
    return str(saved.tag)


def build_bento(model_tag: str, version: str, home: Path, project_root: Path = PROJECT_ROOT) -> BuiltBento:
    """Build the service bento around the model; the bento holds the service and pdm_assets' lib code."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = f"{SERVICE_NAME}:{version}"
    with bentoml_home(home):
        with suppress(NotFound):
            bentoml.bentos.delete(tag)
        # A service module imported earlier in this process holds other build arguments.
        sys.modules.pop(SERVICE_MODULE, None)
        try:
            bento = bentoml.bentos.build(
                SERVICE_IMPORT,
                version=version,
                build_ctx=str(project_root),
                include=list(BENTO_INCLUDE),
                exclude=list(BENTO_EXCLUDE),
                args={"model_tag": model_tag},
                labels={"model_tag": model_tag.replace(":", "-")},
            )
        finally:
            sys.modules.pop(SERVICE_MODULE, None)
        path = Path(bento.path)
        # A 1.4 bento references its models in the store; export and containerize copy them in.
        total = int(bento.total_size())
    routes = [f"POST {route['route']}" for route in bento.info.schema.get("routes", [])]
    requirements = (path / "env" / "python" / "requirements.txt").read_text().splitlines()
    return BuiltBento(
        tag=str(bento.tag),
        model_tag=model_tag,
        path=path,
        size_bytes=total,
        files_bytes=directory_size(path),
        endpoints=[*routes, f"GET {MODEL_ROUTE}", *SYSTEM_ENDPOINTS],
        python_packages=[r for r in requirements if r and not r.startswith(("#", "-"))],
    )


def containerize(
    bento_tag: str, backend: ContainerBackend, home: Path, *, timeout_seconds: float = 1800
) -> ContainerResult:
    """`bentoml containerize` with the backend; without a working engine, only the Dockerfile is exported."""
    import bentoml

    name, version = bento_tag.split(":", 1)
    with bentoml_home(home):
        bento_path = Path(bentoml.bentos.get(bento_tag).path)
    exports = home.resolve() / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    containerfile = exports / f"{name}-{version}.Dockerfile"
    shutil.copyfile(bento_path / "env" / "docker" / "Dockerfile", containerfile)
    problem = container_engine_problem(backend)
    if problem is not None:
        return ContainerResult(
            status="skipped", backend=backend, containerfile=containerfile, build_context=bento_path,
            reason=f"skipped: no container engine ({problem}); build later with "
                   f"`{backend} build -f {containerfile} {bento_path}`",
        )
    image = f"localhost/{name}:{version}"
    command = [sys.executable, "-m", "bentoml", "containerize", bento_tag, "--backend", backend, "-t", image]
    try:
        done = subprocess.run(
            command, env={**os.environ, "BENTOML_HOME": str(home.resolve())}, capture_output=True, text=True,
            timeout=timeout_seconds, check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise BentoBuildError(f"`{' '.join(command)}` took more than {timeout_seconds:.0f} s") from error
    log = (done.stdout or "") + (done.stderr or "")
    tail = "\n".join(log.strip().splitlines()[-LOG_TAIL_LINES:])
    if done.returncode != 0:
        raise BentoBuildError(f"`{' '.join(command)}` failed with exit code {done.returncode}:\n{tail}")
    image_id, size = inspect_image(backend, image)
    return ContainerResult(
        status="built", backend=backend, containerfile=containerfile, build_context=bento_path,
        image=image, image_id=image_id, size_bytes=size, log_tail=tail,
    )


def container_engine_problem(backend: ContainerBackend) -> str | None:
    """Why the backend cannot build images here, or None when it can."""
    if shutil.which(backend) is None:
        return f"{backend!r} is not on PATH"
    try:
        probe = subprocess.run([backend, "info"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`{backend} info` failed: {error}"
    if probe.returncode != 0:
        last = (probe.stderr or probe.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"`{backend} info` exited with {probe.returncode}: {last[0]}"
    return None


def inspect_image(backend: ContainerBackend, image: str) -> tuple[str, int]:
    """Image id and size in bytes (buildah reports the size rounded, as "916 MB")."""
    if backend == "buildah":
        found = subprocess.run(["buildah", "inspect", "--type", "image", image], capture_output=True, text=True,
                               check=True)
        listed = subprocess.run(["buildah", "images", "--json", image], capture_output=True, text=True, check=True)
        return str(json.loads(found.stdout)["FromImageID"]), _bytes(str(json.loads(listed.stdout)[0]["size"]))
    out = subprocess.run([backend, "image", "inspect", image, "--format", "{{.Id}} {{.Size}}"],
                         capture_output=True, text=True, check=True)
    image_id, size = out.stdout.split()
    return image_id, int(size)


def _bytes(size: str) -> int:
    """ "916 MB" -> 916000000 (decimal units, as podman and buildah print them)."""
    number, unit = size.split()
    factor = {"B": 1, "KB": 10**3, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}[unit]
    return round(float(number) * factor)


def directory_size(path: Path) -> int:
    """Bytes of all files under path."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: Sequence[str] | None = None) -> None:
    """`serve`: run `bentoml serve` on the champion's bento; `tag`: print that bento's tag."""
    parser = argparse.ArgumentParser(prog="python -m pdm_assets.lib.serving.bento", description=main.__doc__)
    parser.add_argument("command", choices=("serve", "tag"))
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    settings = get_settings()
    tag = champion_tag(settings.mlflow_tracking_uri, settings.registered_model_name)
    home = settings.bentoml_home.resolve()
    if not (home / "bentos" / Path(*tag.split(":", 1))).is_dir():
        raise SystemExit(
            f"the champion's bento {tag} is not in {home}: materialize it with "
            "`uv run dagster asset materialize -m pdm_assets.definitions --select bento`"
        )
    if args.command == "tag":
        print(tag)
        return
    command = [sys.executable, "-m", "bentoml", "serve", tag, "--host", args.host, "--port", str(args.port)]
    os.execve(sys.executable, command, {**os.environ, "BENTOML_HOME": str(home)})


if __name__ == "__main__":
    main()

"""Pack the champion model into a bento and a container image: plain functions, no Dagster.

BentoML reads its store from BENTOML_HOME once per process, so the store the settings name is reached by
building in a child process with that variable set (`python -m pdm_assets.lib.serving.bento build`);
what the bento ships is `[tool.bentoml.build]` in pyproject.toml, the same file `bentoml build` reads.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sklearn.pipeline import Pipeline

from pdm_assets.lib.serving.contract import (
    EARLY_WARNING_OBJECT,
    MODEL_ROUTE,
    SERVICE_NAME,
    ServingContract,
    check_scores,
)
from pdm_assets.lib.serving.model_file import save_model
from pdm_assets.lib.tracking import CHAMPION_ALIAS, is_not_found, load_verified_pipeline, tracking

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SYSTEM_ENDPOINTS = ("GET /livez", "GET /readyz", "GET /healthz", "GET /metrics")
ContainerBackend = Literal["docker", "podman", "buildah"]
LOG_TAIL_LINES = 30
BUILD_TIMEOUT_S = 900


class BentoBuildError(RuntimeError):
    """The champion could not be found, packed, built or containerized; the message says what to do."""


@dataclass(frozen=True)
class Champion:
    """The registered model version holding the alias, with everything the service reads from it."""

    contract: ServingContract
    pipeline: Pipeline
    early_warning: Pipeline | None = None  # the second head, packed beside the pipeline (EARLY_WARNING_OBJECT)

    @property
    def version(self) -> str:
        """Bento and BentoML model version: the MLflow version plus the run, unique across stores."""
        return bento_version(self.contract.registered_version, self.contract.run_id)


@dataclass(frozen=True)
class BuiltBento:
    """A bento in the store, and the champion it serves."""

    tag: str
    model_tag: str
    path: Path
    size_bytes: int  # bento files plus the packed model
    files_bytes: int  # bento files only (service, pdm_assets code, Dockerfile, requirements)
    endpoints: list[str]
    contract: dict[str, Any]
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


def load_champion(tracking_uri: str, registered_name: str, alias: str = CHAMPION_ALIAS) -> Champion:
    """The pipeline and serving contract of the version holding `alias`, with its run's metrics."""
    import mlflow

    with tracking(tracking_uri) as client:
        found = _alias_holder(client, tracking_uri, registered_name, alias, ": materialize the `model` asset first")
        uri = f"models:/{registered_name}/{found.version}"
        info = mlflow.models.get_model_info(uri)
        pipeline = load_verified_pipeline(client, registered_name, str(found.version))
        head = (info.metadata or {}).get(EARLY_WARNING_OBJECT)
        early_warning = None if not head else load_verified_pipeline(
            client, registered_name, str(found.version), (EARLY_WARNING_OBJECT, str(head["model_uri"])))
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
        if early_warning is not None and contract.early_warning is not None:
            check_scores(early_warning, contract.early_warning)
    except ValueError as error:
        raise BentoBuildError(f"champion {uri} cannot be served by this code: {error}") from error
    return Champion(contract, pipeline, early_warning)


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
        if not is_not_found(error):
            raise  # MLflow unreachable or failing: its own message names the URI
        raise BentoBuildError(
            f"no version of {registered_name!r} holds the alias {alias!r} in {tracking_uri}{hint}"
        ) from error


def bento_path(home: Path, tag: str) -> Path:
    """Where the store keeps a bento: <home>/bentos/<name>/<version>."""
    name, version = tag.split(":", 1)
    return home / "bentos" / name / version


def build_champion_bento(
    tracking_uri: str, registered_name: str, home: Path, *, log: Callable[[str], None] = logger.info,
    timeout_seconds: float = BUILD_TIMEOUT_S,
) -> BuiltBento:
    """Import the champion into the store at `home` and build its bento, in a child process; `log` gets its phases."""
    command = [sys.executable, "-m", __name__, "build", "--tracking-uri", tracking_uri, "--name", registered_name]
    env = {**os.environ, "BENTOML_HOME": str(home.resolve()), "PYTHONUNBUFFERED": "1"}
    output = run_streamed(command, env=env, log=log, timeout_seconds=timeout_seconds, cwd=PROJECT_ROOT)
    result = json.loads(output.strip().splitlines()[-1])
    if "error" in result:
        raise BentoBuildError(result["error"])
    return BuiltBento(**{**result, "path": Path(result["path"])})


def run_streamed(
    command: Sequence[str], *, env: dict[str, str], log: Callable[[str], None], timeout_seconds: float,
    cwd: Path | None = None,
) -> str:
    """Run a command, passing each stderr line to `log` as it comes; returns stdout. Fails with the log's tail."""
    tail: list[str] = []
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    with subprocess.Popen(command, env=env, cwd=cwd, **pipes) as child:  # type: ignore[call-overload]
        assert child.stderr is not None and child.stdout is not None
        try:
            for line in child.stderr:
                line = line.rstrip()
                if line:
                    log(line)
                    tail = [*tail[-LOG_TAIL_LINES + 1:], line]
            output = child.stdout.read()
            child.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired as error:
            child.kill()
            raise BentoBuildError(f"`{' '.join(command)}` took more than {timeout_seconds:.0f} s") from error
    if child.returncode != 0 and not output.strip():
        raise BentoBuildError(f"`{' '.join(command)}` failed with exit code {child.returncode}:\n" + "\n".join(tail))
    return output


def import_model(champion: Champion) -> str:
    """Save the pipeline in the BentoML store with the contract as metadata; returns the model tag."""
    import bentoml
    from bentoml.exceptions import NotFound

    contract = champion.contract
    tag = f"{contract.registered_name}:{champion.version}"
    with suppress(NotFound):
        bentoml.models.delete(tag)
    return save_model(  # pickle and its sha256 in the metadata (lib/serving/model_file.py)
        tag,
        champion.pipeline,
        metadata=contract.model_dump(mode="json"),
        labels={"mlflow_version": contract.registered_version, "mlflow_run_id": contract.run_id,
                "data_source": contract.data_source},
        heads={} if champion.early_warning is None else {EARLY_WARNING_OBJECT: champion.early_warning},
    )


def build_bento(model_tag: str, version: str, project_root: Path = PROJECT_ROOT) -> tuple[str, Path, int, list[str]]:
    """Build the service bento from `[tool.bentoml.build]` around the model: tag, path, total size, routes."""
    import bentoml
    from bentoml.exceptions import NotFound

    tag = f"{SERVICE_NAME}:{version}"
    with suppress(NotFound):
        bentoml.bentos.delete(tag)
    bento = bentoml.bentos.build_bentofile(
        str(project_root / "pyproject.toml"), version=version, build_ctx=str(project_root),
        args={"model_tag": model_tag}, labels={"model_tag": model_tag.replace(":", "-")},
    )
    routes = [f"POST {route['route']}" for route in bento.info.schema.get("routes", [])]
    # A 1.4 bento references its models in the store; export and containerize copy them in.
    return str(bento.tag), Path(bento.path), int(bento.total_size()), routes


def build_in_this_process(tracking_uri: str, registered_name: str) -> BuiltBento:
    """The child's work: champion from MLflow, into this process's BentoML store, built into a bento."""
    logger.info("loading the champion of %s from %s", registered_name, tracking_uri)
    champion = load_champion(tracking_uri, registered_name)
    logger.info("importing %s/%s into the BentoML store", registered_name, champion.contract.registered_version)
    model_tag = import_model(champion)
    logger.info("building the bento around %s (locking the service's packages with uv)", model_tag)
    tag, path, total, routes = build_bento(model_tag, champion.version)
    requirements = (path / "env" / "python" / "requirements.txt").read_text().splitlines()
    logger.info("built %s (%.1f MB with the model)", tag, total / 1e6)
    return BuiltBento(
        tag=tag, model_tag=model_tag, path=path, size_bytes=total, files_bytes=directory_size(path),
        endpoints=[*routes, f"GET {MODEL_ROUTE}", *SYSTEM_ENDPOINTS],
        contract=champion.contract.model_dump(mode="json"),
        python_packages=[r for r in requirements if r and not r.startswith(("#", "-"))],
    )


def containerize(
    bento_tag: str, backend: ContainerBackend, home: Path, *, log: Callable[[str], None] = logger.info,
    timeout_seconds: float = 1800,
) -> ContainerResult:
    """`bentoml containerize` with the backend; without a working engine, only the Dockerfile is exported."""
    name, version = bento_tag.split(":", 1)
    home = home.resolve()
    context = bento_path(home, bento_tag)
    if not context.is_dir():
        raise BentoBuildError(f"bento {bento_tag} is not in the store {home}: materialize the `bento` asset first")
    exports = home / "exports"
    exports.mkdir(parents=True, exist_ok=True)
    containerfile = exports / f"{name}-{version}.Dockerfile"
    shutil.copyfile(context / "env" / "docker" / "Dockerfile", containerfile)
    problem = container_engine_problem(backend)
    if problem is not None:
        return ContainerResult(
            status="skipped", backend=backend, containerfile=containerfile, build_context=context,
            reason=f"skipped: no container engine ({problem}); build later with "
                   f"`{backend} build -f {containerfile} {context}`",
        )
    image = f"localhost/{name}:{version}"
    command = [sys.executable, "-m", "bentoml", "containerize", bento_tag, "--backend", backend, "-t", image]
    log(f"building {image} with {backend}")
    env = {**engine_environment(os.environ), "BENTOML_HOME": str(home)}
    # bentoml prints the engine's build log on stdout: stream it, keep the tail for the metadata.
    lines: list[str] = []
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as child:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip():
                lines = [*lines[-LOG_TAIL_LINES + 1:], line.rstrip()]
                if line.lstrip().startswith(("STEP", "Step", "COMMIT", "Successfully", "Error", "error")):
                    log(line.strip())
        try:
            child.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired as error:
            child.kill()
            raise BentoBuildError(f"`{' '.join(command)}` took more than {timeout_seconds:.0f} s") from error
    tail = "\n".join(lines)
    if child.returncode != 0:
        raise BentoBuildError(f"`{' '.join(command)}` failed with exit code {child.returncode}:\n{tail}")
    image_id, size = inspect_image(backend, image)
    return ContainerResult(
        status="built", backend=backend, containerfile=containerfile, build_context=context,
        image=image, image_id=image_id, size_bytes=size, log_tail=tail,
    )


# podman's network helper (netavark) runs iptables by PATH, and iptables lives in the admin folders that a
# user's PATH (or CI's minimal one) may leave out: without them every RUN step and `run -p` fails.
ENGINE_ADMIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")


def engine_environment(environment: Mapping[str, str]) -> dict[str, str]:
    """The environment with the admin folders appended to PATH where they are missing."""
    folders = [f for f in environment.get("PATH", "").split(os.pathsep) if f]
    return {**environment, "PATH": os.pathsep.join([*folders, *(d for d in ENGINE_ADMIN_DIRS if d not in folders)])}


def container_engine_problem(backend: ContainerBackend) -> str | None:
    """Why the backend cannot build images here, or None when it can."""
    if shutil.which(backend) is None:
        return f"{backend!r} is not on PATH"
    try:
        probe = subprocess.run([backend, "info"], capture_output=True, text=True, timeout=60, check=False,
                               env=engine_environment(os.environ))
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


def main(argv: Sequence[str] | None = None) -> int:
    """`build`: the champion's bento in the store BENTOML_HOME names; prints it as one JSON line."""
    parser = argparse.ArgumentParser(prog=f"python -m {__name__}", description=main.__doc__)
    parser.add_argument("command", choices=("build",))
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--name", required=True, help="registered model name")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        built = build_in_this_process(args.tracking_uri, args.name)
    except BentoBuildError as error:
        print(json.dumps({"error": str(error)}))
        return 1
    print(json.dumps({**asdict(built), "path": str(built.path)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""MLflow: log a fitted pipeline with its signature, register it, and move the `champion` alias."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from sklearn.pipeline import Pipeline

from pdm_assets.lib.integrity import sha256_hex, verified_bytes

CHAMPION_ALIAS = "champion"
# Model version tag: sha256 of the logged pickle, checked before any load unpickles it.
ARTIFACT_SHA256_TAG = "model_pickle_sha256"


@dataclass(frozen=True)
class ModelRecord:
    """Where a logged model lives: its run, URI and registered version."""

    run_id: str
    model_uri: str
    registered_name: str
    version: str

    @property
    def registry_uri(self) -> str:
        return f"models:/{self.registered_name}/{self.version}"


@contextmanager
def tracking(tracking_uri: str) -> Iterator[MlflowClient]:
    """Point MLflow at a store for the duration of the block, restoring the previous one after."""
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        yield MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    finally:
        mlflow.set_tracking_uri(previous)


def ensure_experiment(client: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The experiment id, created on first use with the given artifact location."""
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    return str(client.create_experiment(name, artifact_location=artifact_location))


def log_and_register(
    *,
    tracking_uri: str,
    experiment: str,
    artifact_location: str | None,
    registered_name: str,
    pipeline: Pipeline,
    input_example: pd.DataFrame,
    params: Mapping[str, Any],
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    model_metadata: Mapping[str, Any],
    heads: Mapping[str, tuple[Pipeline, pd.DataFrame]] | None = None,
) -> ModelRecord:
    """Log the pipeline (signature, input example, metadata) in a new run and register a version.

    Each of `heads` (name: pipeline and input example) is logged in the same run, unregistered; its model URI
    goes into the version's metadata under its name and its pickle's sha256 into the version tag
    `<name>_pickle_sha256`: the registered version carries them all.
    """
    with tracking(tracking_uri) as client:
        experiment_id = ensure_experiment(client, experiment, artifact_location)
        with mlflow.start_run(experiment_id=experiment_id) as run:
            mlflow.log_params({k: str(v) for k, v in params.items()})
            mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
            mlflow.set_tags(dict(tags))
            metadata = dict(model_metadata)
            head_digests = {}
            for name, (head, example) in (heads or {}).items():
                logged = _log_pipeline(head, name, example, metadata.get(name, {}))
                metadata[name] = {**metadata.get(name, {}), "model_uri": logged.model_uri}
                head_digests[head_sha256_tag(name)] = _logged_pickle_sha256(logged.model_uri)
            info = _log_pipeline(pipeline, "model", input_example, metadata, registered_name)
            version = str(info.registered_model_version)
            client.set_model_version_tag(registered_name, version, "data_source", tags.get("data_source", "unknown"))
            client.set_model_version_tag(registered_name, version, ARTIFACT_SHA256_TAG,
                                         _logged_pickle_sha256(info.model_uri))
            for tag, digest in head_digests.items():
                client.set_model_version_tag(registered_name, version, tag, digest)
            return ModelRecord(run.info.run_id, info.model_uri, registered_name, version)


def _log_pipeline(
    pipeline: Pipeline, name: str, example: pd.DataFrame, metadata: Mapping[str, Any],
    registered_name: str | None = None,
) -> Any:
    """mlflow.sklearn.log_model with the project's conventions (signature from predict_proba, cloudpickle)."""
    return mlflow.sklearn.log_model(
        pipeline,
        name=name,
        signature=infer_signature(example, pipeline.predict_proba(example)),
        input_example=example,
        registered_model_name=registered_name,
        pyfunc_predict_fn="predict_proba",
        metadata=dict(metadata),
        serialization_format="cloudpickle",
        # Stated, not inferred: inference spawns a subprocess that costs ~10 s per registration.
        pip_requirements=model_requirements(),
    )


def head_sha256_tag(name: str) -> str:
    """The model version tag holding the sha256 of the head `name`'s pickle."""
    return f"{name}_pickle_sha256"


def _pickle_file(model_dir: Path) -> Path:
    """The pickle of an MLflow sklearn model directory, as its MLmodel file names it."""
    flavor = mlflow.models.Model.load(str(model_dir)).flavors["sklearn"]
    return model_dir / str(flavor["pickled_model"])


def _logged_pickle_sha256(model_uri: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=tmp))
        return sha256_hex(_pickle_file(local).read_bytes())


def trust_version(tracking_uri: str, registered_name: str, version: str) -> str:
    """Record the sha256 of a version's logged pickle as it is now (versions registered before hashing have
    none); an operator's explicit decision that this artifact is the one trained. Returns the digest."""
    with tracking(tracking_uri) as client:
        found = client.get_model_version(registered_name, version)
        digest = _logged_pickle_sha256(f"models:/{registered_name}/{found.version}")
        client.set_model_version_tag(registered_name, str(found.version), ARTIFACT_SHA256_TAG, digest)
    return digest


def load_verified_pipeline(
    client: MlflowClient, registered_name: str, version: str, head: tuple[str, str] | None = None
) -> Pipeline:
    """The pipeline of a registered version (or of its head (name, model URI)), unpickled only if its file
    matches the version's sha256 tag.

    Call inside `tracking(...)`. Raises pdm_assets.lib.integrity.IntegrityError when the tag is missing or
    the artifact changed since it was registered."""
    tag = ARTIFACT_SHA256_TAG if head is None else head_sha256_tag(head[0])
    expected = client.get_model_version(registered_name, version).tags.get(tag)
    uri = f"models:/{registered_name}/{version}" if head is None else head[1]
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp))
        verified_bytes(_pickle_file(local), expected, f"{uri} (tag {tag})")
        # The private copy just checked is what MLflow loads; nothing else writes to it.
        pipeline: Pipeline = mlflow.sklearn.load_model(str(local))
    return pipeline


MODEL_PACKAGES = ("scikit-learn", "pandas", "numpy", "scipy", "cloudpickle")


def model_requirements() -> list[str]:
    """Pinned versions of what loading the fitted pipeline needs, from this environment."""
    return [f"{name}=={version(name)}" for name in MODEL_PACKAGES]


def log_artifact(tracking_uri: str, run_id: str, path: Path, artifact_path: str | None = None) -> None:
    """Attach a file to an existing run."""
    with tracking(tracking_uri) as client:
        client.log_artifact(run_id, str(path), artifact_path)


def log_metrics(tracking_uri: str, run_id: str, metrics: Mapping[str, float]) -> None:
    """Add metrics to an existing run, skipping values that are not finite numbers."""
    with tracking(tracking_uri) as client:
        for key, value in metrics.items():
            if value == value and abs(value) != float("inf"):
                client.log_metric(run_id, key, float(value))


HISTORY_TAG = "alias_history"


def set_alias(
    tracking_uri: str, registered_name: str, version: str, alias: str = CHAMPION_ALIAS, reason: str = ""
) -> None:
    """Point an alias (by default `champion`) at a registered version, appending to the alias history tag."""
    with tracking(tracking_uri) as client:
        client.get_model_version(registered_name, version)  # raises with a clear message if it does not exist
        client.set_registered_model_alias(registered_name, alias, version)
        history = _history(client, registered_name)
        history.append({"alias": alias, "version": version, "at": datetime.now(UTC).isoformat(),
                        "reason": reason[:REASON_KEPT]})
        client.set_registered_model_tag(registered_name, HISTORY_TAG, json.dumps(history[-HISTORY_KEPT:]))


def alias_history(tracking_uri: str, registered_name: str) -> list[dict[str, str]]:
    """Every alias move recorded by set_alias, oldest first."""
    with tracking(tracking_uri) as client:
        return _history(client, registered_name)


HISTORY_KEPT = 100  # MLflow tag values are bounded in size: the last moves, each with a bounded reason
REASON_KEPT = 500


def _history(client: MlflowClient, registered_name: str) -> list[dict[str, str]]:
    tags = client.get_registered_model(registered_name).tags
    loaded: list[dict[str, str]] = json.loads(tags.get(HISTORY_TAG, "[]"))
    return loaded


# What MLflow answers for an unknown registered model (RESOURCE_DOES_NOT_EXIST) or alias (INVALID_PARAMETER_VALUE);
# anything else, an unreachable server included, is an error and not "no champion yet".
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def is_not_found(error: MlflowException) -> bool:
    return error.error_code in NOT_FOUND_CODES


def alias_version(tracking_uri: str, registered_name: str, alias: str = CHAMPION_ALIAS) -> str | None:
    """The version an alias points at, or None when the model or alias does not exist yet (MLflow errors raise)."""
    with tracking(tracking_uri) as client:
        try:
            return str(client.get_model_version_by_alias(registered_name, alias).version)
        except MlflowException as error:
            if not is_not_found(error):
                raise
            return None


def download_run_files(
    tracking_uri: str, registered_name: str, version: str, paths: list[str], destination: Path
) -> dict[str, Path]:
    """The named artifacts (files or folders) of the run that logged `version`; those it lacks are left out."""
    found = {}
    with tracking(tracking_uri) as client:
        run_id = client.get_model_version(registered_name, version).run_id
        for path in paths:
            try:
                local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path,
                                                            dst_path=str(destination), tracking_uri=tracking_uri)
            except (MlflowException, OSError):  # not logged for this run (e.g. never evaluated)
                continue
            found[path] = Path(local)
    return found


@dataclass(frozen=True)
class LoadedModel:
    """A registered version loaded back: the fitted pipeline and the metadata logged with it."""

    pipeline: Pipeline
    version: str
    metadata: dict[str, Any]
    tracking_uri: str = ""
    registered_name: str = ""

    def head(self, name: str) -> Pipeline | None:
        """The verified pipeline of a head logged with this version (log_and_register's `heads`), None if none."""
        found = self.metadata.get(name)
        if not isinstance(found, Mapping) or "model_uri" not in found:
            return None
        with tracking(self.tracking_uri) as client:
            return load_verified_pipeline(client, self.registered_name, self.version, (name, str(found["model_uri"])))


def load_alias(tracking_uri: str, registered_name: str, alias: str = CHAMPION_ALIAS) -> LoadedModel | None:
    """The version an alias points at, loaded, or None when there is no such alias yet."""
    version = alias_version(tracking_uri, registered_name, alias)
    if version is None:
        return None
    uri = f"models:/{registered_name}/{version}"
    with tracking(tracking_uri) as client:
        pipeline = load_verified_pipeline(client, registered_name, version)
        metadata = mlflow.models.get_model_info(uri).metadata or {}
    return LoadedModel(pipeline, version, dict(metadata), tracking_uri, registered_name)

"""Resources: the PDM_ settings, MLflow and the asset store as Dagster resources, and the executor the settings
choose."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from pdm_assets.lib import storage
from pdm_assets.settings import Settings, get_settings

CHAMPION_ALIAS = "champion"  # the MLflow alias the promotion gate moves (lib.tracking.CHAMPION_ALIAS)

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline
    from upath import UPath

    from pdm_assets.lib import tracking


def _tracking() -> Any:
    """lib.tracking imports mlflow (about 3.5 s): only the steps and sensors that talk to MLflow pay for it."""
    from pdm_assets.lib import tracking

    return tracking


class ProjectSettings(dg.ConfigurableResource):
    """Every PDM_ setting, read once when the code location loads; assets, checks and sensors read them here."""

    values: dict[str, Any] = Field(
        default_factory=dict, description="the Settings fields (unset ones take their defaults)"
    )

    @classmethod
    def of(cls, settings: Settings) -> ProjectSettings:
        # Dagster's config has no null values: unset optional settings are simply left out.
        return cls(values=settings.model_dump(mode="json", exclude_none=True))

    def get(self) -> Settings:
        """The settings as validated values; every field is given, so the environment is not read again."""
        left_out = dict.fromkeys(Settings.model_fields)  # the unset optional ones, None
        return Settings.model_validate(left_out | self.values)


class MLflowResource(dg.ConfigurableResource):
    """The MLflow tracking store and model registry (dagster-mlflow pins older dagster and pandas)."""

    tracking_uri: str
    experiment: str
    artifact_location: str | None = None
    registered_model_name: str

    @classmethod
    def of(cls, settings: Settings) -> MLflowResource:
        uri = settings.mlflow_tracking_uri
        if uri.startswith("sqlite:///"):
            # Absolute, so child processes (the bento build) and later cwd changes reach the same store.
            store = Path(uri.removeprefix("sqlite:///")).resolve()
            store.parent.mkdir(parents=True, exist_ok=True)
            uri = f"sqlite:///{store}"
        return cls(
            tracking_uri=uri,
            experiment=settings.mlflow_experiment,
            artifact_location=settings.mlflow_artifact_root(),
            registered_model_name=settings.registered_model_name,
        )

    def log_and_register(
        self,
        pipeline: Pipeline,
        input_example: pd.DataFrame,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        model_metadata: Mapping[str, Any],
        heads: Mapping[str, tuple[Pipeline, pd.DataFrame]] | None = None,
    ) -> tracking.ModelRecord:
        return _tracking().log_and_register(
            tracking_uri=self.tracking_uri,
            experiment=self.experiment,
            artifact_location=self.artifact_location,
            registered_name=self.registered_model_name,
            pipeline=pipeline,
            input_example=input_example,
            params=params,
            metrics=metrics,
            tags=tags,
            model_metadata=model_metadata,
            heads=heads,
        )

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        _tracking().log_artifact(self.tracking_uri, run_id, path, artifact_path)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        _tracking().log_metrics(self.tracking_uri, run_id, metrics)

    def set_alias(self, version: str, alias: str = CHAMPION_ALIAS, reason: str = "") -> None:
        _tracking().set_alias(self.tracking_uri, self.registered_model_name, version, alias, reason)

    def alias_version(self, alias: str = CHAMPION_ALIAS) -> str | None:
        return _tracking().alias_version(self.tracking_uri, self.registered_model_name, alias)

    def load_alias(self, alias: str = CHAMPION_ALIAS) -> tracking.LoadedModel | None:
        return _tracking().load_alias(self.tracking_uri, self.registered_model_name, alias)

    def download_run_files(self, version: str, paths: list[str], destination: Path) -> dict[str, Path]:
        """Artifacts of the run that logged `version` (evaluation.json, model_card.md, plots)."""
        return _tracking().download_run_files(self.tracking_uri, self.registered_model_name, version, paths,
                                              destination)


class _StoredValues(dg.UPathIOManager):
    """Dagster's UPath IO manager (partition paths, loading several partitions) over lib.storage's formats."""

    def dump_to_path(self, context: dg.OutputContext, obj: Any, path: UPath) -> None:
        written = storage.write_value(obj, path)
        context.add_output_metadata({"stored_file": dg.MetadataValue.path(str(written))})

    def load_from_path(self, context: dg.InputContext, path: UPath) -> Any:
        return storage.read_value(path)

    def path_exists(self, path: UPath) -> bool:
        return storage.value_exists(path)


class ObjectStoreIOManager(dg.ConfigurableIOManagerFactory):
    """Asset values under PDM_STORAGE_URI, shared by every run whatever process or pod it runs in: frames as
    Parquet, other values pickled. S3 credentials and endpoint come from the standard AWS environment."""

    uri: str = Field(description="a folder or an fsspec URI such as s3://bucket/prefix")

    @classmethod
    def of(cls, uri: str) -> ObjectStoreIOManager:
        return cls(uri=str(storage.storage_root(uri)))

    def create_io_manager(self, context: dg.InitResourceContext) -> dg.UPathIOManager:
        return _StoredValues(storage.storage_root(self.uri))


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every resource the definitions need, from one Settings object (tests pass their own). Without
    PDM_STORAGE_URI asset values stay with Dagster's default IO manager ($DAGSTER_HOME/storage)."""
    resources: dict[str, Any] = {"settings": ProjectSettings.of(settings), "mlflow": MLflowResource.of(settings)}
    if settings.storage_uri:
        resources["io_manager"] = ObjectStoreIOManager.of(settings.storage_uri)
    return resources


def executor_for(settings: Settings) -> dg.ExecutorDefinition:
    return dg.in_process_executor if settings.run_executor == "in_process" else dg.multiprocess_executor


@dg.definitions
def resources() -> dg.Definitions:
    """Resources and executor from the PDM_ environment, read when the code location loads."""
    settings = get_settings()
    return dg.Definitions(resources=build_resources(settings), executor=executor_for(settings))

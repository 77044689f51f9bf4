"""Resources: thin Dagster handles on MLflow, configured from Settings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from sklearn.pipeline import Pipeline

from pdm_assets.lib import tracking
from pdm_assets.settings import Settings


class MLflowResource(dg.ConfigurableResource):
    """The MLflow tracking store and model registry (dagster-mlflow pins older dagster and pandas)."""

    tracking_uri: str
    experiment: str
    artifact_location: str | None = None
    registered_model_name: str

    def log_and_register(
        self,
        pipeline: Pipeline,
        input_example: pd.DataFrame,
        params: Mapping[str, Any],
        metrics: Mapping[str, float],
        tags: Mapping[str, str],
        model_metadata: Mapping[str, Any],
    ) -> tracking.ModelRecord:
        return tracking.log_and_register(
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
        )

    def log_artifact(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        tracking.log_artifact(self.tracking_uri, run_id, path, artifact_path)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float]) -> None:
        tracking.log_metrics(self.tracking_uri, run_id, metrics)

    def set_alias(self, version: str, alias: str = tracking.CHAMPION_ALIAS, reason: str = "") -> None:
        tracking.set_alias(self.tracking_uri, self.registered_model_name, version, alias, reason)

    def alias_version(self, alias: str = tracking.CHAMPION_ALIAS) -> str | None:
        return tracking.alias_version(self.tracking_uri, self.registered_model_name, alias)

    def load_alias(self, alias: str = tracking.CHAMPION_ALIAS) -> tracking.LoadedModel | None:
        return tracking.load_alias(self.tracking_uri, self.registered_model_name, alias)


def build_resources(settings: Settings) -> dict[str, Any]:
    """Every resource the definitions need, from one Settings object."""
    if settings.mlflow_tracking_uri.startswith("sqlite:///"):
        Path(settings.mlflow_tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return {
        "mlflow": MLflowResource(
            tracking_uri=settings.mlflow_tracking_uri,
            experiment=settings.mlflow_experiment,
            artifact_location=settings.mlflow_artifact_root(),
            registered_model_name=settings.registered_model_name,
        )
    }

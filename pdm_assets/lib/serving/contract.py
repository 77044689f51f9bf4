"""What the packed model says about itself, and scoring feature rows with it: the service's contract.

pandera-, mlflow- and dagster-free: the service image imports this, and the bento build reads the service's
name and routes from here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field
from sklearn.pipeline import Pipeline

from pdm_assets.lib.data.tables import COMPONENTS, MACHINE_MODELS
from pdm_assets.lib.modelling.estimators import failure_probability, predict_components
from pdm_assets.lib.modelling.features import ERROR_LOOKBACK_HOURS, FEATURE_COLUMNS, TELEMETRY_LOOKBACK_HOURS
from pdm_assets.lib.serving.schema import ComponentProbabilities, Prediction

# The HTTP service's name and routes: the service declares them, the bento build names and lists them.
SERVICE_NAME = "pdm_service"
PREDICT_ROUTE = "/predict"
MODEL_ROUTE = "/model"


class ServingContract(BaseModel):
    """What the packed model says about itself: everything the service needs, nothing re-declared."""

    model_config = ConfigDict(protected_namespaces=(), extra="ignore")
    registered_name: str
    registered_version: str
    run_id: str
    model_uri: str
    threshold: float
    horizon_hours: int
    grid_hours: int
    telemetry_lookback_hours: int
    error_lookback_hours: int
    feature_columns: list[str]
    data_source: str
    training_start: str
    training_end: str
    split: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    trained_at: float = Field(description="When the MLflow run started, seconds since 1970 (UTC).")

    def check_compatible(self) -> None:
        """Raise ValueError when this package's feature code cannot produce what the model expects."""
        unknown = [c for c in self.feature_columns if c not in FEATURE_COLUMNS]
        if unknown:
            raise ValueError(f"the model expects features this code does not build: {unknown}")
        if self.telemetry_lookback_hours != TELEMETRY_LOOKBACK_HOURS:
            raise ValueError(
                f"the model was trained with telemetry_lookback_hours={self.telemetry_lookback_hours}, "
                f"this feature code uses {TELEMETRY_LOOKBACK_HOURS}"
            )
        if self.error_lookback_hours != ERROR_LOOKBACK_HOURS:
            raise ValueError(
                f"the model was trained with error_lookback_hours={self.error_lookback_hours}, "
                f"this feature code uses {ERROR_LOOKBACK_HOURS}"
            )


def predictions(
    pipeline: Pipeline, contract: ServingContract, features: pd.DataFrame, model_version: str
) -> list[Prediction]:
    """Score feature rows with the pipeline and the threshold the model carries."""
    # By position: selecting the columns by name copies them through pandas' indexer (0.5 ms a request).
    columns = features.take(features.columns.get_indexer(pd.Index(contract.feature_columns)), axis=1)
    components = predict_components(pipeline, columns)
    probability = failure_probability(components)
    per_component = components[list(COMPONENTS)].to_numpy(np.float64)
    return [
        Prediction(
            machine_id=int(machine_id),
            as_of=as_of.to_pydatetime(),
            failure_probability=float(p),
            component_probabilities=ComponentProbabilities(
                **{comp: float(value) for comp, value in zip(COMPONENTS, row, strict=True)}
            ),
            alert=bool(p >= contract.threshold),
            threshold=contract.threshold,
            horizon_hours=contract.horizon_hours,
            model_version=model_version,
        )
        for machine_id, as_of, p, row in zip(
            features["machineID"], features["datetime"], probability, per_component, strict=True
        )
    ]


def check_scores(pipeline: Pipeline, contract: ServingContract) -> None:
    """Raise ValueError unless the pipeline scores one row with this code (catches model/code mismatches)."""
    row = pd.DataFrame({column: [np.nan] for column in contract.feature_columns})
    if "model" in row:
        row["model"] = pd.Series([MACHINE_MODELS[0]], dtype=object)
    try:
        probability = failure_probability(predict_components(pipeline, row))
    except Exception as error:  # whatever the unpickled object raises, the answer is "cannot serve"
        raise ValueError(f"the model cannot score with this code: {type(error).__name__}: {error}") from error
    if not (len(probability) == 1 and 0.0 <= probability[0] <= 1.0):
        raise ValueError(f"the model scored an example row as {probability!r}, not one probability")

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
from pdm_assets.lib.modelling.features import (
    BASELINE_GAP_HOURS,
    BASELINE_READINGS_COLUMN,
    EARLY_WARNING_FEATURE_COLUMNS,
    ERROR_LOOKBACK_HOURS,
    FEATURE_COLUMNS,
    TELEMETRY_LOOKBACK_HOURS,
    baseline_min_readings,
)
from pdm_assets.lib.serving.schema import ComponentProbabilities, EarlyWarning, Prediction

# The HTTP service's name and routes: the service declares them, the bento build names and lists them.
SERVICE_NAME = "pdm_service"
PREDICT_ROUTE = "/predict"
MODEL_ROUTE = "/model"
# The early-warning head's key in the model metadata and its file in the packed BentoML model.
EARLY_WARNING_OBJECT = "early_warning"


class EarlyWarningContract(BaseModel):
    """What the early-warning head says about itself (the `early_warning` entry of the model metadata)."""

    model_config = ConfigDict(extra="ignore")
    threshold: float
    horizon_hours: int
    baseline_lookback_hours: int
    min_baseline_readings: int
    feature_columns: list[str]


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
    early_warning: EarlyWarningContract | None = None

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
        if self.early_warning is not None:
            _check_early_warning(self.early_warning)

    @property
    def baseline_hours(self) -> int | None:
        """The telemetry lookback the early-warning features need, None without an early-warning head."""
        return None if self.early_warning is None else self.early_warning.baseline_lookback_hours


def _check_early_warning(head: EarlyWarningContract) -> None:
    """Raise ValueError when this feature code cannot build the early-warning head's features as trained."""
    unknown = [c for c in head.feature_columns if c not in EARLY_WARNING_FEATURE_COLUMNS]
    if unknown:
        raise ValueError(f"the early-warning head expects features this code does not build: {unknown}")
    expected = baseline_min_readings(head.baseline_lookback_hours)
    if head.min_baseline_readings != expected:
        raise ValueError(
            f"the early-warning head needs {head.min_baseline_readings} baseline readings in "
            f"{head.baseline_lookback_hours} h, this feature code {expected}"
        )


def predictions(
    pipeline: Pipeline, contract: ServingContract, features: pd.DataFrame, model_version: str,
    early_warning: Pipeline | None = None,
) -> list[Prediction]:
    """Score feature rows with the pipeline and the threshold the model carries; the early warning beside."""
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
            early_warning=warning,
            early_warning_unavailable=unavailable,
        )
        for machine_id, as_of, p, row, (warning, unavailable) in zip(
            features["machineID"], features["datetime"], probability, per_component,
            early_warnings(early_warning, contract.early_warning, features), strict=True
        )
    ]


def early_warnings(
    pipeline: Pipeline | None, head: EarlyWarningContract | None, features: pd.DataFrame
) -> list[tuple[EarlyWarning | None, str | None]]:
    """Per feature row, the early warning, or None and why not (no head, or too little baseline telemetry)."""
    if pipeline is None or head is None:
        return [(None, "the served model has no early-warning head")] * len(features)
    readings = features[BASELINE_READINGS_COLUMN].to_numpy(np.int64)
    usable = np.flatnonzero(readings >= head.min_baseline_readings)
    answers: list[tuple[EarlyWarning | None, str | None]] = [
        (None, f"the early warning compares the last day with the machine's baseline, the hourly readings in "
               f"(as_of - {head.baseline_lookback_hours} h, as_of - {BASELINE_GAP_HOURS} h]: it needs "
               f"{head.min_baseline_readings} of them and this history has {n}; send the last "
               f"{head.baseline_lookback_hours} hourly readings")
        for n in readings
    ]
    if len(usable):
        rows = features.iloc[usable]
        columns = rows.take(rows.columns.get_indexer(pd.Index(head.feature_columns)), axis=1)
        for i, p in zip(usable, failure_probability(predict_components(pipeline, columns)), strict=True):
            answers[i] = (EarlyWarning(failure_probability=float(p), alert=bool(p >= head.threshold),
                                       threshold=head.threshold, horizon_hours=head.horizon_hours), None)
    return answers


def check_scores(pipeline: Pipeline, contract: ServingContract | EarlyWarningContract) -> None:
    """Raise ValueError unless the pipeline (either head) scores one row with this code (model/code mismatches)."""
    row = pd.DataFrame({column: [np.nan] for column in contract.feature_columns})
    if "model" in row:
        row["model"] = pd.Series([MACHINE_MODELS[0]], dtype=object)
    try:
        probability = failure_probability(predict_components(pipeline, row))
    except Exception as error:  # whatever the unpickled object raises, the answer is "cannot serve"
        raise ValueError(f"the model cannot score with this code: {type(error).__name__}: {error}") from error
    if not (len(probability) == 1 and 0.0 <= probability[0] <= 1.0):
        raise ValueError(f"the model scored an example row as {probability!r}, not one probability")

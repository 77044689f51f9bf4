"""A trained model as the registry knows it: the fit, where MLflow keeps it, and what the service reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pdm_assets.lib.modelling.early_warning import EARLY_WARNING
from pdm_assets.lib.modelling.split import SplitPlan

if TYPE_CHECKING:
    from pdm_assets.lib.modelling.early_warning import EarlyWarningHead
    from pdm_assets.lib.modelling.train import TrainedModel
    from pdm_assets.lib.tracking import ModelRecord


@dataclass(frozen=True)
class RegisteredModel:
    """The `model` asset's value: a new registered version (a challenger until the gate promotes it)."""

    trained: TrainedModel
    record: ModelRecord
    contract: dict[str, Any]  # the MLflow model metadata the service validates as its ServingContract
    early_warning: EarlyWarningHead | None = None  # the second head, when the data could fit one

    @property
    def version(self) -> str:
        return self.record.version

    @property
    def data_source(self) -> str:
        return str(self.contract["data_source"])

    @property
    def horizon_hours(self) -> int:
        return int(self.contract["horizon_hours"])

    @property
    def grid_hours(self) -> int:
        return int(self.contract["grid_hours"])

    @property
    def split(self) -> SplitPlan:
        return SplitPlan.from_dict(self.contract["split"])


def model_contract(
    trained: TrainedModel,
    plan: SplitPlan,
    *,
    data_source: str,
    horizon_hours: int,
    grid_hours: int,
    telemetry_lookback_hours: int,
    error_lookback_hours: int,
    costs: dict[str, float],
    early_warning: EarlyWarningHead | None = None,
) -> dict[str, Any]:
    """What travels with the model as MLflow metadata: everything the service needs, never re-declared there."""
    heads = {} if early_warning is None else {EARLY_WARNING: early_warning.contract()}
    return heads | {
        "threshold": trained.threshold,
        "f1_threshold": trained.f1_threshold,
        "horizon_hours": horizon_hours,
        "grid_hours": grid_hours,
        "telemetry_lookback_hours": telemetry_lookback_hours,
        "error_lookback_hours": error_lookback_hours,
        "feature_columns": trained.feature_columns,
        "data_source": data_source,
        "training_start": plan.train_start.isoformat(),
        "training_end": plan.train_end.isoformat(),
        "split": plan.to_dict(),
        "costs": costs,
    }

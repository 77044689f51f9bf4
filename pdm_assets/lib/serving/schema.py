"""The HTTP request and response bodies of /predict: raw machine history in, one prediction per history out.

Value bounds come from `pdm_assets.lib.data.bounds`, the ranges the pipeline's pandera schemas quarantine by,
so that the service refuses what training would never have seen. List lengths are capped by the serving
settings, so that pydantic stops building objects for an oversized list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from pdm_assets.lib.data.bounds import (
    MAX_MACHINE_AGE_YEARS,
    MAX_MACHINE_ID,
    MIN_MACHINE_AGE_YEARS,
    MIN_MACHINE_ID,
    SENSOR_RANGES,
    latest_plausible_time,
)
from pdm_assets.lib.data.tables import COMPONENTS, ERROR_IDS, MACHINE_MODELS
from pdm_assets.lib.serving.explain import ReasonItem
from pdm_assets.settings import get_settings

MachineModel = Literal["model1", "model2", "model3", "model4"]
ErrorId = Literal["error1", "error2", "error3", "error4", "error5"]
Component = Literal["comp1", "comp2", "comp3", "comp4"]
# The request schema spells the codes out for OpenAPI; they must be the dataset's codes.
assert get_args(MachineModel) == MACHINE_MODELS
assert get_args(ErrorId) == ERROR_IDS
assert get_args(Component) == COMPONENTS


@dataclass(frozen=True)
class Limits:
    """Request size limits (PDM_MAX_BATCH, PDM_MAX_TELEMETRY_ROWS, PDM_MAX_EVENT_ROWS)."""

    max_batch: int
    max_telemetry_rows: int
    max_event_rows: int

    @classmethod
    def from_settings(cls) -> Limits:
        settings = get_settings()
        return cls(settings.max_batch, settings.max_telemetry_rows, settings.max_event_rows)


# Read once, when the schema is built: the service's worker builds it with the deployment's settings.
SCHEMA_LIMITS = Limits.from_settings()


class _FromOffset(datetime):
    """A naive UTC time that was sent with a UTC offset (remembered to refuse histories that mix both)."""


def _utc_naive(value: datetime) -> datetime:
    """Timestamps with an offset become UTC; naive ones are taken as UTC, like the training data."""
    if value.tzinfo is None:
        return value
    utc = value.astimezone(UTC)
    return _FromOffset(utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond)


Timestamp = Annotated[datetime, AfterValidator(_utc_naive)]
# Strict: a string is not a number and a number is not a time; NaN and inf are not readings.
_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


def _reading(sensor: str) -> Any:
    low, high = SENSOR_RANGES[sensor]
    return Field(ge=low, le=high, description=f"{sensor}, within [{low:g}, {high:g}] (else a sensor fault).")


class TelemetryReading(BaseModel):
    """One hourly sensor reading."""

    model_config = _STRICT
    datetime: Timestamp
    volt: float = _reading("volt")
    rotate: float = _reading("rotate")
    pressure: float = _reading("pressure")
    vibration: float = _reading("vibration")


class ErrorRecord(BaseModel):
    """One error the machine logged."""

    model_config = _STRICT
    datetime: Timestamp
    error_id: ErrorId


class MaintenanceRecord(BaseModel):
    """One component replacement."""

    model_config = _STRICT
    datetime: Timestamp
    comp: Component


class MachineHistory(BaseModel):
    """What a client knows about one machine up to the scoring time `as_of`."""

    model_config = _STRICT
    machine_id: int = Field(ge=MIN_MACHINE_ID, le=MAX_MACHINE_ID,
                            description="The client's machine id, echoed in the prediction.")
    model: MachineModel
    age: int = Field(ge=MIN_MACHINE_AGE_YEARS, le=MAX_MACHINE_AGE_YEARS, description="Machine age in years.")
    as_of: Timestamp = Field(description="Scoring time t, not in the future; every record must be at or before it.")
    telemetry: list[TelemetryReading] = Field(
        max_length=SCHEMA_LIMITS.max_telemetry_rows,
        description="Hourly readings covering the 24 h before as_of (at most 2 hours missing), ascending; the "
        "early warning needs the model's baseline lookback (GET /model: early_warning.baseline_lookback_hours).",
    )
    errors: list[ErrorRecord] = Field(max_length=SCHEMA_LIMITS.max_event_rows,
                                      description="Errors of the last 168 h before as_of, ascending; may be [].")
    maintenance: list[MaintenanceRecord] = Field(
        max_length=SCHEMA_LIMITS.max_event_rows,
        description="Replacements, ascending, holding at least the last one of each component; may be [].",
    )

    @model_validator(mode="after")
    def _one_time_convention(self) -> MachineHistory:
        """Every timestamp of a history with a UTC offset, or none: a mix means two clocks were merged."""
        with_offset = isinstance(self.as_of, _FromOffset)
        for field in ("telemetry", "errors", "maintenance"):
            for i, record in enumerate(getattr(self, field)):
                if isinstance(record.datetime, _FromOffset) is not with_offset:
                    said = "has" if not with_offset else "has no"
                    raise ValueError(
                        f"{field}[{i}].datetime {said} UTC offset but as_of {'has' if with_offset else 'has no'} "
                        "one; send every timestamp of a history with an offset, or none (then UTC is assumed)"
                    )
        return self

    @field_validator("as_of")
    @classmethod
    def _not_in_the_future(cls, value: datetime) -> datetime:
        latest = latest_plausible_time()
        if value > latest:
            raise ValueError(f"as_of {value.isoformat()} is in the future (latest accepted {latest:%Y-%m-%dT%H:%M} "
                             "UTC); score times that have passed")
        return value


Histories = Annotated[list[MachineHistory], Field(min_length=1, max_length=SCHEMA_LIMITS.max_batch)]


class ComponentProbabilities(BaseModel):
    """P(this component fails within the horizon)."""

    comp1: float
    comp2: float
    comp3: float
    comp4: float


class EarlyWarning(BaseModel):
    """The early-warning head's answer: P(failure within its longer horizon), the machine against its own baseline."""

    failure_probability: float = Field(description="P(any component fails within horizon_hours).")
    alert: bool = Field(description="failure_probability >= threshold.")
    threshold: float
    horizon_hours: int


class Prediction(BaseModel):
    """The model's answer for one history."""

    model_config = ConfigDict(protected_namespaces=())
    machine_id: int
    as_of: datetime
    failure_probability: float = Field(description="P(any component fails within the horizon) = 1 - P(none).")
    component_probabilities: ComponentProbabilities
    alert: bool = Field(description="failure_probability >= threshold.")
    threshold: float
    horizon_hours: int
    model_version: str = Field(description="MLflow registered model/version and the bento tag serving it.")
    early_warning: EarlyWarning | None = Field(
        default=None, description="The early warning beside the answer above; null when it cannot be given."
    )
    early_warning_unavailable: str | None = Field(
        default=None, description="Why early_warning is null (too little telemetry, or no early-warning head)."
    )
    reasons: list[ReasonItem] | None = Field(
        default=None, exclude_if=lambda value: value is None,
        description="Only when asked (?explain=true or explain: true): the top inputs behind failure_probability, "
                    "each with its value and exact contribution to the log-odds (they sum to it with the base value).",
    )

"""Pandera models of the five validated tables: strict on columns, dtypes, ranges and codes."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from pdm_assets.lib.data.bounds import (
    MAX_MACHINE_AGE_YEARS,
    MIN_MACHINE_AGE_YEARS,
    MIN_MACHINE_ID,
    SENSOR_RANGES,
    latest_plausible_time,
)
from pdm_assets.lib.data.tables import COMPONENTS, ERROR_IDS, MACHINE_MODELS, TableName


def _reading(sensor: str) -> Any:
    low, high = SENSOR_RANGES[sensor]
    return pa.Field(in_range={"min_value": low, "max_value": high}, coerce=True)


class _Timed(pa.DataFrameModel):
    datetime: Series[pd.Timestamp] = pa.Field(coerce=True, nullable=False)
    machineID: Series[int] = pa.Field(ge=MIN_MACHINE_ID, coerce=True, nullable=False)

    @pa.check("datetime", name="not_in_the_future")
    def not_in_the_future(cls, times: Series[pd.Timestamp]) -> Series[bool]:
        return Series[bool](times <= pd.Timestamp(latest_plausible_time()))

    class Config:
        strict = True


class Telemetry(_Timed):
    """Hourly readings; one row per machine and hour."""

    volt: Series[float] = _reading("volt")
    rotate: Series[float] = _reading("rotate")
    pressure: Series[float] = _reading("pressure")
    vibration: Series[float] = _reading("vibration")

    @pa.check("datetime", name="on_the_hour")
    def on_the_hour(cls, times: Series[pd.Timestamp]) -> Series[bool]:
        return Series[bool](times == times.dt.floor("h"))

    class Config:
        unique = ["machineID", "datetime"]


class Errors(_Timed):
    """Error events."""

    errorID: Series[str] = pa.Field(isin=list(ERROR_IDS), coerce=True)

    class Config:
        unique = ["machineID", "datetime", "errorID"]


class Maint(_Timed):
    """Component replacements."""

    comp: Series[str] = pa.Field(isin=list(COMPONENTS), coerce=True)

    class Config:
        unique = ["machineID", "datetime", "comp"]


class Failures(_Timed):
    """Component failures; several components of one machine can fail at the same time."""

    failure: Series[str] = pa.Field(isin=list(COMPONENTS), coerce=True)

    class Config:
        unique = ["machineID", "datetime", "failure"]


class Machines(pa.DataFrameModel):
    """One row per machine."""

    machineID: Series[int] = pa.Field(ge=MIN_MACHINE_ID, coerce=True, unique=True)
    model: Series[str] = pa.Field(isin=list(MACHINE_MODELS), coerce=True)
    age: Series[int] = pa.Field(
        in_range={"min_value": MIN_MACHINE_AGE_YEARS, "max_value": MAX_MACHINE_AGE_YEARS}, coerce=True
    )

    class Config:
        strict = True


SCHEMAS: dict[TableName, type[pa.DataFrameModel]] = {
    "telemetry": Telemetry,
    "errors": Errors,
    "maint": Maint,
    "failures": Failures,
    "machines": Machines,
}

"""The five raw tables of the Azure PdM dataset, with their original column names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

TableName = Literal["telemetry", "errors", "maint", "failures", "machines"]
TABLE_NAMES: tuple[TableName, ...] = ("telemetry", "errors", "maint", "failures", "machines")

SENSORS: tuple[str, ...] = ("volt", "rotate", "pressure", "vibration")
COMPONENTS: tuple[str, ...] = ("comp1", "comp2", "comp3", "comp4")
ERROR_IDS: tuple[str, ...] = ("error1", "error2", "error3", "error4", "error5")
MACHINE_MODELS: tuple[str, ...] = ("model1", "model2", "model3", "model4")

COLUMNS: dict[TableName, tuple[str, ...]] = {
    "telemetry": ("datetime", "machineID", *SENSORS),
    "errors": ("datetime", "machineID", "errorID"),
    "maint": ("datetime", "machineID", "comp"),
    "failures": ("datetime", "machineID", "failure"),
    "machines": ("machineID", "model", "age"),
}

# Natural keys: a row is a duplicate when these repeat.
NATURAL_KEYS: dict[TableName, tuple[str, ...]] = {
    "telemetry": ("machineID", "datetime"),
    "errors": ("machineID", "datetime", "errorID"),
    "maint": ("machineID", "datetime", "comp"),
    "failures": ("machineID", "datetime", "failure"),
    "machines": ("machineID",),
}

# The dataset's own file names, as published.
FILE_NAMES: dict[TableName, str] = {
    "telemetry": "PdM_telemetry.csv",
    "errors": "PdM_errors.csv",
    "maint": "PdM_maint.csv",
    "failures": "PdM_failures.csv",
    "machines": "PdM_machines.csv",
}


@dataclass(frozen=True)
class FileRecord:
    """What was read for one table: where from, its sha256, rows and time range."""

    table: TableName
    location: str
    sha256: str
    rows: int
    start: str | None
    end: str | None


@dataclass
class RawTables:
    """The five raw tables plus a record of what was read to produce them."""

    telemetry: pd.DataFrame
    errors: pd.DataFrame
    maint: pd.DataFrame
    failures: pd.DataFrame
    machines: pd.DataFrame
    source: str  # "local", "download", "synthetic"
    records: dict[str, FileRecord] = field(default_factory=dict)

    def table(self, name: TableName) -> pd.DataFrame:
        frame: pd.DataFrame = getattr(self, name)
        return frame


@dataclass(frozen=True)
class Provenance:
    """Where the raw tables came from, carried to the model, the reports and MLflow's `data_source` tag."""

    data_source: str  # "local", "download", "synthetic"
    requested: str  # PDM_DATA_SOURCE as set ("auto" may end as any of the three)
    warnings: list[str]
    files: dict[str, FileRecord]
    landed_rows: dict[str, int]

    @classmethod
    def of(cls, tables: RawTables, requested: str, warnings: list[str], landed_rows: dict[str, int]) -> Provenance:
        return cls(tables.source, requested, list(warnings), dict(tables.records), dict(landed_rows))

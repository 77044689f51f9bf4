"""The published Azure PdM files as pinned in code, and the checks of a file against them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv

from pdm_assets.lib.data.download import DataSourceError, sha256_file
from pdm_assets.lib.data.tables import COLUMNS, TableName

# sha256 of the four small tables as published (the copies in ../shared/data/azure-pdm).
PUBLISHED_SHA256: dict[TableName, str] = {
    "errors": "585ce81fe71a71091f554045fd31de5fdfbda959150f2f76b26f8901c3b4e812",
    "failures": "6715d70a5fdd71196be4c98bbc9075438869270a0893f0b3b3f945dbef9bc59f",
    "maint": "a1e853a87d4f94badf92597b8665e7059e432272e6c9a1006f8476466ac4c639",
    "machines": "711f25f2e88ebd77ba1633f347edb0fd8144bfd7a1ff1ba30fe245e7e04dafb0",
}


@dataclass(frozen=True)
class TelemetryShape:
    """What the telemetry file must look like; its bytes cannot be pinned (no copy is available here)."""

    columns: tuple[str, ...]
    rows: int
    machines: int
    first: datetime
    last: datetime


# 100 machines, hourly from 2015-01-01 06:00 to 2016-01-01 06:00 inclusive: 8,761 rows each.
PUBLISHED_TELEMETRY = TelemetryShape(
    columns=COLUMNS["telemetry"],
    rows=876_100,
    machines=100,
    first=datetime(2015, 1, 1, 6),
    last=datetime(2016, 1, 1, 6),
)


def check_published(path: Path, table: TableName, shown_as: str) -> str:
    """Raise DataSourceError unless `path` is the published `table`; return what was checked."""
    if table == "telemetry":
        return check_telemetry_shape(path, PUBLISHED_TELEMETRY, shown_as)
    return check_sha256(path, PUBLISHED_SHA256[table], shown_as)


def check_sha256(path: Path, expected: str, shown_as: str) -> str:
    """Raise DataSourceError unless the sha256 of `path` is `expected`."""
    found = sha256_file(path)
    if found != expected:
        raise DataSourceError(f"{shown_as} is not the published file: sha256 expected {expected}, found {found}")
    return "sha256 as pinned"


def check_telemetry_shape(path: Path, shape: TelemetryShape, shown_as: str) -> str:
    """Raise DataSourceError naming each fact of `shape` that the CSV at `path` does not have."""
    columns = _header(path, shown_as)
    if columns != shape.columns:
        raise DataSourceError(
            f"{shown_as} is not the published telemetry: columns expected {list(shape.columns)}, found {list(columns)}"
        )
    keys = _read_keys(path, columns, shown_as)
    span = pc.min_max(keys["datetime"])
    found = {
        "rows": f"{keys.num_rows:,}",
        "machines": f"{pc.count_distinct(keys['machineID']).as_py():,}",
        "time range": f"{span['min'].as_py()} to {span['max'].as_py()}",
    }
    expected = {
        "rows": f"{shape.rows:,}",
        "machines": f"{shape.machines:,}",
        "time range": f"{shape.first} to {shape.last}",
    }
    wrong = [f"{fact} expected {want}, found {found[fact]}" for fact, want in expected.items() if found[fact] != want]
    if wrong:
        raise DataSourceError(f"{shown_as} is not the published telemetry: {'; '.join(wrong)}")
    return f"{found['rows']} rows, {found['machines']} machines, {found['time range']}"


def _header(path: Path, shown_as: str) -> tuple[str, ...]:
    """The header names as the sources read them: unquoted, whitespace stripped."""
    try:
        names = pd.read_csv(path, nrows=0).columns
    except (ValueError, OSError) as error:
        raise DataSourceError(f"{shown_as} cannot be read as a CSV table: {error}") from error
    return tuple(str(name).strip() for name in names)


def _read_keys(path: Path, columns: tuple[str, ...], shown_as: str) -> pa.Table:
    """The `datetime` and `machineID` columns, typed; a value that does not parse is an error."""
    try:
        return csv.read_csv(
            path,
            read_options=csv.ReadOptions(skip_rows=1, column_names=list(columns)),
            convert_options=csv.ConvertOptions(
                include_columns=["datetime", "machineID"],
                column_types={"datetime": pa.timestamp("s"), "machineID": pa.int64()},
            ),
        )
    except (pa.ArrowInvalid, OSError) as error:
        raise DataSourceError(f"{shown_as} cannot be read as the telemetry table: {error}") from error

"""A large synthetic fleet written as the dataset's five tables in Parquet, a block of machines at a time, so
that no process ever holds the whole fleet: the fan-out benchmark's runs read it as PDM_DATA_DIR (local source),
each keeping its machine group's rows."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pdm_assets.lib.data.tables import FILE_NAMES, TABLE_NAMES
from pdm_assets.lib.synthetic.simulate import generate_fleet

BLOCK_MACHINES = 1000


@dataclass(frozen=True)
class WrittenFleet:
    folder: Path
    machines: int
    days: int
    rows: dict[str, int]
    seconds: float


def parquet_name(table: str) -> str:
    """The dataset's file name with .parquet: the local source reads it when no CSV of that stem exists."""
    return FILE_NAMES[table].removesuffix(".csv") + ".parquet"  # type: ignore[index]


def write_fleet(folder: Path, machines: int, days: int, seed: int = 42) -> WrittenFleet:
    """Simulate `machines` in blocks of BLOCK_MACHINES (each its own seed and id range) and append each block's
    tables as row groups of one Parquet file per table."""
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    writers: dict[str, pq.ParquetWriter] = {}
    rows = dict.fromkeys(TABLE_NAMES, 0)
    try:
        for first in range(0, machines, BLOCK_MACHINES):
            block = generate_fleet(machines=min(BLOCK_MACHINES, machines - first), days=days,
                                   seed=seed + first // BLOCK_MACHINES, first_machine_id=first + 1)
            for name in TABLE_NAMES:
                table = pa.Table.from_pandas(block.table(name), preserve_index=False)
                if name not in writers:
                    writers[name] = pq.ParquetWriter(folder / parquet_name(name), table.schema)
                writers[name].write_table(table.cast(writers[name].schema), row_group_size=1_000_000)
                rows[name] += table.num_rows
    finally:
        for writer in writers.values():
            writer.close()
    return WrittenFleet(folder, machines, days, rows, round(time.monotonic() - started, 1))

"""Three sources of the five raw tables behind one interface: a local folder, a download, a simulation."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pdm_assets.lib.data.download import DataSourceError, download_cache_complete, fetch_file, sha256_file
from pdm_assets.lib.data.groups import rows_of_group, tables_of_group
from pdm_assets.lib.data.published import check_published
from pdm_assets.lib.data.tables import FILE_NAMES, TABLE_NAMES, FileRecord, RawTables, TableName
from pdm_assets.settings import Settings

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DataSourceError",
    "LoadResult",
    "download_cache_complete",
    "load_download",
    "load_local",
    "load_raw",
    "load_synthetic",
]

logger = logging.getLogger(__name__)

Group = tuple[int, int]  # (index, groups) of a machine group (lib.data.groups)
WHOLE_FLEET: Group = (0, 1)
READ_CHUNK_ROWS = 1_000_000

_LOCAL_FIX = "set PDM_DATA_DIR to the folder holding the Azure PdM files"


@dataclass(frozen=True)
class LoadResult:
    """The raw tables, the source that was asked for, and warnings a person should see."""

    tables: RawTables
    requested: str
    warnings: list[str] = field(default_factory=list)


def load_local(data_dir: Path, telemetry_glob: str = "PdM_telemetry*.csv", group: Group = WHOLE_FLEET) -> RawTables:
    """Read the five tables from CSV (or same-stem Parquet) files in `data_dir` (one machine group's rows)."""
    return _load_dir(data_dir, telemetry_glob, "local", f"PDM_DATA_DIR={data_dir}", _LOCAL_FIX, group=group)


def load_download(
    cache_dir: Path, base_url: str, timeout_seconds: float, kaggle_dataset: str, telemetry_glob: str,
    group: Group = WHOLE_FLEET,
) -> RawTables:
    """Download the five tables into `cache_dir` from `base_url`, else from Kaggle's copy."""
    try:
        return _load_blob(cache_dir, base_url, timeout_seconds, group)
    except DataSourceError as blob_error:
        logger.warning("blob download failed, trying Kaggle dataset %r: %s", kaggle_dataset, blob_error)
        try:
            return _load_kaggle(kaggle_dataset, telemetry_glob, group)
        except DataSourceError as kaggle_error:
            raise DataSourceError(
                f"both download sources failed. (1) blob: {blob_error}. (2) Kaggle: {kaggle_error}"
            ) from kaggle_error


def load_synthetic(machines: int, days: int, seed: int, start: datetime) -> RawTables:
    """Simulate a fleet with the dataset's five tables."""
    # Imported here so this module loads even where the simulator is absent or still being written.
    from pdm_assets.lib.synthetic.simulate import generate_fleet

    return generate_fleet(machines=machines, days=days, seed=seed, start=start)


def load_raw(settings: Settings, group: Group = WHOLE_FLEET) -> LoadResult:
    """Load the raw tables (of one machine group) from the source the settings ask for; `auto` may fall back
    to synthetic."""
    requested = settings.data_source
    if requested != "auto":
        return LoadResult(_PINNED[requested](settings, group), requested)
    if settings.data_dir is not None:
        return LoadResult(_from_local(settings, group), requested)
    # load_download reuses a complete, verified cache without any request.
    try:
        return LoadResult(_from_download(settings, group), requested)
    except DataSourceError as error:
        warning = (
            f"FALLING BACK TO SYNTHETIC DATA: download failed: {error}; "
            "set PDM_DATA_DIR or PDM_DATA_SOURCE to pin a source"
        )
        logger.warning(warning)
        return LoadResult(_from_synthetic(settings, group), requested, [warning])


def _from_local(settings: Settings, group: Group = WHOLE_FLEET) -> RawTables:
    if settings.data_dir is None:
        raise DataSourceError(
            f"PDM_DATA_SOURCE={settings.data_source} needs PDM_DATA_DIR, which is not set; {_LOCAL_FIX}"
        )
    return load_local(settings.data_dir, settings.telemetry_glob, group)


def _from_download(settings: Settings, group: Group = WHOLE_FLEET) -> RawTables:
    return load_download(
        settings.raw_cache_dir,
        settings.download_base_url,
        settings.download_timeout_seconds,
        settings.kaggle_dataset,
        settings.telemetry_glob,
        group,
    )


def _from_synthetic(settings: Settings, group: Group = WHOLE_FLEET) -> RawTables:
    # The simulator draws the whole fleet (its random streams span machines), then keeps the group.
    fleet = load_synthetic(
        settings.synthetic_machines,
        settings.synthetic_days,
        settings.synthetic_seed,
        settings.synthetic_start,
    )
    return tables_of_group(fleet, *group)


_PINNED: dict[str, Callable[[Settings, Group], RawTables]] = {
    "local": _from_local,
    "download": _from_download,
    "synthetic": _from_synthetic,
}


def _load_blob(cache_dir: Path, base_url: str, timeout_seconds: float, group: Group) -> RawTables:
    """Fetch each dataset file from the blob store into the cache, verified as published, then read them."""
    files: dict[TableName, tuple[Path, str]] = {}
    for table in TABLE_NAMES:
        name = FILE_NAMES[table]
        url = f"{base_url.rstrip('/')}/{name}"
        verify = partial(check_published, table=table, shown_as=name)
        files[table] = (fetch_file(url, cache_dir / name, timeout_seconds, verify), url)
    return _read_tables(files, "download", group)


def _load_kaggle(handle: str, telemetry_glob: str, group: Group) -> RawTables:
    """Fetch the Kaggle copy of the dataset through kagglehub, check it is the published one, then read it."""
    try:
        # Imported here: kagglehub is only needed when the blob download fails.
        import kagglehub

        folder = Path(kagglehub.dataset_download(handle))
    # kagglehub raises many exception types (HTTP, auth, I/O); all mean this source failed.
    except Exception as error:
        raise DataSourceError(
            f"Kaggle dataset PDM_KAGGLE_DATASET={handle!r} could not be fetched: {error!r}; "
            "check the network and Kaggle credentials (KAGGLE_USERNAME/KAGGLE_KEY)"
        ) from error
    where = f"Kaggle dataset {handle!r} at {folder}"
    # kagglehub keeps its copy in its own cache: each later run checks it again, none reads it unchecked.
    fix = f"delete {folder} to fetch it again, or set PDM_KAGGLE_DATASET to the Azure PdM dataset (now {handle!r})"
    return _load_dir(folder, telemetry_glob, "download", where, fix, published=True, group=group)


def _load_dir(
    directory: Path, telemetry_glob: str, source: str, where: str, fix: str, published: bool = False,
    group: Group = WHOLE_FLEET,
) -> RawTables:
    """Find one file per table in `directory` and read them, first checking them when `published`."""
    if not directory.is_dir():
        raise DataSourceError(f"{where} is not an existing directory; {fix}")
    files: dict[TableName, tuple[Path, str]] = {}
    for table in TABLE_NAMES:
        path = _find_file(directory, table, telemetry_glob, where, fix)
        if published:
            try:
                check_published(path, table, str(path))
            except DataSourceError as error:
                raise DataSourceError(f"{where}: {error}; {fix}") from error
        files[table] = (path, str(path))
    return _read_tables(files, source, group)


def _find_file(directory: Path, table: TableName, telemetry_glob: str, where: str, fix: str) -> Path:
    """The one file for `table`: its CSV, else a Parquet file with the same stem."""
    pattern = telemetry_glob if table == "telemetry" else FILE_NAMES[table]
    matches = sorted(directory.glob(pattern))
    if not matches and pattern.endswith(".csv"):
        matches = sorted(directory.glob(pattern.removesuffix(".csv") + ".parquet"))
    if len(matches) == 1:
        return matches[0]
    if table == "telemetry":
        found = ", ".join(path.name for path in matches) or "none"
        raise DataSourceError(
            f"{where} has {len(matches)} telemetry files matching {pattern!r} (found: {found}), "
            "needs exactly one; set PDM_TELEMETRY_GLOB to a pattern matching only the telemetry file"
        )
    raise DataSourceError(f"{where} has no {table} file {pattern!r}; {fix}")


def _read_tables(files: dict[TableName, tuple[Path, str]], source: str, group: Group = WHOLE_FLEET) -> RawTables:
    """Read each table's file and record its location, sha256, rows and time range."""
    frames: dict[TableName, pd.DataFrame] = {}
    records: dict[str, FileRecord] = {}
    for table, (path, location) in files.items():
        frames[table] = _read_frame(path, group)
        start, end = _time_range(frames[table])
        records[table] = FileRecord(table, location, sha256_file(path), len(frames[table]), start, end)
    return RawTables(**frames, source=source, records=records)


def _read_frame(path: Path, group: Group = WHOLE_FLEET) -> pd.DataFrame:
    """A table as pandas reads it, with whitespace stripped from the header names; with machine groups, only
    the group's rows, read a chunk at a time so that a fleet's file never has to fit in memory."""
    try:
        if group[1] > 1:
            frame = _read_group_rows(path, group)
        else:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    # ValueError covers pandas' parser errors, empty files, bad encodings and bad Parquet.
    except (ValueError, OSError) as error:
        raise DataSourceError(
            f"{path} cannot be read as a table: {error}; replace or remove the file"
        ) from error
    return _header_stripped(frame)


def _read_group_rows(path: Path, group: Group) -> pd.DataFrame:
    chunks: Iterable[pd.DataFrame]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        # Without pre-buffering and reader threads: with them Arrow reads far ahead (3.2 GB for an 87.6 M-row file).
        batches = pq.ParquetFile(path, pre_buffer=False).iter_batches(batch_size=READ_CHUNK_ROWS, use_threads=False)
        chunks = (_group_batch(batch, group).to_pandas() for batch in batches)
    else:
        chunks = pd.read_csv(path, chunksize=READ_CHUNK_ROWS)
    kept = [rows_of_group(_header_stripped(chunk), *group) for chunk in chunks]
    if kept:
        return pd.concat(kept, ignore_index=True)
    # A file without rows has no chunk: its columns still tell validation what the table is.
    return pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, nrows=0)


def _group_batch(batch: pa.RecordBatch, group: Group) -> pa.RecordBatch:
    """Integer machine ids are cut in Arrow, before pandas converts the rows (the fleet's file is read whole by
    every group); any other type is left to rows_of_group."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = [str(name).strip() for name in batch.schema.names]
    if "machineID" not in names or not pa.types.is_integer(batch.column(names.index("machineID")).type):
        return batch
    ids = batch.column(names.index("machineID"))
    index, groups = group
    remainder = pc.subtract(ids, pc.multiply(pc.divide(ids, groups), groups))
    # Arrow's division truncates: a negative id is kept here and put in its group by rows_of_group (floor).
    return batch.filter(pc.or_(pc.equal(remainder, index), pc.less(ids, 0)))


def _header_stripped(frame: pd.DataFrame) -> pd.DataFrame:
    frame.columns = [str(name).strip() for name in frame.columns]
    return frame


def _time_range(frame: pd.DataFrame) -> tuple[str | None, str | None]:
    """ISO min and max of the `datetime` column, unparseable values ignored; None without one."""
    if "datetime" not in frame.columns:
        return None, None
    stamps = pd.to_datetime(frame["datetime"], errors="coerce").dropna()
    if stamps.empty:
        return None, None
    return stamps.min().isoformat(), stamps.max().isoformat()

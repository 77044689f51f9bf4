"""The landing folder: new table files arrive, are checked, then kept in processed/ or set aside in rejected/."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pdm_assets.lib.data.download import sha256_file
from pdm_assets.lib.data.tables import NATURAL_KEYS, TABLE_NAMES, RawTables, TableName
from pdm_assets.lib.data.validation import structural_problems

PROCESSED = "processed"
PROBE_ROWS = 1000  # enough to judge a file's structure without reading all of it
REJECTED = "rejected"
# A `.N` before the extension marks a second file of the same name kept in processed/ or rejected/.
LANDED_NAME = re.compile(r"^(?P<table>[a-z]+)_(?P<stamp>\d{8}T\d{4,6})(?:\.\d+)?\.(?P<ext>csv|parquet)$")


@dataclass(frozen=True)
class LandedFile:
    """A file waiting in the landing folder, identified by name, size and modification time."""

    path: Path
    size: int
    mtime_ns: int

    @property
    def fingerprint(self) -> str:
        return f"{self.path.name}:{self.size}:{self.mtime_ns}"

    @property
    def table(self) -> str | None:
        match = LANDED_NAME.match(self.path.name)
        return match["table"] if match else None


def scan_landing(landing_dir: Path, settle_seconds: float = 0.0) -> list[LandedFile]:
    """Files directly in the landing folder, oldest name first; files still being written are left for later."""
    if not landing_dir.is_dir():
        return []
    now = time.time_ns()
    found = []
    for path in sorted(landing_dir.iterdir()):
        if not path.is_file() or path.name.startswith("."):
            continue
        stat = path.stat()
        if (now - stat.st_mtime_ns) / 1e9 >= settle_seconds:
            found.append(LandedFile(path, stat.st_size, stat.st_mtime_ns))
    return found


def read_landed(path: Path, rows: int | None = None) -> pd.DataFrame:
    """A landed CSV or Parquet file as read (the first `rows` rows of a CSV if given), header names stripped."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, nrows=rows)
    return frame.rename(columns=lambda c: str(c).strip())


def landed_problems(landed: LandedFile) -> list[str]:
    """Why a landed file cannot be appended, or nothing when it can."""
    table = landed.table
    if table is None or table not in TABLE_NAMES:
        return [
            f"file name '{landed.path.name}' does not match <table>_<YYYYMMDDTHHMM>.csv|parquet "
            f"with table one of {', '.join(TABLE_NAMES)}"
        ]
    try:
        frame = read_landed(landed.path, rows=PROBE_ROWS)
    except (ValueError, OSError, UnicodeDecodeError) as error:  # pandas' parser errors are ValueErrors
        return [f"cannot read {landed.path.name}: {error}"]
    return structural_problems(table, frame)


def reject(landed: LandedFile, problems: list[str]) -> Path:
    """Move a bad file to rejected/ with a .reason.txt beside it."""
    target = _free_name(landed.path.parent / REJECTED, landed.path.name)
    shutil.move(landed.path, target)
    target.with_name(target.name + ".reason.txt").write_text("\n".join(problems) + "\n")
    return target


def accept(path: Path) -> Path:
    """Move a good file to processed/; a byte-identical copy already there makes this one redundant."""
    folder = path.parent / PROCESSED
    existing = folder / path.name
    if existing.exists() and sha256_file(existing) == sha256_file(path):
        path.unlink()
        return existing
    target = _free_name(folder, path.name)
    shutil.move(path, target)
    return target


def processed_tables(landing_dir: Path) -> dict[TableName, pd.DataFrame]:
    """Every processed file, concatenated per table in name (time-stamp) order."""
    folder = landing_dir / PROCESSED
    tables: dict[TableName, pd.DataFrame] = {}
    if not folder.is_dir():
        return tables
    for name in TABLE_NAMES:
        files = sorted(p for p in folder.iterdir() if LandedFile(p, 0, 0).table == name)
        if files:
            tables[name] = pd.concat([read_landed(p) for p in files], ignore_index=True)
    return tables


def append_rows(base: pd.DataFrame, extra: pd.DataFrame, table: TableName) -> tuple[pd.DataFrame, int]:
    """Rows of `extra` whose natural key is not in `base` (nor earlier in `extra`) appended to `base`."""
    if extra.empty:
        return base, 0
    keys = list(NATURAL_KEYS[table])
    combined = pd.concat([base, extra[base.columns.intersection(extra.columns)]], ignore_index=True)
    normalized = _normalized_keys(combined, keys)
    unusable = normalized.isna().any(axis=1)  # rows validation will quarantine: never dropped here
    duplicate = normalized.duplicated(keep="first") & ~unusable
    duplicate[: len(base)] = False  # the base is as the source gave it
    kept = combined[~duplicate].reset_index(drop=True)
    return kept, len(kept) - len(base)


def with_landed(tables: RawTables, landing_dir: Path) -> tuple[RawTables, dict[str, int]]:
    """The source tables plus every processed landed file, and how many rows each table gained."""
    added: dict[str, int] = {}
    frames = {name: tables.table(name) for name in TABLE_NAMES}
    for name, extra in processed_tables(landing_dir).items():
        frames[name], added[name] = append_rows(frames[name], extra, name)
    merged = RawTables(**frames, source=tables.source, records=tables.records)
    return merged, added


def _normalized_keys(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    for key in keys:
        values = frame[key]
        if key == "datetime":
            out[key] = pd.to_datetime(values.astype(str), errors="coerce", format="ISO8601")
        elif key == "machineID":
            out[key] = pd.to_numeric(values, errors="coerce")
        else:
            out[key] = values.astype(str).str.strip()
    return out


def _free_name(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    counter = 1
    while target.exists():
        target = folder / f"{Path(name).stem}.{counter}{Path(name).suffix}"
        counter += 1
    return target

"""The landing folder: new table files arrive, are checked whole, then kept in processed/ or set aside in rejected/."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pandas as pd

from pdm_assets.lib.data.download import sha256_file
from pdm_assets.lib.data.tables import TABLE_NAMES, TableName
from pdm_assets.lib.data.validation import structural_problems

PROCESSED = "processed"
REJECTED = "rejected"
DONE_SUFFIX = ".done"  # `<file>.done` beside a landed file: the writer says it is complete
TEMPORARY_SUFFIXES = (".tmp", DONE_SUFFIX)  # still being written (name.csv.tmp), or a marker, not data
ENCODING = "utf-8"
# A `.N` before the extension marks a second file of the same name kept in processed/ or rejected/.
LANDED_NAME = re.compile(r"^(?P<table>[a-z]+)_(?P<stamp>\d{8}T\d{4,6})(?:\.(?P<copy>\d+))?\.(?P<ext>csv|parquet)$")


@dataclass(frozen=True)
class LandedFile:
    """A file waiting in the landing folder, identified by name, size and modification time."""

    path: Path
    size: int
    mtime_ns: int
    done_marker: bool = False  # a `<name>.done` file sits beside it

    @property
    def fingerprint(self) -> str:
        return f"{self.path.name}:{self.size}:{self.mtime_ns}"

    @property
    def table(self) -> str | None:
        return table_of(self.path)


def table_of(path: Path) -> str | None:
    match = LANDED_NAME.match(path.name)
    return match["table"] if match else None


def landing_order(path: Path, pending: bool = False) -> tuple[str, bool, int, str]:
    """Oldest first: by time stamp, then processed copies by number (`name.1.csv` came after `name.csv`), then a
    pending file not yet moved to processed/."""
    match = LANDED_NAME.match(path.name)
    if match is None:
        return ("", pending, 0, path.name)
    return (match["stamp"], pending, int(match["copy"] or 0), path.name)


def is_ignored(name: str) -> bool:
    """Dot-files and `.tmp` files are still being written (they get renamed when complete); `.done` is a marker."""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def scan_landing(landing_dir: Path) -> list[LandedFile]:
    """Data files directly in the landing folder, oldest name first, with whether a `.done` marker is beside each."""
    if not landing_dir.is_dir():
        return []
    found = []
    for path in sorted(landing_dir.iterdir()):
        if not path.is_file() or is_ignored(path.name):
            continue
        stat = path.stat()
        done = path.with_name(path.name + DONE_SUFFIX).is_file()
        found.append(LandedFile(path, stat.st_size, stat.st_mtime_ns, done))
    return found


def read_landed(path: Path) -> pd.DataFrame:
    """A whole landed CSV (UTF-8) or Parquet file as read, header names stripped."""
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, encoding=ENCODING)
    return frame.rename(columns=lambda c: str(c).strip())


def read_checked(path: Path) -> tuple[pd.DataFrame | None, list[str]]:
    """The whole file as read, or why it cannot be appended: bad name, unreadable to its last row, bad columns."""
    table = table_of(path)
    if table is None or table not in TABLE_NAMES:
        return None, [
            f"file name '{path.name}' does not match <table>_<YYYYMMDDTHHMM>.csv|parquet "
            f"with table one of {', '.join(TABLE_NAMES)}"
        ]
    try:
        frame = read_landed(path)
    except (ValueError, OSError) as error:  # pandas' parser, encoding and Parquet errors are ValueErrors
        return None, [f"cannot read {path.name}: {error}"]
    problems = structural_problems(cast(TableName, table), frame)
    return (None if problems else frame), problems


def landed_problems(landed: LandedFile) -> list[str]:
    """Why a landed file cannot be appended, or nothing when it can."""
    return read_checked(landed.path)[1]


def reject(landed: LandedFile | Path, problems: list[str]) -> Path:
    """Move a bad file to rejected/ (with its `.done` marker gone) and write a .reason.txt beside it."""
    path = landed.path if isinstance(landed, LandedFile) else landed
    rejected_dir = path.parent.parent / REJECTED if path.parent.name == PROCESSED else path.parent / REJECTED
    target = _free_name(rejected_dir, path.name)
    shutil.move(path, target)
    path.with_name(path.name + DONE_SUFFIX).unlink(missing_ok=True)
    target.with_name(target.name + ".reason.txt").write_text("\n".join(problems) + "\n")
    return target


def accept(path: Path) -> Path:
    """Move a good file to processed/; a byte-identical copy already there makes this one redundant."""
    folder = path.parent / PROCESSED
    existing = folder / path.name
    if existing.exists() and sha256_file(existing) == sha256_file(path):
        path.unlink()
        target = existing
    else:
        target = _free_name(folder, path.name)
        shutil.move(path, target)
    path.with_name(path.name + DONE_SUFFIX).unlink(missing_ok=True)
    return target


def processed_copy(path: Path) -> Path | None:
    """The copy of a landed file in processed/ under its own name: what a successful run left of it (a later file
    of the same name is kept as `name.N.ext`)."""
    copy = path.parent / PROCESSED / path.name
    return copy if copy.is_file() else None


def gone_files(paths: list[Path]) -> list[Path]:
    """Files a run was asked to append that are neither in the landing folder nor in processed/: their rows would
    be lost without a word."""
    return [path for path in paths if not path.exists() and processed_copy(path) is None]


@dataclass
class LandedFrames:
    """Every readable landed file per table, oldest first, and the files set aside because they could not be read."""

    frames: dict[TableName, list[pd.DataFrame]]
    rejected: dict[str, list[str]]

    def table(self, name: TableName) -> pd.DataFrame | None:
        frames = self.frames.get(name)
        return pd.concat(frames, ignore_index=True) if frames else None


def landed_frames(landing_dir: Path, pending: list[Path] | None = None) -> LandedFrames:
    """Files in processed/ plus `pending` ones not moved there yet, in landing order (a pending file comes after a
    processed one of the same name). A file that cannot be read is moved to rejected/ with its reason instead
    of failing this and every later run."""
    folder = landing_dir / PROCESSED
    processed = sorted(folder.iterdir()) if folder.is_dir() else []
    ordered = sorted(
        [(landing_order(p), p) for p in processed if p.is_file()] + [(landing_order(p, True), p) for p in pending or []]
    )
    out = LandedFrames({}, {})
    for _, path in ordered:
        table = table_of(path)
        if table not in TABLE_NAMES:
            continue
        frame, problems = read_checked(path)
        if frame is None:
            out.rejected[str(reject(path, problems))] = problems
            continue
        out.frames.setdefault(cast(TableName, table), []).append(frame)
    return out


def processed_tables(landing_dir: Path) -> dict[TableName, pd.DataFrame]:
    """Every processed file, concatenated per table in landing order."""
    landed = landed_frames(landing_dir)
    return {name: frame for name in TABLE_NAMES if (frame := landed.table(name)) is not None}


def _free_name(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    counter = 1
    while target.exists():
        target = folder / f"{Path(name).stem}.{counter}{Path(name).suffix}"
        counter += 1
    return target

"""The landing folder: new table files arrive, are checked whole, then kept in processed/ or set aside in rejected/.

The folder is a local path or an fsspec URI (lib/data/landing_store.py): the sensor and the run pods share it."""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import cast

import pandas as pd
from upath import UPath

from pdm_assets.lib.data.download import sha256_file
from pdm_assets.lib.data.landing_store import (
    LandingLocation,
    entries,
    exists_now,
    landing_path,
    move,
    refresh,
    remove,
)
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

    path: UPath
    size: int
    mtime_ns: int
    done_marker: bool = False  # a `<name>.done` file sits beside it

    @property
    def fingerprint(self) -> str:
        return f"{self.path.name}:{self.size}:{self.mtime_ns}"

    @property
    def table(self) -> str | None:
        return table_of(self.path)


class LandedFileGone(FileNotFoundError):
    """A file a run was asked to append is neither in the landing folder nor in processed/."""


def table_of(path: PurePath | UPath) -> str | None:
    match = LANDED_NAME.match(path.name)
    return match["table"] if match else None


def landed_name(path: PurePath | UPath) -> str:
    """The name the file landed with: `name.1.csv` in processed/ is a later `name.csv`."""
    match = LANDED_NAME.match(path.name)
    return f"{match['table']}_{match['stamp']}.{match['ext']}" if match else path.name


def landing_order(path: PurePath | UPath, pending: bool = False) -> tuple[str, bool, int, str]:
    """Oldest first: by time stamp, then processed copies by number (`name.1.csv` came after `name.csv`), then a
    pending file not yet moved to processed/."""
    match = LANDED_NAME.match(path.name)
    if match is None:
        return ("", pending, 0, path.name)
    return (match["stamp"], pending, int(match["copy"] or 0), path.name)


def is_ignored(name: str) -> bool:
    """Dot-files and `.tmp` files are still being written (they get renamed when complete); `.done` is a marker."""
    return name.startswith(".") or name.endswith(TEMPORARY_SUFFIXES)


def scan_landing(landing_dir: LandingLocation) -> list[LandedFile]:
    """Data files directly in the landing folder, oldest name first, with whether a `.done` marker is beside each."""
    listed = entries(landing_path(landing_dir))
    names = {path.name for path in listed}  # the markers from the same listing: no request per file on S3
    found = []
    for path in listed:
        if is_ignored(path.name):
            continue
        try:
            if not path.is_file():
                continue
            stat = path.stat()
        except FileNotFoundError:  # taken by a run since the listing
            continue
        found.append(LandedFile(path, stat.st_size, stat.st_mtime_ns, path.name + DONE_SUFFIX in names))
    return found


def parse_landed(name: str, data: bytes) -> pd.DataFrame:
    """A whole landed CSV (UTF-8) or Parquet file from its bytes, header names stripped."""
    source = io.BytesIO(data)
    frame = pd.read_parquet(source) if name.endswith(".parquet") else pd.read_csv(source, encoding=ENCODING)
    return frame.rename(columns=lambda c: str(c).strip())


def read_landed(path: LandingLocation) -> pd.DataFrame:
    """A whole landed file as read."""
    file = landing_path(path)
    return parse_landed(file.name, file.read_bytes())


def check_landed(name: str, data: bytes) -> tuple[pd.DataFrame | None, list[str]]:
    """The whole file as read, or why it cannot be appended: bad name, unreadable to its last row, bad columns."""
    table = table_of(PurePath(name))
    if table is None or table not in TABLE_NAMES:
        return None, [
            f"file name '{name}' does not match <table>_<YYYYMMDDTHHMM>.csv|parquet "
            f"with table one of {', '.join(TABLE_NAMES)}"
        ]
    try:
        frame = parse_landed(name, data)
    except (ValueError, OSError) as error:  # pandas' parser, encoding and Parquet errors are ValueErrors
        return None, [f"cannot read {name}: {error}"]
    problems = structural_problems(cast(TableName, table), frame)
    return (None if problems else frame), problems


def read_checked(path: LandingLocation) -> tuple[pd.DataFrame | None, list[str]]:
    """check_landed on a file's bytes; a file that is gone raises FileNotFoundError (it is not a bad file)."""
    file = landing_path(path)
    if table_of(file) not in TABLE_NAMES:
        return check_landed(file.name, b"")  # the name alone is the problem: nothing to read
    return check_landed(file.name, file.read_bytes())


def landed_problems(landed: LandedFile) -> list[str]:
    """Why a landed file cannot be appended, or nothing when it can."""
    return read_checked(landed.path)[1]


def read_pending(path: LandingLocation) -> tuple[UPath, bytes]:
    """A requested file's bytes and where they were read: the landing folder or, when another group's run moved it
    meanwhile, processed/. Resolved at open time, so no check can go stale before the read."""
    file = landing_path(path)
    for candidate in (file, file.parent / PROCESSED / file.name):
        refresh(candidate.parent)
        try:
            return candidate, candidate.read_bytes()
        except FileNotFoundError:
            continue
    raise LandedFileGone(
        f"landed file {file} is gone: neither in the landing folder nor in {PROCESSED}/. Its rows cannot be "
        "appended; land it again to have it read (the sensor requests what it finds)."
    )


def reject(landed: LandedFile | LandingLocation, problems: list[str]) -> UPath:
    """Move a bad file to rejected/ (with its `.done` marker gone) and write a .reason.txt beside it."""
    path = landing_path(landed.path if isinstance(landed, LandedFile) else landed)
    rejected_dir = path.parent.parent / REJECTED if path.parent.name == PROCESSED else path.parent / REJECTED
    target = _free_name(rejected_dir, path.name)
    if move(path, target):  # else a concurrent run set it aside already, with the same reason
        target.with_name(target.name + ".reason.txt").write_text("\n".join(problems) + "\n")
    remove(_done_marker(path))
    return target


def accept(path: LandingLocation) -> UPath:
    """Move a good file to processed/; a byte-identical copy already there makes this one redundant. A file another
    group's run moved first is left where it is; only a file gone from everywhere is an error."""
    file = landing_path(path)
    folder = file.parent / PROCESSED
    existing = folder / file.name
    digest = _digest(file)
    if digest is None:  # another group's run moved it first
        target = _already_moved(file)
    elif digest == _digest(existing):
        remove(file)
        target = existing
    else:
        target = _free_name(folder, file.name)
        if not move(file, target):
            target = _already_moved(file)
    remove(_done_marker(file))
    return target


def processed_copy(path: LandingLocation) -> UPath | None:
    """The copy of a landed file in processed/ under its own name: what a successful run left of it (a later file
    of the same name is kept as `name.N.ext`)."""
    file = landing_path(path)
    copy = file.parent / PROCESSED / file.name
    return copy if exists_now(copy) else None


def gone_files(paths: Sequence[LandingLocation]) -> list[UPath]:
    """Files a run was asked to append that are neither in the landing folder nor in processed/: their rows would
    be lost without a word."""
    files = [landing_path(path) for path in paths]
    return [file for file in files if not exists_now(file) and processed_copy(file) is None]


@dataclass
class LandedFrames:
    """Every readable landed file per table, oldest first, and the files set aside because they could not be read."""

    frames: dict[TableName, list[pd.DataFrame]]
    rejected: dict[str, list[str]]

    def table(self, name: TableName) -> pd.DataFrame | None:
        frames = self.frames.get(name)
        return pd.concat(frames, ignore_index=True) if frames else None


def landed_frames(landing_dir: LandingLocation, pending: Sequence[LandingLocation] | None = None) -> LandedFrames:
    """Files in processed/ plus `pending` ones not moved there yet, in landing order (a pending file comes after a
    processed one of the same name). A file that cannot be read is moved to rejected/ with its reason instead
    of failing this and every later run.

    Group runs share landed files: a pending file another run moved to processed/ since is read from there, and
    read once though it is then also listed there (the same landed name and bytes are the same file)."""
    processed = [(landing_order(p), p, False) for p in entries(landing_path(landing_dir) / PROCESSED)]
    waiting = [(landing_order(p, True), p, True) for p in map(landing_path, pending or [])]
    out = LandedFrames({}, {})
    seen: set[tuple[str, str]] = set()
    for _, path, is_pending in sorted(processed + waiting, key=lambda item: item[0]):
        if table_of(path) not in TABLE_NAMES:
            continue
        if is_pending:
            source, data = read_pending(path)
        else:
            try:
                source, data = path, path.read_bytes()
            except (FileNotFoundError, IsADirectoryError):  # a concurrent run has just set it aside; a subfolder
                continue
        identity = (landed_name(path), hashlib.sha256(data).hexdigest())
        if identity in seen:
            continue
        seen.add(identity)
        frame, problems = check_landed(source.name, data)
        if frame is None:
            out.rejected[str(reject(source, problems))] = problems
            continue
        out.frames.setdefault(cast(TableName, table_of(path)), []).append(frame)
    return out


def processed_tables(landing_dir: LandingLocation) -> dict[TableName, pd.DataFrame]:
    """Every processed file, concatenated per table in landing order."""
    landed = landed_frames(landing_dir)
    return {name: frame for name in TABLE_NAMES if (frame := landed.table(name)) is not None}


def _done_marker(path: UPath) -> UPath:
    return path.with_name(path.name + DONE_SUFFIX)


def _digest(path: UPath) -> str | None:
    """The sha256 of a file's bytes; None when it is gone."""
    try:
        return sha256_file(path)
    except FileNotFoundError:
        return None


def _already_moved(file: UPath) -> UPath:
    """Where a file that left the landing folder went: processed/ (another group's run) or rejected/ (this run or
    another found it unreadable). One in neither is lost."""
    copy = processed_copy(file)
    if copy is not None:
        return copy
    rejected = [p for p in entries(file.parent / REJECTED) if landed_name(p) == file.name]
    if rejected:
        return rejected[-1]
    raise LandedFileGone(f"landed file {file} is gone: not in the landing folder, {PROCESSED}/ or {REJECTED}/")


def _free_name(folder: UPath, name: str) -> UPath:
    taken = {path.name for path in entries(folder)}
    stem, suffix = PurePath(name).stem, PurePath(name).suffix
    candidate, counter = name, 1
    while candidate in taken:
        candidate = f"{stem}.{counter}{suffix}"
        counter += 1
    return folder / candidate

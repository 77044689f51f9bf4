"""The file operations of the landing folder, the same on a local disk and on an object store (`s3://bucket/landing`).

The sensor and every run pod reach the folder through the same URI. An object store lists from a cache that
fsspec keeps per process, has no rename (a move is a copy then a delete), and is shared by runs that may move the
same file at once: every operation here looks afresh, and tolerates a file another process moved first."""

from __future__ import annotations

import shutil
from contextlib import suppress
from pathlib import PurePath

from upath import UPath

from pdm_assets.lib.storage import LOCAL_PROTOCOLS, storage_root

LandingLocation = str | PurePath | UPath


def landing_path(location: LandingLocation) -> UPath:
    """A folder or file of the landing area as a UPath: an fsspec URI as given, a local path made absolute."""
    if isinstance(location, UPath) and location.protocol not in LOCAL_PROTOCOLS:
        return location
    return storage_root(str(location))


def is_local(path: UPath) -> bool:
    return path.protocol in LOCAL_PROTOCOLS


def refresh(folder: UPath) -> None:
    """Forget what this process listed before: s3fs serves listings and existence from a cache without expiry, and
    the sensor's process lives across ticks."""
    folder.fs.invalidate_cache(folder.path)


def entries(folder: UPath) -> list[UPath]:
    """What is directly in `folder` now, by name; nothing when it does not exist (an empty prefix on S3)."""
    refresh(folder)
    try:
        return sorted(folder.iterdir(), key=lambda p: p.name) if folder.is_dir() else []
    except (FileNotFoundError, NotADirectoryError):  # emptied between the check and the listing
        return []


def exists_now(path: UPath) -> bool:
    refresh(path.parent)
    return path.is_file()


def move(source: UPath, target: UPath) -> bool:
    """Move a file; False when `source` is already gone (another run moved it first), which is not an error.

    On an object store the copy is complete before the original is deleted: a failure in between leaves two copies,
    never none."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if is_local(source) and is_local(target):
            shutil.move(source.path, target.path)  # a rename within one disk: atomic
            return True
        source.fs.copy(source.path, target.path)
    except FileNotFoundError:
        return False
    with suppress(FileNotFoundError):  # a concurrent run copied and deleted it too: the copy is there
        source.fs.rm(source.path)
    return True


def remove(path: UPath) -> None:
    """Delete a file if it is still there."""
    with suppress(FileNotFoundError):
        path.unlink()

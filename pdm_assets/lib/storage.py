"""Asset values in a folder or an object store (`s3://bucket/prefix`): frames as Parquet, everything else pickled
(and a frame Arrow cannot hold, such as a raw column mixing numbers and text).

Every run reads and writes the same store, so a run in a fresh process (a Kubernetes pod with its own disk) loads
what an earlier run produced. A value lives at `<root>/<key path>` plus the suffix of its format."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

FRAME_SUFFIX = ".parquet"
OBJECT_SUFFIX = ".pkl"
LOCAL_PROTOCOLS = ("", "file", "local")
StoredFormat = Literal["parquet", "pickle"]


def storage_root(uri: str) -> UPath:
    """An fsspec URI as given; a plain folder made absolute, so processes started elsewhere reach the same one."""
    root = UPath(uri)
    if root.protocol in LOCAL_PROTOCOLS:
        return UPath(Path(root.path).expanduser().resolve())
    return root


def _with_suffix(path: UPath, suffix: str) -> UPath:
    # Appended, not replaced: a partition key such as 2015-01-01 or an asset name may hold a dot.
    return path.with_name(path.name + suffix)


def stored_files(path: UPath) -> dict[StoredFormat, UPath]:
    """Where a value at `path` (no suffix) is kept in each format."""
    return {"parquet": _with_suffix(path, FRAME_SUFFIX), "pickle": _with_suffix(path, OBJECT_SUFFIX)}


def write_value(value: object, path: UPath) -> UPath:
    """Store `value` at `path` plus its format's suffix and remove a copy in the other format (the value changed
    type), so a read never finds a stale one. Returns the file written."""
    table = _arrow_table(value)
    files = stored_files(path)
    kind: StoredFormat = "pickle" if table is None else "parquet"
    files[kind].parent.mkdir(parents=True, exist_ok=True)
    with files[kind].open("wb") as handle:
        if table is None:
            pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        else:
            pq.write_table(table, handle)
    for other, file in files.items():
        if other != kind and file.exists():
            file.unlink()
    return files[kind]


def _arrow_table(value: object) -> pa.Table | None:
    """The frame as Arrow (what DataFrame.to_parquet writes), or None for anything Parquet cannot hold."""
    if not isinstance(value, pd.DataFrame):
        return None
    try:
        return pa.Table.from_pandas(value)
    except (pa.ArrowException, TypeError, ValueError):
        return None


def read_value(path: UPath) -> object:
    """The value stored at `path` (no suffix) in whichever format it was written."""
    files = stored_files(path)
    try:  # opening is the existence check: one request less per read on an object store
        with files["parquet"].open("rb") as handle:
            return pd.read_parquet(handle)
    except FileNotFoundError:
        pass
    try:
        with files["pickle"].open("rb") as handle:
            return pickle.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"no stored value at {path} ({FRAME_SUFFIX} or {OBJECT_SUFFIX})") from None


def value_exists(path: UPath) -> bool:
    return any(file.exists() for file in stored_files(path).values())

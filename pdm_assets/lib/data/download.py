"""HTTP download of the raw CSV files into a verified cache, resuming partial downloads."""

from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import UTC, datetime
from pathlib import Path

import requests
from urllib3.exceptions import HTTPError, ProtocolError, ReadTimeoutError

from pdm_assets.lib.data.tables import FILE_NAMES, TABLE_NAMES

CHUNK_BYTES = 1 << 16
# A transfer cut midway is resumed this many times within one call before giving up.
MAX_ATTEMPTS = 3

_CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)")


class DataSourceError(RuntimeError):
    """A data source cannot deliver: the message names the offending value and what would fix it."""


class _IncompleteTransfer(Exception):
    """The server closed the response before all bytes arrived."""


def sha256_file(path: Path) -> str:
    """The sha256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def meta_path(path: Path) -> Path:
    """The sidecar `<file>.meta.json` written after a complete download."""
    return path.with_name(path.name + ".meta.json")


def part_path(path: Path) -> Path:
    """The `<file>.part` holding a download in progress."""
    return path.with_name(path.name + ".part")


def cached_file_ok(path: Path) -> bool:
    """Whether `path` is a complete download whose size and sha256 match its sidecar."""
    try:
        meta = json.loads(meta_path(path).read_text())
        return bool(path.stat().st_size == meta["size"] and sha256_file(path) == meta["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        return False


def download_cache_complete(cache_dir: Path) -> bool:
    """Whether all five dataset files are cached under `cache_dir` and verified."""
    return all(cached_file_ok(cache_dir / FILE_NAMES[table]) for table in TABLE_NAMES)


def fetch_file(url: str, dest: Path, timeout_seconds: float) -> Path:
    """Download `url` to `dest`, reusing a verified cache and resuming a partial `.part` file."""
    if cached_file_ok(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    for _ in range(MAX_ATTEMPTS):
        try:
            etag = _stream(url, part, timeout_seconds)
        except _IncompleteTransfer:
            continue
        except (requests.RequestException, HTTPError) as error:
            raise _request_error(url, timeout_seconds, error) from error
        _finish(url, part, dest, etag)
        return dest
    size = part.stat().st_size if part.exists() else 0
    raise DataSourceError(
        f"download of {url} was cut {MAX_ATTEMPTS} times, {size} bytes kept in {part}; "
        "rerun to resume, or set PDM_DATA_DIR to a folder holding the files"
    )


def _request_error(url: str, timeout_seconds: float, error: Exception) -> DataSourceError:
    """A DataSourceError for a failed request, telling timeouts apart from other failures."""
    # A stall before the headers raises requests' Timeout; a stall mid-body urllib3's ReadTimeoutError.
    if isinstance(error, requests.Timeout | ReadTimeoutError):
        return DataSourceError(
            f"download of {url} timed out after {timeout_seconds} s; "
            "raise PDM_DOWNLOAD_TIMEOUT_SECONDS or set PDM_DATA_DIR to a folder holding the files"
        )
    return DataSourceError(
        f"cannot download {url}: {error}; check the network and PDM_DOWNLOAD_BASE_URL, "
        "or set PDM_DATA_DIR to a folder holding the files"
    )


def _stream(url: str, part: Path, timeout_seconds: float) -> str | None:
    """Append the missing bytes of `url` to `part`; return the ETag once `part` is complete."""
    offset = part.stat().st_size if part.exists() else 0
    # Identity encoding keeps byte offsets in the part file equal to offsets on the server.
    headers = {"Accept-Encoding": "identity", **({"Range": f"bytes={offset}-"} if offset else {})}
    with requests.get(url, headers=headers, stream=True, timeout=timeout_seconds) as response:
        etag = response.headers.get("ETag")
        if response.status_code == 416 and offset:
            if _content_range(response) == (None, offset):
                return etag  # the part already holds every byte
            part.unlink()  # the part is longer than the file: start over
            return _stream(url, part, timeout_seconds)
        if response.status_code not in (200, 206):
            raise DataSourceError(
                f"{url} answered HTTP {response.status_code} {response.reason}; "
                "check PDM_DOWNLOAD_BASE_URL or set PDM_DATA_DIR to a folder holding the files"
            )
        start, total = (None, None)
        if response.status_code == 206:
            start, total = _content_range(response)
            if start != offset:
                raise DataSourceError(
                    f"{url} answered bytes from {start} to a request for bytes={offset}-; "
                    f"delete {part} to restart the download"
                )
        else:
            offset = 0  # the server ignored Range and sent the whole file: restart cleanly
        if total is None and "Content-Length" in response.headers:
            total = offset + int(response.headers["Content-Length"])
        with part.open("ab" if offset else "wb") as out:
            # read1 hands over every byte received, so a cut loses nothing already sent.
            try:
                for chunk in iter(lambda: response.raw.read1(CHUNK_BYTES, decode_content=False), b""):
                    out.write(chunk)
            except ProtocolError as error:
                raise _IncompleteTransfer(url) from error
    if total is not None and part.stat().st_size != total:
        raise _IncompleteTransfer(url)
    return etag


def _content_range(response: requests.Response) -> tuple[int | None, int | None]:
    """(first byte, total size) from a Content-Range header; None where absent or unknown."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None:
        return None, None
    start, total = match.groups()
    return None if start is None else int(start), None if total == "*" else int(total)


def _finish(url: str, part: Path, dest: Path, etag: str | None) -> None:
    """Move a complete `part` onto `dest` atomically, then record it in the sidecar."""
    os.replace(part, dest)
    meta = {
        "url": url,
        "size": dest.stat().st_size,
        "sha256": sha256_file(dest),
        "etag": etag,
        "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    meta_path(dest).write_text(json.dumps(meta, indent=2) + "\n")

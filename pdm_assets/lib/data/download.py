"""HTTP download of the raw CSV files into a verified cache, resuming partial downloads and logging progress."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests
from upath import UPath
from urllib3.exceptions import HTTPError, ProtocolError, ReadTimeoutError

from pdm_assets.lib.data.tables import FILE_NAMES, TABLE_NAMES

CHUNK_BYTES = 1 << 16
# A transfer cut midway is resumed this many times within one call before giving up.
MAX_ATTEMPTS = 3
# Progress is logged every tenth of the file, but no more often than every PROGRESS_MIN_BYTES,
# and every PROGRESS_UNSIZED_BYTES when the server does not say how big the file is.
PROGRESS_MIN_BYTES = 1 << 20
PROGRESS_UNSIZED_BYTES = 8 << 20

logger = logging.getLogger(__name__)

# Raises DataSourceError when the file at the path is not the expected one; returns what it checked.
Verify = Callable[[Path], str]

_CONTENT_RANGE = re.compile(r"bytes (?:(\d+)-\d+|\*)/(\d+|\*)")


class DataSourceError(RuntimeError):
    """A data source cannot deliver: the message names the offending value and what would fix it."""


class _IncompleteTransfer(Exception):
    """The server closed the response before all bytes arrived."""


def sha256_file(path: Path | UPath) -> str:
    """The sha256 hex digest of a file's bytes (on a disk or an object store)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


def meta_path(path: Path) -> Path:
    """The sidecar `<file>.meta.json` recording a download that passed its check: url, size, sha256, when."""
    return path.with_name(path.name + ".meta.json")


def part_path(path: Path) -> Path:
    """The `<file>.part` holding a download in progress."""
    return path.with_name(path.name + ".part")


def recorded_mismatch(path: Path) -> str | None:
    """How a cached `path` differs from the size and sha256 recorded beside it; None when it matches."""
    try:
        meta = json.loads(meta_path(path).read_text())
        expected = (int(meta["size"]), str(meta["sha256"]))
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"{path} has no readable record {meta_path(path).name}: {error}"
    size = path.stat().st_size if path.exists() else None
    if size != expected[0]:
        return f"cached {path} does not match its record: size expected {expected[0]} bytes, found {size}"
    found = sha256_file(path)
    if found != expected[1]:
        return f"cached {path} does not match its record: sha256 expected {expected[1]}, found {found}"
    return None


def cached_file_ok(path: Path) -> bool:
    """Whether `path` is a verified download whose size and sha256 still match its sidecar."""
    return path.exists() and recorded_mismatch(path) is None


def download_cache_complete(cache_dir: Path) -> bool:
    """Whether all five dataset files are cached under `cache_dir` and verified."""
    return all(cached_file_ok(cache_dir / FILE_NAMES[table]) for table in TABLE_NAMES)


def fetch_file(url: str, dest: Path, timeout_seconds: float, verify: Verify) -> Path:
    """Download `url` to `dest` and `verify` it, reusing a cache that matches its record and resuming a `.part`."""
    if _cache_reusable(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            etag = _stream(url, part, timeout_seconds)
        except _IncompleteTransfer:
            kept = _size(part.stat().st_size if part.exists() else 0)
            logger.warning("download of %s cut after %s (attempt %d of %d)", url, kept, attempt, MAX_ATTEMPTS)
            continue
        except (requests.RequestException, HTTPError) as error:
            raise _request_error(url, timeout_seconds, error) from error
        _finish(url, part, dest, etag, verify)
        return dest
    size = part.stat().st_size if part.exists() else 0
    raise DataSourceError(
        f"download of {url} was cut {MAX_ATTEMPTS} times, {size} bytes kept in {part}; "
        "rerun to resume, or set PDM_DATA_DIR to a folder holding the files"
    )


def _cache_reusable(dest: Path) -> bool:
    """Whether `dest` matches its record; a file that no longer does is deleted, so nothing picks it up."""
    if not (dest.exists() and meta_path(dest).exists()):
        return False
    mismatch = recorded_mismatch(dest)
    if mismatch is None:
        return True
    logger.warning("%s; deleted, downloading it again", mismatch)
    dest.unlink()
    meta_path(dest).unlink()
    return False


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
        progress = _Progress(part.name.removesuffix(".part"), total, offset)
        with part.open("ab" if offset else "wb") as out:
            # read1 hands over every byte received, so a cut loses nothing already sent.
            try:
                for chunk in iter(lambda: response.raw.read1(CHUNK_BYTES, decode_content=False), b""):
                    out.write(chunk)
                    progress.advance(len(chunk))
            except ProtocolError as error:
                raise _IncompleteTransfer(url) from error
    if total is not None and part.stat().st_size != total:
        raise _IncompleteTransfer(url)
    progress.finish()
    return etag


def _content_range(response: requests.Response) -> tuple[int | None, int | None]:
    """(first byte, total size) from a Content-Range header; None where absent or unknown."""
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", ""))
    if match is None:
        return None, None
    start, total = match.groups()
    return None if start is None else int(start), None if total == "*" else int(total)


def _finish(url: str, part: Path, dest: Path, etag: str | None, verify: Verify) -> None:
    """Verify a complete `part`, delete it if it fails, else move it onto `dest` and record its sha256."""
    try:
        verified = verify(part)
    except DataSourceError as error:
        part.unlink(missing_ok=True)
        raise DataSourceError(
            f"download of {url} rejected and deleted: {error}; check that PDM_DOWNLOAD_BASE_URL serves the "
            "Azure PdM files, or set PDM_DATA_DIR to a folder holding them"
        ) from error
    os.replace(part, dest)
    meta = {
        "url": url,
        "size": dest.stat().st_size,
        "sha256": sha256_file(dest),
        "etag": etag,
        "downloaded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "verified": verified,
    }
    meta_path(dest).write_text(json.dumps(meta, indent=2) + "\n")
    logger.info("%s verified (%s); sha256 %s recorded in %s", dest.name, verified, meta["sha256"], meta_path(dest))


class _Progress:
    """Logs a transfer's bytes as they arrive, then its size and speed."""

    def __init__(self, name: str, total: int | None, resumed_from: int) -> None:
        self.name, self.total, self.resumed_from = name, total, resumed_from
        self.done = resumed_from
        self.started = time.monotonic()
        self.step = PROGRESS_UNSIZED_BYTES if total is None else max(total // 10, PROGRESS_MIN_BYTES)
        self.next_report = resumed_from + self.step

    def advance(self, count: int) -> None:
        self.done += count
        if self.done < self.next_report or self.done == self.total:
            return  # the last bytes are reported by finish()
        self.next_report = self.done + self.step
        if self.total is None:
            logger.info("%s: %s received", self.name, _size(self.done))
        else:
            share = 100 * self.done // self.total
            received, total = _size(self.done), _size(self.total)
            logger.info("%s: %s of %s received (%d %%)", self.name, received, total, share)

    def finish(self) -> None:
        seconds = max(time.monotonic() - self.started, 1e-6)
        speed = (self.done - self.resumed_from) / seconds
        resumed = f", resumed after {_size(self.resumed_from)}" if self.resumed_from else ""
        size, rate = _size(self.done), _size(speed)
        logger.info("%s: %s downloaded in %.1f s (%s/s%s)", self.name, size, seconds, rate, resumed)


def _size(count: float) -> str:
    """A byte count for people: kB below a megabyte, MB above."""
    return f"{count / 1e6:.1f} MB" if count >= 1e6 else f"{count / 1e3:.1f} kB"

"""Download with a verified cache and resume, against a real local HTTP server; Kaggle as fallback."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import kagglehub
import pytest

from pdm_assets.lib.data.download import cached_file_ok, download_cache_complete, fetch_file, meta_path, part_path
from pdm_assets.lib.data.sources import DataSourceError, load_download
from pdm_assets.lib.data.tables import RawTables

FILES = {
    "PdM_telemetry.csv": (
        b"datetime,machineID,volt,rotate,pressure,vibration\n"
        b"2015-01-01 07:00:00,1,162.9,402.7,95.5,43.4\n"
        b"2015-01-01 06:00:00,1,176.2,418.5,113.1,45.1\n"
        b"2015-01-01 09:00:00,2,170.0,450.0,100.0,40.0\n"
    ),
    "PdM_errors.csv": b'"datetime","machineID","errorID"\n2015-01-03 07:00:00,1,"error1"\n',
    "PdM_maint.csv": b"datetime,machineID,comp\n2014-06-01 06:00:00,1,comp2\n2015-01-05 06:00:00,2,comp1\n",
    "PdM_failures.csv": b"datetime,machineID,failure\n2015-01-05 06:00:00,2,comp1\n",
    "PdM_machines.csv": b"machineID,model,age\n1,model3,18\n2,model4,7\n",
}
TELEMETRY = FILES["PdM_telemetry.csv"]
HANDLE = "someone/azure-pdm"


@dataclass
class Blob:
    """What the test server serves and how it misbehaves; `seen` logs (file, Range header) per request."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    seen: list[tuple[str, str | None]] = field(default_factory=list)
    stall: str | None = None  # "headers": never answer; "body": stop after half the body
    cut_once: set[str] = field(default_factory=set)  # send half the body, then close
    ignore_range: bool = False  # answer 200 with the whole file even to a Range request
    release: threading.Event = field(default_factory=threading.Event)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        blob: Blob = self.server.blob  # type: ignore[attr-defined]
        name = self.path.lstrip("/")
        requested = self.headers.get("Range")
        blob.seen.append((name, requested))
        if blob.stall == "headers":
            blob.release.wait(10)
            return
        body = blob.files.get(name)
        if body is None:
            self.send_error(404, "Not Found")
            return
        start = 0 if requested is None or blob.ignore_range else int(requested[6:].rstrip("-"))
        if start >= len(body) > 0 and requested is not None:
            self._head(416, 0, {"Content-Range": f"bytes */{len(body)}"})
            return
        extra = {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"} if start else {}
        self._head(206 if start else 200, len(body) - start, extra)
        chunk = body[start:]
        if name in blob.cut_once or blob.stall == "body":
            blob.cut_once.discard(name)
            self.wfile.write(chunk[: len(chunk) // 2])
            self.wfile.flush()
            if blob.stall == "body":
                blob.release.wait(10)
            return
        self.wfile.write(chunk)

    def _head(self, status: int, length: int, extra: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("ETag", '"v1"')
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def blob() -> Iterator[Blob]:
    """A ThreadingHTTPServer on a free 127.0.0.1 port serving the five tiny dataset files."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    state = Blob(files=dict(FILES))
    server.blob = state  # type: ignore[attr-defined]
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def kaggle_offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Keep kagglehub off the network; return the handles it was asked for."""
    asked: list[str] = []

    def refuse(handle: str) -> str:
        asked.append(handle)
        raise ConnectionError("kaggle.com is unreachable in tests")

    monkeypatch.setattr(kagglehub, "dataset_download", refuse)
    return asked


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def closed_port_url() -> str:
    """A URL on a port nothing listens on, so connecting is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def download(blob: Blob, cache: Path, timeout: float = 5.0) -> RawTables:
    return load_download(cache, blob.url, timeout, HANDLE, "PdM_telemetry*.csv")


def test_fetch_file_downloads_atomically_and_writes_the_sidecar(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    assert fetch_file(f"{blob.url}/PdM_telemetry.csv", dest, 5.0) == dest
    assert dest.read_bytes() == TELEMETRY
    assert not part_path(dest).exists()
    meta = json.loads(meta_path(dest).read_text())
    assert meta["url"] == f"{blob.url}/PdM_telemetry.csv"
    assert (meta["size"], meta["sha256"], meta["etag"]) == (len(TELEMETRY), sha(TELEMETRY), '"v1"')
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", meta["downloaded_at"])
    assert blob.seen == [("PdM_telemetry.csv", None)]


def test_verified_cache_is_reused_without_any_request(blob: Blob, tmp_path: Path) -> None:
    first = download(blob, tmp_path)
    blob.seen.clear()
    second = download(blob, tmp_path)
    assert blob.seen == []
    assert second.records["telemetry"].sha256 == first.records["telemetry"].sha256 == sha(TELEMETRY)


def test_corrupted_cache_is_downloaded_again(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    fetch_file(f"{blob.url}/PdM_telemetry.csv", dest, 5.0)
    dest.write_bytes(TELEMETRY.replace(b"162.9", b"999.9"))  # same size, different sha
    assert not cached_file_ok(dest)
    fetch_file(f"{blob.url}/PdM_telemetry.csv", dest, 5.0)
    assert dest.read_bytes() == TELEMETRY
    assert blob.seen == [("PdM_telemetry.csv", None), ("PdM_telemetry.csv", None)]


def test_a_response_cut_midway_is_resumed_with_a_range_request(blob: Blob, tmp_path: Path) -> None:
    blob.cut_once.add("PdM_telemetry.csv")
    dest = fetch_file(f"{blob.url}/PdM_telemetry.csv", tmp_path / "PdM_telemetry.csv", 5.0)
    half = len(TELEMETRY) // 2
    assert blob.seen == [("PdM_telemetry.csv", None), ("PdM_telemetry.csv", f"bytes={half}-")]
    assert dest.read_bytes() == TELEMETRY
    assert cached_file_ok(dest)


def test_a_partial_file_left_by_an_earlier_run_is_resumed(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    part_path(dest).write_bytes(TELEMETRY[:10])
    fetch_file(f"{blob.url}/PdM_telemetry.csv", dest, 5.0)
    assert blob.seen == [("PdM_telemetry.csv", "bytes=10-")]
    assert dest.read_bytes() == TELEMETRY


def test_a_server_ignoring_range_restarts_the_file_cleanly(blob: Blob, tmp_path: Path) -> None:
    blob.ignore_range = True
    dest = tmp_path / "PdM_telemetry.csv"
    part_path(dest).write_bytes(b"stale bytes")
    fetch_file(f"{blob.url}/PdM_telemetry.csv", dest, 5.0)
    assert blob.seen == [("PdM_telemetry.csv", "bytes=11-")]
    assert dest.read_bytes() == TELEMETRY


def test_416_on_a_complete_part_finishes_it(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    part_path(dest).write_bytes(TELEMETRY)
    fetch_file(f"{blob.url}/PdM_telemetry.csv", dest, 5.0)
    assert blob.seen == [("PdM_telemetry.csv", f"bytes={len(TELEMETRY)}-")]
    assert dest.read_bytes() == TELEMETRY
    assert cached_file_ok(dest)


def test_416_on_a_part_longer_than_the_file_starts_over(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    part_path(dest).write_bytes(TELEMETRY + b"junk")
    fetch_file(f"{blob.url}/PdM_telemetry.csv", dest, 5.0)
    assert blob.seen == [("PdM_telemetry.csv", f"bytes={len(TELEMETRY) + 4}-"), ("PdM_telemetry.csv", None)]
    assert dest.read_bytes() == TELEMETRY


@pytest.mark.parametrize("stall", ["headers", "body"])
def test_a_stalled_server_gives_a_clear_timeout(blob: Blob, tmp_path: Path, stall: str) -> None:
    blob.stall = stall
    url = f"{blob.url}/PdM_telemetry.csv"
    began = time.monotonic()
    with pytest.raises(DataSourceError) as caught:
        fetch_file(url, tmp_path / "PdM_telemetry.csv", 0.5)
    assert time.monotonic() - began < 3
    message = str(caught.value)
    assert url in message and "0.5 s" in message and "PDM_DOWNLOAD_TIMEOUT_SECONDS" in message
    assert not (tmp_path / "PdM_telemetry.csv").exists()


def test_http_error_names_the_url_and_status(blob: Blob, tmp_path: Path) -> None:
    url = f"{blob.url}/PdM_nothing.csv"
    with pytest.raises(DataSourceError, match=re.escape(f"{url} answered HTTP 404")):
        fetch_file(url, tmp_path / "PdM_nothing.csv", 5.0)


def test_connection_refused_names_the_url(tmp_path: Path) -> None:
    url = f"{closed_port_url()}/PdM_errors.csv"
    with pytest.raises(DataSourceError, match=re.escape(f"cannot download {url}")):
        fetch_file(url, tmp_path / "PdM_errors.csv", 5.0)


def test_load_download_reads_all_five_tables_with_records(blob: Blob, tmp_path: Path) -> None:
    tables = download(blob, tmp_path / "raw")
    assert tables.source == "download"
    assert len(tables.telemetry) == 3 and len(tables.machines) == 2
    assert list(tables.errors.columns) == ["datetime", "machineID", "errorID"]
    record = tables.records["telemetry"]
    assert record.location == f"{blob.url}/PdM_telemetry.csv"
    assert (record.sha256, record.rows) == (sha(TELEMETRY), 3)
    assert (record.start, record.end) == ("2015-01-01T06:00:00", "2015-01-01T09:00:00")
    assert (tables.records["machines"].start, tables.records["machines"].end) == (None, None)
    assert {name: record.rows for name, record in tables.records.items()} == {
        "telemetry": 3,
        "errors": 1,
        "maint": 2,
        "failures": 1,
        "machines": 2,
    }


def test_download_cache_complete_needs_all_five_verified_files(blob: Blob, tmp_path: Path) -> None:
    assert not download_cache_complete(tmp_path)
    download(blob, tmp_path)
    assert download_cache_complete(tmp_path)
    meta_path(tmp_path / "PdM_failures.csv").unlink()
    assert not download_cache_complete(tmp_path)


def test_kaggle_is_used_when_the_blob_download_fails(
    blob: Blob, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blob.files.clear()
    kaggle_dir = tmp_path / "kaggle"
    kaggle_dir.mkdir()
    for name, data in FILES.items():
        (kaggle_dir / name).write_bytes(data)
    asked: list[str] = []

    def fake_download(handle: str) -> str:
        asked.append(handle)
        return str(kaggle_dir)

    monkeypatch.setattr(kagglehub, "dataset_download", fake_download)
    tables = download(blob, tmp_path / "raw")
    assert asked == [HANDLE]
    assert tables.source == "download"
    assert tables.records["telemetry"].location == str(kaggle_dir / "PdM_telemetry.csv")
    assert tables.records["telemetry"].sha256 == sha(TELEMETRY)


def test_both_download_failures_are_reported_together(
    blob: Blob, tmp_path: Path, kaggle_offline: list[str]
) -> None:
    blob.files.clear()
    with pytest.raises(DataSourceError) as caught:
        download(blob, tmp_path)
    message = str(caught.value)
    assert f"{blob.url}/PdM_telemetry.csv answered HTTP 404" in message
    assert f"PDM_KAGGLE_DATASET='{HANDLE}'" in message and "kaggle.com is unreachable" in message
    assert kaggle_offline == [HANDLE]

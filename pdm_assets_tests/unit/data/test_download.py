"""Download with a verified cache, resume and progress, against a real local HTTP server; Kaggle as fallback."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import kagglehub
import numpy as np
import pytest

from pdm_assets.lib.data.download import (
    cached_file_ok,
    download_cache_complete,
    fetch_file,
    meta_path,
    part_path,
    recorded_mismatch,
)
from pdm_assets.lib.data.published import PUBLISHED_SHA256, check_published, check_sha256
from pdm_assets.lib.data.sources import DataSourceError, load_download
from pdm_assets.lib.data.tables import COLUMNS, FILE_NAMES, TABLE_NAMES, RawTables, TableName

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
SMALL_TABLES: tuple[TableName, ...] = ("errors", "failures", "maint", "machines")
# The published telemetry: 100 machines, hourly from 2015-01-01 06:00 to 2016-01-01 06:00 inclusive.
HOURS = 8_761


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


# The tiny telemetry above has no published facts: the transfer tests check it by its own sha256.
tiny_check = partial(check_sha256, expected=sha(TELEMETRY), shown_as="the tiny telemetry")


def fetch_tiny(blob: Blob, dest: Path, timeout: float = 5.0) -> Path:
    return fetch_file(f"{blob.url}/{dest.name}", dest, timeout, tiny_check)


def fetch_published(blob: Blob, cache: Path, table: TableName) -> Path:
    """Fetch one dataset file from the blob into `cache`, checked against what is pinned for `table`."""
    name = FILE_NAMES[table]
    return fetch_file(f"{blob.url}/{name}", cache / name, 5.0, partial(check_published, table=table, shown_as=name))


def nothing_cached(dest: Path) -> bool:
    return not (dest.exists() or part_path(dest).exists() or meta_path(dest).exists())


def telemetry_csv(machine_ids: Sequence[int] = range(1, 101), columns: Sequence[str] = COLUMNS["telemetry"]) -> bytes:
    """Hourly telemetry shaped like the published file (8,761 rows a machine), built with numpy."""
    stamps = np.datetime64("2015-01-01T06", "h") + np.arange(HOURS)
    rows = np.strings.add(np.strings.replace(np.datetime_as_string(stamps, unit="s"), "T", " "), ",#")
    sensors = np.random.default_rng(0).normal(100.0, 10.0, (HOURS, len(columns) - 2)).round(2).astype(str)
    for values in sensors.T:
        rows = np.strings.add(np.strings.add(rows, ","), values)
    machine_block = "\n".join(rows.tolist()) + "\n"  # "#" stands for the machine ID
    body = "".join(machine_block.replace("#", str(machine)) for machine in machine_ids)
    return (",".join(columns) + "\n" + body).encode()


@pytest.fixture(scope="module")
def published_telemetry() -> bytes:
    """Telemetry with exactly the published shape: 100 machines x 8,761 hours = 876,100 rows."""
    return telemetry_csv()


@pytest.fixture
def published_files(real_data_dir: Path, published_telemetry: bytes) -> dict[str, bytes]:
    """The four real small tables and a telemetry of the published shape, by file name."""
    files = {FILE_NAMES[table]: (real_data_dir / FILE_NAMES[table]).read_bytes() for table in SMALL_TABLES}
    return files | {FILE_NAMES["telemetry"]: published_telemetry}


def changed_byte(data: bytes) -> bytes:
    """`data` with one byte in the middle changed."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]


# --- transfer, cache and resume (the tiny telemetry, checked by its sha256)


def test_fetch_file_downloads_atomically_and_writes_the_sidecar(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    assert fetch_tiny(blob, dest) == dest
    assert dest.read_bytes() == TELEMETRY
    assert not part_path(dest).exists()
    meta = json.loads(meta_path(dest).read_text())
    assert meta["url"] == f"{blob.url}/PdM_telemetry.csv"
    assert (meta["size"], meta["sha256"], meta["etag"]) == (len(TELEMETRY), sha(TELEMETRY), '"v1"')
    assert meta["verified"] == "sha256 as pinned"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", meta["downloaded_at"])
    assert blob.seen == [("PdM_telemetry.csv", None)]


def test_a_cached_file_matching_its_record_is_reused_without_any_request(blob: Blob, tmp_path: Path) -> None:
    dest = fetch_tiny(blob, tmp_path / "PdM_telemetry.csv")
    blob.seen.clear()
    assert fetch_tiny(blob, dest) == dest
    assert blob.seen == []


def test_a_changed_cached_file_is_deleted_and_downloaded_again(
    blob: Blob, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dest = fetch_tiny(blob, tmp_path / "PdM_telemetry.csv")
    changed = TELEMETRY.replace(b"162.9", b"999.9")  # same size, different sha256
    dest.write_bytes(changed)
    assert not cached_file_ok(dest)
    with caplog.at_level(logging.WARNING, logger="pdm_assets.lib.data.download"):
        fetch_tiny(blob, dest)
    assert dest.read_bytes() == TELEMETRY
    assert blob.seen == [("PdM_telemetry.csv", None), ("PdM_telemetry.csv", None)]
    [warning] = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert warning == (
        f"cached {dest} does not match its record: sha256 expected {sha(TELEMETRY)}, found {sha(changed)}; "
        "deleted, downloading it again"
    )


def test_a_cached_file_without_its_record_is_not_trusted(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    dest.write_bytes(TELEMETRY)
    assert not cached_file_ok(dest)
    assert recorded_mismatch(dest) is not None and "has no readable record PdM_telemetry.csv.meta.json" in str(
        recorded_mismatch(dest)
    )
    fetch_tiny(blob, dest)
    assert blob.seen == [("PdM_telemetry.csv", None)] and cached_file_ok(dest)


def test_a_response_cut_midway_is_resumed_with_a_range_request(blob: Blob, tmp_path: Path) -> None:
    blob.cut_once.add("PdM_telemetry.csv")
    dest = fetch_tiny(blob, tmp_path / "PdM_telemetry.csv")
    half = len(TELEMETRY) // 2
    assert blob.seen == [("PdM_telemetry.csv", None), ("PdM_telemetry.csv", f"bytes={half}-")]
    assert dest.read_bytes() == TELEMETRY
    assert cached_file_ok(dest)


def test_a_partial_file_left_by_an_earlier_run_is_resumed(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    part_path(dest).write_bytes(TELEMETRY[:10])
    fetch_tiny(blob, dest)
    assert blob.seen == [("PdM_telemetry.csv", "bytes=10-")]
    assert dest.read_bytes() == TELEMETRY


def test_a_resumed_file_is_verified_whole_and_a_bad_one_is_deleted(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    part_path(dest).write_bytes(b"X" + TELEMETRY[1:10])  # a stale part: its first byte differs
    stitched = b"X" + TELEMETRY[1:]
    with pytest.raises(DataSourceError) as caught:
        fetch_tiny(blob, dest)
    assert str(caught.value).startswith(
        f"download of {blob.url}/PdM_telemetry.csv rejected and deleted: the tiny telemetry is not the published "
        f"file: sha256 expected {sha(TELEMETRY)}, found {sha(stitched)}; check that PDM_DOWNLOAD_BASE_URL"
    )
    assert nothing_cached(dest)
    fetch_tiny(blob, dest)  # the next run starts from scratch
    assert blob.seen == [("PdM_telemetry.csv", "bytes=10-"), ("PdM_telemetry.csv", None)]
    assert dest.read_bytes() == TELEMETRY


def test_a_server_ignoring_range_restarts_the_file_cleanly(blob: Blob, tmp_path: Path) -> None:
    blob.ignore_range = True
    dest = tmp_path / "PdM_telemetry.csv"
    part_path(dest).write_bytes(b"stale bytes")
    fetch_tiny(blob, dest)
    assert blob.seen == [("PdM_telemetry.csv", "bytes=11-")]
    assert dest.read_bytes() == TELEMETRY


def test_416_on_a_complete_part_finishes_it(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    part_path(dest).write_bytes(TELEMETRY)
    fetch_tiny(blob, dest)
    assert blob.seen == [("PdM_telemetry.csv", f"bytes={len(TELEMETRY)}-")]
    assert dest.read_bytes() == TELEMETRY
    assert cached_file_ok(dest)


def test_416_on_a_part_longer_than_the_file_starts_over(blob: Blob, tmp_path: Path) -> None:
    dest = tmp_path / "PdM_telemetry.csv"
    part_path(dest).write_bytes(TELEMETRY + b"junk")
    fetch_tiny(blob, dest)
    assert blob.seen == [("PdM_telemetry.csv", f"bytes={len(TELEMETRY) + 4}-"), ("PdM_telemetry.csv", None)]
    assert dest.read_bytes() == TELEMETRY


@pytest.mark.parametrize("stall", ["headers", "body"])
def test_a_stalled_server_gives_a_clear_timeout(blob: Blob, tmp_path: Path, stall: str) -> None:
    blob.stall = stall
    url = f"{blob.url}/PdM_telemetry.csv"
    began = time.monotonic()
    with pytest.raises(DataSourceError) as caught:
        fetch_tiny(blob, tmp_path / "PdM_telemetry.csv", 0.5)
    assert time.monotonic() - began < 3
    message = str(caught.value)
    assert url in message and "0.5 s" in message and "PDM_DOWNLOAD_TIMEOUT_SECONDS" in message
    assert not (tmp_path / "PdM_telemetry.csv").exists()


def test_http_error_names_the_url_and_status(blob: Blob, tmp_path: Path) -> None:
    url = f"{blob.url}/PdM_nothing.csv"
    with pytest.raises(DataSourceError, match=re.escape(f"{url} answered HTTP 404")):
        fetch_tiny(blob, tmp_path / "PdM_nothing.csv")


def test_connection_refused_names_the_url(tmp_path: Path) -> None:
    url = f"{closed_port_url()}/PdM_errors.csv"
    with pytest.raises(DataSourceError, match=re.escape(f"cannot download {url}")):
        fetch_file(url, tmp_path / "PdM_errors.csv", 5.0, tiny_check)


# --- progress


def test_progress_is_logged_as_bytes_arrive_then_size_and_speed(
    blob: Blob, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = np.random.default_rng(0).bytes(4_000_000)
    blob.files["big.bin"] = data
    check = partial(check_sha256, expected=sha(data), shown_as="big")
    with caplog.at_level(logging.INFO, logger="pdm_assets"):
        fetch_file(f"{blob.url}/big.bin", tmp_path / "big.bin", 5.0, check)
    messages = [record.getMessage() for record in caplog.records if record.name == "pdm_assets.lib.data.download"]
    progress = [message for message in messages if message.startswith("big.bin: ") and "of 4.0 MB received" in message]
    # Every tenth of the file, but at most once per MiB: three reports before the last bytes of 4 MB.
    assert len(progress) == 3
    received = [float(message.split()[1]) for message in progress]
    assert received == sorted(received) and received[0] >= 1.0 and received[-1] < 4.0
    assert re.fullmatch(r"big\.bin: 4\.0 MB downloaded in \d+\.\d s \(\d+\.\d [kM]B/s\)", messages[3])
    record = meta_path(tmp_path / "big.bin")
    assert messages[4] == f"big.bin verified (sha256 as pinned); sha256 {sha(data)} recorded in {record}"


def test_a_resumed_download_reports_where_it_resumed(
    blob: Blob, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = np.random.default_rng(1).bytes(3_000_000)
    blob.files["big.bin"] = data
    dest = tmp_path / "big.bin"
    part_path(dest).write_bytes(data[:1_000_000])
    with caplog.at_level(logging.INFO, logger="pdm_assets.lib.data.download"):
        fetch_file(f"{blob.url}/big.bin", dest, 5.0, partial(check_sha256, expected=sha(data), shown_as="big"))
    [final] = [record.getMessage() for record in caplog.records if "downloaded in" in record.getMessage()]
    assert final.startswith("big.bin: 3.0 MB downloaded in ") and final.endswith(", resumed after 1.0 MB)")


# --- the published facts


@pytest.mark.real_data
def test_the_real_small_tables_pass_their_pinned_sha256(
    blob: Blob, tmp_path: Path, published_files: dict[str, bytes]
) -> None:
    blob.files = published_files
    for table in SMALL_TABLES:
        dest = fetch_published(blob, tmp_path, table)
        meta = json.loads(meta_path(dest).read_text())
        assert meta["sha256"] == sha(published_files[dest.name]) == PUBLISHED_SHA256[table]
        assert meta["verified"] == "sha256 as pinned"


@pytest.mark.real_data
@pytest.mark.parametrize("table", SMALL_TABLES)
def test_one_changed_byte_in_a_small_table_is_refused_and_not_cached(
    blob: Blob, tmp_path: Path, published_files: dict[str, bytes], table: TableName
) -> None:
    name = FILE_NAMES[table]
    blob.files = published_files | {name: changed_byte(published_files[name])}
    with pytest.raises(DataSourceError) as caught:
        fetch_published(blob, tmp_path, table)
    assert str(caught.value).startswith(
        f"download of {blob.url}/{name} rejected and deleted: {name} is not the published file: "
        f"sha256 expected {sha(published_files[name])}, found {sha(blob.files[name])}; "
    )
    assert nothing_cached(tmp_path / name)


def test_telemetry_of_the_published_shape_passes_and_its_sha256_is_recorded(
    blob: Blob, tmp_path: Path, published_telemetry: bytes
) -> None:
    blob.files["PdM_telemetry.csv"] = published_telemetry
    dest = fetch_published(blob, tmp_path, "telemetry")
    meta = json.loads(meta_path(dest).read_text())
    assert meta["sha256"] == sha(published_telemetry)
    assert meta["verified"] == "876,100 rows, 100 machines, 2015-01-01 06:00:00 to 2016-01-01 06:00:00"
    assert cached_file_ok(dest)


def test_a_changed_cached_telemetry_fails_its_recorded_sha256(
    blob: Blob, tmp_path: Path, published_telemetry: bytes
) -> None:
    blob.files["PdM_telemetry.csv"] = published_telemetry
    dest = fetch_published(blob, tmp_path, "telemetry")
    changed = changed_byte(published_telemetry)
    dest.write_bytes(changed)
    assert recorded_mismatch(dest) == (
        f"cached {dest} does not match its record: "
        f"sha256 expected {sha(published_telemetry)}, found {sha(changed)}"
    )
    assert not cached_file_ok(dest)
    blob.seen.clear()
    fetch_published(blob, tmp_path, "telemetry")
    assert blob.seen == [("PdM_telemetry.csv", None)]
    assert dest.read_bytes() == published_telemetry


def drop_last_row(data: bytes) -> bytes:
    return data[: data.rstrip(b"\n").rindex(b"\n") + 1]


BAD_TELEMETRY = {
    "rows": (drop_last_row, "rows expected 876,100, found 876,099"),
    "columns": (
        lambda good: telemetry_csv(columns=COLUMNS["telemetry"][:-1]),
        "columns expected ['datetime', 'machineID', 'volt', 'rotate', 'pressure', 'vibration'], "
        "found ['datetime', 'machineID', 'volt', 'rotate', 'pressure']",
    ),
    "time range": (
        lambda good: good.replace(b"2015-01-01 06:00:00,1,", b"2014-12-31 06:00:00,1,", 1),
        "time range expected 2015-01-01 06:00:00 to 2016-01-01 06:00:00, "
        "found 2014-12-31 06:00:00 to 2016-01-01 06:00:00",
    ),
    "machines": (lambda good: telemetry_csv(machine_ids=[*range(1, 100), 99]), "machines expected 100, found 99"),
}


@pytest.mark.parametrize("fact", BAD_TELEMETRY)
def test_telemetry_not_of_the_published_shape_is_refused_naming_the_fact(
    blob: Blob, tmp_path: Path, published_telemetry: bytes, fact: str
) -> None:
    make, expected = BAD_TELEMETRY[fact]
    blob.files["PdM_telemetry.csv"] = make(published_telemetry)
    with pytest.raises(DataSourceError) as caught:
        fetch_published(blob, tmp_path, "telemetry")
    assert str(caught.value).startswith(
        f"download of {blob.url}/PdM_telemetry.csv rejected and deleted: "
        f"PdM_telemetry.csv is not the published telemetry: {expected}; "
    )
    assert nothing_cached(tmp_path / "PdM_telemetry.csv")


def test_telemetry_with_a_value_that_does_not_parse_is_refused(blob: Blob, tmp_path: Path) -> None:
    blob.files["PdM_telemetry.csv"] = TELEMETRY.replace(b"2015-01-01 09:00:00", b"not a date")
    with pytest.raises(DataSourceError, match="PdM_telemetry.csv cannot be read as the telemetry table: .*not a date"):
        fetch_published(blob, tmp_path, "telemetry")
    assert nothing_cached(tmp_path / "PdM_telemetry.csv")


# --- load_download: the blob, then Kaggle


@pytest.mark.real_data
def test_load_download_reads_all_five_published_tables_with_records(
    blob: Blob, tmp_path: Path, published_files: dict[str, bytes]
) -> None:
    blob.files = published_files
    tables = download(blob, tmp_path / "raw")
    assert tables.source == "download"
    for table in TABLE_NAMES:
        record = tables.records[table]
        data = published_files[FILE_NAMES[table]]
        assert record.location == f"{blob.url}/{FILE_NAMES[table]}"
        assert (record.sha256, record.rows) == (sha(data), data.count(b"\n") - 1)
        assert list(tables.table(table).columns) == list(COLUMNS[table])
    telemetry = tables.records["telemetry"]
    assert (telemetry.start, telemetry.end) == ("2015-01-01T06:00:00", "2016-01-01T06:00:00")
    assert (tables.records["machines"].start, tables.records["machines"].end) == (None, None)


@pytest.mark.real_data
def test_the_verified_cache_is_reused_without_any_request(
    blob: Blob, tmp_path: Path, published_files: dict[str, bytes]
) -> None:
    blob.files = published_files
    first = download(blob, tmp_path)
    blob.seen.clear()
    second = download(blob, tmp_path)
    assert blob.seen == []
    assert second.records == first.records


@pytest.mark.real_data
def test_download_cache_complete_needs_all_five_verified_files(
    blob: Blob, tmp_path: Path, published_files: dict[str, bytes]
) -> None:
    blob.files = published_files
    assert not download_cache_complete(tmp_path)
    download(blob, tmp_path)
    assert download_cache_complete(tmp_path)
    meta_path(tmp_path / "PdM_failures.csv").unlink()
    assert not download_cache_complete(tmp_path)


def kaggle_copy(folder: Path, files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Put `files` in `folder` and make kagglehub answer with it; return the handles asked for."""
    folder.mkdir()
    for name, data in files.items():
        (folder / name).write_bytes(data)
    asked: list[str] = []

    def fake_download(handle: str) -> str:
        asked.append(handle)
        return str(folder)

    monkeypatch.setattr(kagglehub, "dataset_download", fake_download)
    return asked


@pytest.mark.real_data
def test_kaggle_is_used_when_the_blob_download_fails(
    blob: Blob, tmp_path: Path, published_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    blob.files.clear()
    asked = kaggle_copy(tmp_path / "kaggle", published_files, monkeypatch)
    tables = download(blob, tmp_path / "raw")
    assert asked == [HANDLE]
    assert tables.source == "download"
    assert tables.records["telemetry"].location == str(tmp_path / "kaggle/PdM_telemetry.csv")
    assert tables.records["maint"].sha256 == PUBLISHED_SHA256["maint"]


@pytest.mark.real_data
def test_a_kaggle_copy_that_is_not_the_published_one_is_refused(
    blob: Blob, tmp_path: Path, published_files: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    blob.files = published_files | {"PdM_maint.csv": changed_byte(published_files["PdM_maint.csv"])}
    kaggle = tmp_path / "kaggle"
    machines = b"machineID,model,age\n1,model3,18\n"
    kaggle_copy(kaggle, published_files | {"PdM_machines.csv": machines}, monkeypatch)
    with pytest.raises(DataSourceError) as caught:
        download(blob, tmp_path / "raw")
    message = str(caught.value)
    blob_part, kaggle_part = message.split(". (2) Kaggle: ")
    assert f"download of {blob.url}/PdM_maint.csv rejected and deleted: PdM_maint.csv is not the published" in blob_part
    assert kaggle_part.startswith(
        f"Kaggle dataset '{HANDLE}' at {kaggle}: {kaggle / 'PdM_machines.csv'} is not the published file: "
        f"sha256 expected {sha(published_files['PdM_machines.csv'])}, found {sha(machines)}; "
        f"delete {kaggle} to fetch it again"
    )
    assert nothing_cached(tmp_path / "raw/PdM_maint.csv")


def test_both_download_failures_are_reported_together(blob: Blob, tmp_path: Path, kaggle_offline: list[str]) -> None:
    blob.files.clear()
    with pytest.raises(DataSourceError) as caught:
        download(blob, tmp_path)
    message = str(caught.value)
    assert f"{blob.url}/PdM_telemetry.csv answered HTTP 404" in message
    assert f"PDM_KAGGLE_DATASET='{HANDLE}'" in message and "kaggle.com is unreachable" in message
    assert kaggle_offline == [HANDLE]

"""Local folder, synthetic fleet and the `load_raw` choice between sources, on tiny inline CSVs."""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import socket
import sys
import types
from datetime import datetime
from pathlib import Path
from typing import Any

import kagglehub
import pandas as pd
import pytest

from pdm_assets.lib.data.sources import DataSourceError, load_local, load_raw, load_synthetic
from pdm_assets.lib.data.tables import COLUMNS, FILE_NAMES, TABLE_NAMES, RawTables, TableName
from pdm_assets.settings import Settings
from pdm_assets_tests.support.capabilities import require
from pdm_assets_tests.support.paths import REAL_DATA_DIR

ROWS: dict[TableName, list[tuple[Any, ...]]] = {
    "telemetry": [
        ("2015-01-01 07:00:00", 1, 162.9, 402.7, 95.5, 43.4),
        ("2015-01-01 06:00:00", 1, 176.2, 418.5, 113.1, 45.1),
        ("2015-01-01 06:00:00", 2, 170.0, 450.0, 100.0, 40.0),
        ("2015-01-01 08:00:00", 2, 171.0, 451.0, 101.0, 41.0),
    ],
    "errors": [
        ("2015-01-03 07:00:00", 1, "error1"),
        ("2015-01-02 20:00:00", 2, "error3"),
        ("2015-01-04 06:00:00", 1, "error5"),
    ],
    "maint": [
        ("2014-06-01 06:00:00", 1, "comp2"),
        ("2015-01-05 06:00:00", 2, "comp1"),
        ("2014-12-31 06:00:00", 1, "comp4"),
    ],
    "failures": [("2015-01-05 06:00:00", 2, "comp1"), ("2015-01-04 06:00:00", 1, "comp4")],
    "machines": [(1, "model3", 18), (2, "model4", 7)],
}
# (start, end) of each table's datetime column above: min and max, not first and last.
RANGES = {
    "telemetry": ("2015-01-01T06:00:00", "2015-01-01T08:00:00"),
    "errors": ("2015-01-02T20:00:00", "2015-01-04T06:00:00"),
    "maint": ("2014-06-01T06:00:00", "2015-01-05T06:00:00"),
    "failures": ("2015-01-04T06:00:00", "2015-01-05T06:00:00"),
    "machines": (None, None),
}


def write_dataset(folder: Path, *, quoted: bool = False, telemetry_name: str = "PdM_telemetry.csv") -> Path:
    """Write the five tiny tables as CSV, quoting headers and strings like the published files when asked."""
    folder.mkdir(parents=True, exist_ok=True)
    for table in TABLE_NAMES:
        name = telemetry_name if table == "telemetry" else FILE_NAMES[table]
        with (folder / name).open("w", newline="") as out:
            writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC if quoted else csv.QUOTE_MINIMAL)
            writer.writerow(COLUMNS[table])
            writer.writerows(ROWS[table])
    return folder


def frame(table: TableName) -> pd.DataFrame:
    """The tiny rows of `table` as a DataFrame."""
    return pd.DataFrame(ROWS[table], columns=list(COLUMNS[table]))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fleet_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Stand in for pdm_assets.lib.synthetic.simulate; return the keyword arguments generate_fleet was called with."""
    calls: list[dict[str, Any]] = []

    def generate_fleet(**kwargs: Any) -> RawTables:
        calls.append(kwargs)
        return RawTables(
            telemetry=frame("telemetry"),
            errors=frame("errors"),
            maint=frame("maint"),
            failures=frame("failures"),
            machines=frame("machines"),
            source="synthetic",
        )

    fake = types.ModuleType("pdm_assets.lib.synthetic.simulate")
    fake.generate_fleet = generate_fleet  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pdm_assets.lib.synthetic.simulate", fake)
    return calls


@pytest.fixture(autouse=True)
def kaggle_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep kagglehub off the network."""

    def refuse(handle: str) -> str:
        raise ConnectionError(f"kaggle.com is unreachable in tests ({handle})")

    monkeypatch.setattr(kagglehub, "dataset_download", refuse)


def refused_url() -> str:
    """A URL on a port nothing listens on, so every download is refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for tests: no data dir, an empty cache, a refused download URL, a small synthetic fleet."""
    values: dict[str, Any] = {
        "data_source": "auto",
        "data_dir": None,
        "telemetry_glob": "PdM_telemetry*.csv",
        "raw_cache_dir": tmp_path / "cache",
        "download_base_url": refused_url(),
        "download_timeout_seconds": 2.0,
        "synthetic_machines": 3,
        "synthetic_days": 5,
        "synthetic_seed": 7,
        "synthetic_start": datetime(2015, 1, 1, 6),
    }
    return Settings(**(values | overrides))


# --- load_local


def test_load_local_reads_every_table_with_its_record(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path / "pdm")
    tables = load_local(folder)
    assert tables.source == "local"
    for table in TABLE_NAMES:
        frame = tables.table(table)
        assert list(frame.columns) == list(COLUMNS[table])
        assert len(frame) == len(ROWS[table])
        record = tables.records[table]
        path = folder / FILE_NAMES[table]
        assert (record.table, record.location, record.sha256) == (table, str(path), sha(path))
        assert record.rows == len(ROWS[table])
        assert (record.start, record.end) == RANGES[table]
    assert tables.telemetry["volt"].tolist() == [162.9, 176.2, 170.0, 171.0]
    assert tables.machines["age"].tolist() == [18, 7]


def test_quoted_and_unquoted_headers_read_the_same(tmp_path: Path) -> None:
    plain = load_local(write_dataset(tmp_path / "plain"))
    quoted = load_local(write_dataset(tmp_path / "quoted", quoted=True))
    assert (tmp_path / "quoted/PdM_errors.csv").read_text().startswith('"datetime","machineID","errorID"\n')
    assert (tmp_path / "plain/PdM_errors.csv").read_text().startswith("datetime,machineID,errorID\n")
    for table in TABLE_NAMES:
        pd.testing.assert_frame_equal(plain.table(table), quoted.table(table))
    assert plain.records["errors"].sha256 != quoted.records["errors"].sha256


def test_whitespace_around_header_names_is_stripped(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path)
    (folder / "PdM_machines.csv").write_text(" machineID , model\t,age \n1,model3,18\n")
    machines = load_local(folder).machines
    assert list(machines.columns) == ["machineID", "model", "age"]
    assert machines.iloc[0].tolist() == [1, "model3", 18]


def test_values_are_kept_as_read_and_bad_datetimes_do_not_count_in_the_range(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path)
    (folder / "PdM_failures.csv").write_text(
        "datetime,machineID,failure\n"
        "2015-01-05 06:00:00,2,comp1\nnot a date,x,comp9\n2015-01-04 06:00:00,1,comp4\n"
    )
    tables = load_local(folder)
    assert tables.failures["datetime"].tolist() == [
        "2015-01-05 06:00:00",
        "not a date",
        "2015-01-04 06:00:00",
    ]
    assert tables.failures["machineID"].tolist() == ["2", "x", "1"]
    record = tables.records["failures"]
    assert (record.rows, record.start, record.end) == (3, "2015-01-04T06:00:00", "2015-01-05T06:00:00")


def test_telemetry_named_differently_is_found_by_the_glob(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, telemetry_name="PdM_telemetry_machines1-20_2015Q1.csv")
    tables = load_local(folder)
    assert tables.records["telemetry"].location == str(folder / "PdM_telemetry_machines1-20_2015Q1.csv")
    assert len(tables.telemetry) == 4
    custom = write_dataset(tmp_path / "custom", telemetry_name="sensors.csv")
    assert len(load_local(custom, telemetry_glob="sensors.csv").telemetry) == 4


def test_no_telemetry_match_names_the_glob_and_the_setting(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path, telemetry_name="sensors.csv")
    expected = f"PDM_DATA_DIR={folder} has 0 telemetry files matching 'PdM_telemetry*.csv' (found: none)"
    with pytest.raises(DataSourceError, match=re.escape(expected)) as caught:
        load_local(folder)
    assert "set PDM_TELEMETRY_GLOB" in str(caught.value)


def test_several_telemetry_matches_are_listed(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path)
    write_dataset(folder, telemetry_name="PdM_telemetry_2016.csv")
    expected = (
        "has 2 telemetry files matching 'PdM_telemetry*.csv' "
        "(found: PdM_telemetry.csv, PdM_telemetry_2016.csv)"
    )
    with pytest.raises(DataSourceError, match=re.escape(expected)) as caught:
        load_local(folder)
    assert f"PDM_DATA_DIR={folder}" in str(caught.value) and "PDM_TELEMETRY_GLOB" in str(caught.value)


def test_a_missing_table_file_is_named(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path)
    (folder / "PdM_errors.csv").unlink()
    expected = f"PDM_DATA_DIR={folder} has no errors file 'PdM_errors.csv'"
    with pytest.raises(DataSourceError, match=re.escape(expected)):
        load_local(folder)


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    expected = f"PDM_DATA_DIR={tmp_path / 'nope'} is not an existing directory"
    with pytest.raises(DataSourceError, match=re.escape(expected)):
        load_local(tmp_path / "nope")


def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path)
    (folder / "PdM_machines.csv").write_text("")
    with pytest.raises(DataSourceError, match=re.escape(f"{folder / 'PdM_machines.csv'} cannot be read")):
        load_local(folder)


def test_parquet_with_the_same_stem_stands_in_for_csv(tmp_path: Path) -> None:
    folder = write_dataset(tmp_path)
    parquet_tables: tuple[TableName, ...] = ("machines", "telemetry")
    for table in parquet_tables:
        (folder / f"PdM_{table}.csv").unlink()
        frame(table).to_parquet(folder / f"PdM_{table}.parquet")
    tables = load_local(folder)
    assert tables.records["machines"].location == str(folder / "PdM_machines.parquet")
    assert tables.records["telemetry"].sha256 == sha(folder / "PdM_telemetry.parquet")
    assert tables.machines["model"].tolist() == ["model3", "model4"]
    assert (tables.records["telemetry"].rows, tables.records["telemetry"].end) == (4, "2015-01-01T08:00:00")


# --- load_synthetic


def test_load_synthetic_passes_its_arguments_to_generate_fleet(fleet_calls: list[dict[str, Any]]) -> None:
    tables = load_synthetic(machines=3, days=5, seed=7, start=datetime(2015, 1, 1, 6))
    assert tables.source == "synthetic"
    assert fleet_calls == [{"machines": 3, "days": 5, "seed": 7, "start": datetime(2015, 1, 1, 6)}]


# --- load_raw


@pytest.mark.parametrize("requested", ["auto", "local"])
def test_load_raw_reads_the_data_dir_when_set(tmp_path: Path, requested: str) -> None:
    folder = write_dataset(tmp_path / "pdm")
    result = load_raw(settings(tmp_path, data_source=requested, data_dir=folder))
    assert (result.tables.source, result.requested, result.warnings) == ("local", requested, [])
    assert len(result.tables.errors) == 3


def test_load_raw_local_without_data_dir_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(DataSourceError, match="PDM_DATA_SOURCE=local needs PDM_DATA_DIR"):
        load_raw(settings(tmp_path, data_source="local"))


def write_cache(folder: Path) -> Path:
    """The tiny tables as a download cache: each file beside the record of its size and sha256."""
    cache = write_dataset(folder)
    for name in FILE_NAMES.values():
        meta = {"size": (cache / name).stat().st_size, "sha256": sha(cache / name)}
        (cache / f"{name}.meta.json").write_text(json.dumps(meta))
    return cache


def test_load_raw_auto_uses_a_complete_cache(tmp_path: Path) -> None:
    cache = write_cache(tmp_path / "cache")
    result = load_raw(settings(tmp_path))  # the download URL is refused: only the cache can serve
    assert (result.tables.source, result.warnings) == ("download", [])
    assert result.tables.records["maint"].sha256 == sha(cache / "PdM_maint.csv")


def test_a_cached_file_changed_since_its_download_is_deleted_never_read(
    tmp_path: Path, fleet_calls: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    cache = write_cache(tmp_path / "cache")
    maint = cache / "PdM_maint.csv"
    recorded = sha(maint)
    maint.write_bytes(maint.read_bytes().replace(b"comp2", b"comp9"))  # same size, different bytes
    with caplog.at_level(logging.WARNING, logger="pdm_assets.lib.data"):
        result = load_raw(settings(tmp_path))  # the download URL is refused: the cache is all there is
    assert result.tables.source == "synthetic" and len(fleet_calls) == 1
    assert f"cached {maint} does not match its record: sha256 expected {recorded}, found " in caplog.text
    assert not maint.exists() and not (cache / "PdM_maint.csv.meta.json").exists()
    assert (cache / "PdM_errors.csv").exists()  # files that still match their record stay


def test_load_raw_auto_falls_back_to_synthetic_loudly(
    tmp_path: Path, fleet_calls: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="pdm_assets.lib.data.sources"):
        result = load_raw(settings(tmp_path))
    assert (result.tables.source, result.requested) == ("synthetic", "auto")
    assert fleet_calls == [{"machines": 3, "days": 5, "seed": 7, "start": datetime(2015, 1, 1, 6)}]
    [warning] = result.warnings
    assert warning.startswith("FALLING BACK TO SYNTHETIC DATA: download failed: ")
    assert warning.endswith("set PDM_DATA_DIR or PDM_DATA_SOURCE to pin a source")
    assert "kaggle.com is unreachable" in warning
    assert any(rec.levelno == logging.WARNING and rec.getMessage() == warning for rec in caplog.records)


def test_load_raw_pinned_download_never_falls_back(tmp_path: Path, fleet_calls: list[dict[str, Any]]) -> None:
    with pytest.raises(DataSourceError, match="both download sources failed"):
        load_raw(settings(tmp_path, data_source="download"))
    assert fleet_calls == []


def test_load_raw_pinned_synthetic(tmp_path: Path, fleet_calls: list[dict[str, Any]]) -> None:
    result = load_raw(settings(tmp_path, data_source="synthetic", synthetic_machines=4))
    assert (result.tables.source, result.requested, result.warnings) == ("synthetic", "synthetic", [])
    assert fleet_calls[0]["machines"] == 4


# --- the real dataset


@pytest.mark.real_data
def test_real_dataset_loads_with_its_known_sizes() -> None:
    require("real_data", REAL_DATA_DIR.is_dir(), f"real dataset folder {REAL_DATA_DIR} absent")
    tables = load_local(REAL_DATA_DIR)
    rows = {name: record.rows for name, record in tables.records.items()}
    assert rows == {"telemetry": 43_200, "errors": 3_919, "maint": 3_286, "failures": 761, "machines": 100}
    telemetry = tables.records["telemetry"]
    assert (telemetry.start, telemetry.end) == ("2015-01-01T06:00:00", "2015-04-01T05:00:00")
    assert telemetry.location.endswith("PdM_telemetry_machines1-20_2015Q1.csv")
    assert list(tables.errors.columns) == list(COLUMNS["errors"])

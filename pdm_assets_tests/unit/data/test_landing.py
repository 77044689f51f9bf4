"""The landing folder: naming, structural checks, moves, and appending without duplicates."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pdm_assets.lib.data.landed_rows import append_rows
from pdm_assets.lib.data.landing import (
    PROCESSED,
    REJECTED,
    accept,
    landed_problems,
    processed_tables,
    reject,
    scan_landing,
)

ERRORS = "datetime,machineID,errorID\n2015-10-01 06:00:00,1,error1\n2015-10-01 07:00:00,2,error3\n"


def land(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def test_scan_sees_files_but_not_subfolders(tmp_path: Path) -> None:
    land(tmp_path, "errors_20151001T0600.csv", ERRORS)
    land(tmp_path / PROCESSED, "errors_20150901T0600.csv", ERRORS)
    assert [f.path.name for f in scan_landing(tmp_path)] == ["errors_20151001T0600.csv"]
    assert scan_landing(tmp_path / "absent") == []


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    path = land(tmp_path, "errors_20151001T0600.csv", ERRORS)
    first = scan_landing(tmp_path)[0].fingerprint
    path.write_text(ERRORS + "2015-10-01 08:00:00,3,error2\n")
    assert scan_landing(tmp_path)[0].fingerprint != first


def test_problems_name_the_fault(tmp_path: Path) -> None:
    land(tmp_path, "readme.csv", ERRORS)
    land(tmp_path, "errors_20151001T0600.csv", "datetime,machineID\n2015-10-01 06:00:00,1\n")
    land(tmp_path, "telemetry_20151001T0600.csv", "")
    land(tmp_path, "errors_20151002T0600.csv", ERRORS)
    problems = {f.path.name: landed_problems(f) for f in scan_landing(tmp_path)}
    assert "does not match <table>_<YYYYMMDDTHHMM>" in problems["readme.csv"][0]
    assert problems["errors_20151001T0600.csv"] == ["missing column 'errorID'"]
    assert "cannot read" in problems["telemetry_20151001T0600.csv"][0]
    assert problems["errors_20151002T0600.csv"] == []


def test_reject_keeps_the_file_and_its_reason(tmp_path: Path) -> None:
    path = land(tmp_path, "errors_20151001T0600.csv", "x\n1\n")
    target = reject(scan_landing(tmp_path)[0], ["missing column 'errorID'"])
    assert not path.exists() and target == tmp_path / REJECTED / path.name
    assert target.read_text() == "x\n1\n"
    assert (tmp_path / REJECTED / f"{path.name}.reason.txt").read_text() == "missing column 'errorID'\n"


def test_accepting_the_same_file_twice_keeps_one_copy(tmp_path: Path) -> None:
    accept(land(tmp_path, "errors_20151001T0600.csv", ERRORS))
    accept(land(tmp_path, "errors_20151001T0600.csv", ERRORS))
    assert sorted(p.name for p in (tmp_path / PROCESSED).iterdir()) == ["errors_20151001T0600.csv"]
    accept(land(tmp_path, "errors_20151001T0600.csv", ERRORS + "2015-10-01 09:00:00,4,error5\n"))
    names = sorted(p.name for p in (tmp_path / PROCESSED).iterdir())
    assert names == ["errors_20151001T0600.1.csv", "errors_20151001T0600.csv"]
    assert len(processed_tables(tmp_path)["errors"]) == 5  # both versions are read; dedup happens on append


def test_append_skips_rows_whose_key_is_already_there() -> None:
    base = pd.DataFrame({"datetime": ["2015-10-01 06:00:00"], "machineID": [1], "errorID": ["error1"]})
    extra = pd.DataFrame(
        {
            "datetime": ["2015-10-01T06:00:00", "2015-10-01 07:00:00", "2015-10-01 07:00:00", "garbage"],
            "machineID": [1, 2, 2, 3],
            "errorID": ["error1", "error3", "error3", "error2"],
        }
    )
    merged, counts = append_rows(base, extra, "errors")
    assert counts.appended == 2  # the new key once, and the unparseable row kept for validation to quarantine
    assert merged["datetime"].tolist() == ["2015-10-01 06:00:00", "2015-10-01 07:00:00", "garbage"]

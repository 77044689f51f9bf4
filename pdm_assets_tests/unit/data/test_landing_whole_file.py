"""Landed files are judged whole (issue 14, item 1): a fault past the first rows rejects the file, and a file in
processed/ that cannot be read is set aside instead of failing every later run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pdm_assets.lib.data.landing import (
    PROCESSED,
    REJECTED,
    LandedFile,
    landed_frames,
    landed_problems,
    processed_tables,
)

HEADER = "datetime,machineID,volt,rotate,pressure,vibration\n"


def rows(count: int, start: str = "2016-01-01") -> str:
    times = pd.date_range(start, periods=count, freq="h")
    return "".join(f"{t:%Y-%m-%d %H:%M:%S},1,170.0,450.0,100.0,40.0\n" for t in times)


def test_an_extra_field_after_1200_good_rows_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "telemetry_20160101T0000.csv"
    path.write_text(HEADER + rows(1200) + "2016-03-01 00:00:00,1,170.0,450.0,100.0,40.0,7\n")
    problems = landed_problems(LandedFile(path, 0, 0))
    assert len(problems) == 1 and "Expected 6 fields in line 1202, saw 7" in problems[0]


def test_a_latin1_byte_after_1100_rows_is_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "telemetry_20160101T0000.csv"
    lines = rows(1200).encode().splitlines(keepends=True)
    path.write_bytes(HEADER.encode() + b"".join(lines[:1100]) + "2016-03-01 00:00:00,1,°\n".encode("latin-1"))
    problems = landed_problems(LandedFile(path, 0, 0))
    assert len(problems) == 1 and "codec can't decode" in problems[0]


def test_an_unreadable_processed_file_is_set_aside_with_its_reason(tmp_path: Path) -> None:
    processed = tmp_path / PROCESSED
    processed.mkdir()
    (processed / "telemetry_20160101T0000.csv").write_text(HEADER + rows(3) + "x,1,2,3,4,5,6\n")
    (processed / "telemetry_20160102T0000.csv").write_text(HEADER + rows(2, start="2016-01-02"))
    landed = landed_frames(tmp_path)
    frame = landed.table("telemetry")
    assert frame is not None and len(frame) == 2
    assert list(landed.rejected) == [str(tmp_path / REJECTED / "telemetry_20160101T0000.csv")]
    reason = (tmp_path / REJECTED / "telemetry_20160101T0000.csv.reason.txt").read_text()
    assert "Expected 6 fields" in reason


def test_a_second_copy_of_a_name_is_read_after_the_first(tmp_path: Path) -> None:
    """`name.1.csv` landed after `name.csv`, so it must come later for the last-writer rule."""
    processed = tmp_path / PROCESSED
    processed.mkdir()
    (processed / "telemetry_20160101T0000.csv").write_text(HEADER + "2016-01-01 00:00:00,1,4000,450,100,40\n")
    (processed / "telemetry_20160101T0000.1.csv").write_text(HEADER + "2016-01-01 00:00:00,1,170,450,100,40\n")
    assert processed_tables(tmp_path)["telemetry"]["volt"].tolist() == [4000, 170]


def test_a_pending_file_comes_after_processed_copies_of_its_name(tmp_path: Path) -> None:
    processed = tmp_path / PROCESSED
    processed.mkdir()
    (processed / "telemetry_20160101T0000.1.csv").write_text(HEADER + "2016-01-01 00:00:00,1,4000,450,100,40\n")
    pending = tmp_path / "telemetry_20160101T0000.csv"
    pending.write_text(HEADER + "2016-01-01 00:00:00,1,170,450,100,40\n")
    frame = landed_frames(tmp_path, [pending]).table("telemetry")
    assert frame is not None and frame["volt"].tolist() == [4000, 170]

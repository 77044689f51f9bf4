"""The landing sensor and the ingest run together (issue 14, items 1, 2 and 4): a bad file never poisons later
runs, a failed run's files are requested again, and a file is requested only once it is complete."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest

from pdm_assets.lib.data.landing import PROCESSED, REJECTED
from pdm_assets_tests.support.ingest import (
    TELEMETRY_HEADER,
    materialize_ingest,
    requested_files,
    run_request,
    telemetry_rows,
    tick,
)
from pdm_assets_tests.support.project import load_defs

ERRORS = "datetime,machineID,errorID\n2016-01-02 06:00:00,1,error1\n2016-01-02 07:00:00,2,error3\n"



def extra_field_after_1200_rows(folder: Path) -> Path:
    path = folder / "telemetry_20160101T0000.csv"
    path.write_text(TELEMETRY_HEADER + telemetry_rows(1200) + "2016-03-01 00:00:00,1,170.0,450.0,100.0,40.0,7\n")
    return path


def latin1_byte_after_1100_rows(folder: Path) -> Path:
    path = folder / "telemetry_20160301T0000.csv"
    rows = telemetry_rows(1200, machine=2).encode().splitlines(keepends=True)
    latin1 = "2016-03-01 00:00:00,2,170.0,450.0,100.0,40.0 µm\n".encode("latin-1")
    path.write_bytes(TELEMETRY_HEADER.encode() + b"".join(rows[:1100]) + latin1 + b"".join(rows[1100:]))
    return path


def test_files_bad_past_their_first_rows_are_rejected_and_later_files_still_land(landing: Path) -> None:
    extra_field = extra_field_after_1200_rows(landing)
    latin1 = latin1_byte_after_1100_rows(landing)
    (landing / "errors_20160102T0600.csv").write_text(ERRORS)
    defs = load_defs()
    with dg.instance_for_test() as instance:
        first, cursor = tick(instance, None)
        assert requested_files(first) == ["errors_20160102T0600.csv"]
        reasons = {p.name: (landing / REJECTED / f"{p.name}.reason.txt") for p in (extra_field, latin1)}
        assert "Expected 6 fields in line 1202, saw 7" in reasons[extra_field.name].read_text()
        assert "codec can't decode" in reasons[latin1.name].read_text()
        assert isinstance(first, dg.SensorResult)
        assert run_request(defs, instance, first.run_requests[0]).success

        # a later good file still lands, in a run that reads every processed file again
        (landing / "errors_20160103T0600.csv").write_text(ERRORS.replace("2016-01-02", "2016-01-03"))
        second, _ = tick(instance, cursor)
        assert isinstance(second, dg.SensorResult) and requested_files(second) == ["errors_20160103T0600.csv"]
        assert run_request(defs, instance, second.run_requests[0]).success
        errors = defs.load_asset_value("raw_errors", instance=instance)
        assert {"2016-01-02 06:00:00", "2016-01-03 07:00:00"} <= set(errors["datetime"].astype(str))
        assert sorted(p.name for p in (landing / PROCESSED).iterdir()) == [
            "errors_20160102T0600.csv",
            "errors_20160103T0600.csv",
        ]


def test_the_run_rechecks_its_files_and_sets_aside_a_bad_processed_one(landing: Path) -> None:
    """A file changed after the sensor saw it, and one an older version left in processed/, are set aside."""
    changed = extra_field_after_1200_rows(landing)
    (landing / PROCESSED).mkdir()
    left_by_older_version = latin1_byte_after_1100_rows(landing).rename(
        landing / PROCESSED / "telemetry_20160301T0000.csv"
    )
    good = landing / "errors_20160102T0600.csv"
    good.write_text(ERRORS)
    defs = load_defs()
    with dg.instance_for_test() as instance:
        result = materialize_ingest(defs, instance, [changed, good])
        assert result.success
        assert not changed.exists() and not left_by_older_version.exists()
        for name in (changed.name, left_by_older_version.name):
            assert (landing / REJECTED / f"{name}.reason.txt").read_text().startswith(f"cannot read {name}")
        assert (landing / PROCESSED / good.name).exists()
        assert materialize_ingest(defs, instance).success  # and the next run is not held up


def test_a_failed_run_leaves_its_files_to_be_requested_again(
    landing: Path, isolated_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = landing / "errors_20160102T0600.csv"
    path.write_text(ERRORS)
    with dg.instance_for_test() as instance:
        first, cursor = tick(instance, None)
        assert isinstance(first, dg.SensorResult) and requested_files(first) == [path.name]

        # the run fails before it gets to the landed file: its source is missing
        monkeypatch.setenv("PDM_DATA_SOURCE", "local")
        monkeypatch.setenv("PDM_DATA_DIR", str(isolated_project / "no such folder"))
        assert not run_request(load_defs(), instance, first.run_requests[0]).success
        assert path.exists()

        second, cursor = tick(instance, cursor)
        assert isinstance(second, dg.SensorResult) and requested_files(second) == [path.name]
        assert second.run_requests[0].run_key != first.run_requests[0].run_key  # a new run, not a duplicate key

        monkeypatch.setenv("PDM_DATA_SOURCE", "synthetic")
        assert run_request(load_defs(), instance, second.run_requests[0]).success
        assert not path.exists() and (landing / PROCESSED / path.name).exists()
        third, _ = tick(instance, cursor)
        assert isinstance(third, dg.SkipReason)


def test_a_file_is_requested_only_once_complete(landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDM_LANDING_SETTLE_SECONDS", "0.001")  # the stability check on, no wait on the clock
    growing = landing / "telemetry_20160101T0000.csv"
    growing.write_text(TELEMETRY_HEADER + telemetry_rows(10))
    marked = landing / "errors_20160102T0600.csv"
    marked.write_text(ERRORS)
    (landing / "errors_20160102T0600.csv.done").touch()
    (landing / ".maint_20160102T0600.csv").write_text("datetime,machineID,comp\n2016-01-02 06:00:00,1,comp1\n")
    (landing / "failures_20160102T0600.csv.tmp").write_text("datetime,machineID,failure\n")
    with dg.instance_for_test() as instance:
        first, cursor = tick(instance, None)
        assert requested_files(first) == [marked.name]  # the .done marker: ready at once
        (landing / PROCESSED).mkdir()
        marked.rename(landing / PROCESSED / marked.name)  # its run succeeded
        (landing / "errors_20160102T0600.csv.done").unlink()

        with growing.open("a") as handle:  # the writer is still appending
            handle.write(telemetry_rows(5, start="2016-01-02"))
        second, cursor = tick(instance, cursor)
        assert requested_files(second) == []
        assert "telemetry_20160101T0000.csv: new or still changing" in (second.skip_message or "")

        os.utime(growing, ns=(growing.stat().st_atime_ns, growing.stat().st_mtime_ns))  # unchanged since
        third, cursor = tick(instance, cursor)
        assert requested_files(third) == [growing.name]
    assert not (landing / REJECTED).exists()  # the dot-file and the .tmp file were neither requested nor rejected

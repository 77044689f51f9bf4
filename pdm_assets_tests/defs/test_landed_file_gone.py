"""A landed file the run was asked to append but that is gone fails the run, naming the file; one an earlier
successful run already moved to processed/ (a re-executed run) does not."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from pdm_assets.lib.data.landing import PROCESSED, gone_files
from pdm_assets_tests.support.ingest import (
    TELEMETRY_HEADER,
    materialize_ingest,
    output_metadata,
    telemetry_rows,
)
from pdm_assets_tests.support.project import load_defs


def land(folder: Path, name: str, hours: int) -> Path:
    path = folder / name
    path.write_text(TELEMETRY_HEADER + telemetry_rows(hours))
    return path


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures, "the run did not fail"
    return "\n".join(str(e.step_failure_data.error.message) for e in failures if e.step_failure_data.error)


def test_a_gone_file_fails_the_run_and_names_the_file(landing: Path) -> None:
    defs = load_defs()
    kept = land(landing, "telemetry_20160101T0000.csv", 3)
    gone = land(landing, "telemetry_20160102T0000.csv", 5)
    gone.unlink()  # deleted (or moved elsewhere) between the sensor's request and the run
    with dg.instance_for_test() as instance:
        result = materialize_ingest(defs, instance, [kept, gone])
        assert not result.success
        message = failure_message(result)
        assert str(gone) in message and "is gone" in message and str(kept) not in message
        assert instance.get_latest_materialization_event(dg.AssetKey("raw_telemetry")) is None
    assert kept.exists(), "a failed run leaves its files in landing/ for the sensor"


def test_a_re_executed_run_skips_the_files_it_already_processed(landing: Path) -> None:
    defs = load_defs()
    landed = land(landing, "telemetry_20160101T0000.csv", 4)
    with dg.instance_for_test() as instance:
        first = materialize_ingest(defs, instance, [landed])
        assert first.success
        assert not landed.exists() and (landing / PROCESSED / landed.name).exists()
        again = materialize_ingest(defs, instance, [landed])  # the same config: the path is now gone
        assert again.success
        before, after = (output_metadata(run, "raw_telemetry") for run in (first, again))
    assert before["landed_file_rows"] == 4
    # its rows now come from processed/, once
    assert (after["landed_file_rows"], after["raw_rows"]) == (before["landed_file_rows"], before["raw_rows"])


def test_gone_files_are_those_neither_landed_nor_processed(tmp_path: Path) -> None:
    waiting, processed, lost = (tmp_path / f"telemetry_2016010{d}T0000.csv" for d in (1, 2, 3))
    waiting.write_text("x")
    (tmp_path / PROCESSED).mkdir()
    (tmp_path / PROCESSED / processed.name).write_text("x")
    (tmp_path / PROCESSED / "telemetry_20160103T0000.1.csv").write_text("x")  # another file's numbered copy
    assert gone_files([waiting, processed, lost]) == [lost]

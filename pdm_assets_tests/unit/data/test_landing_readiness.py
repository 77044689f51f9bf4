"""The landing sensor's decisions without Dagster (issue 14, items 2 and 4): complete files only, one request in
flight, failed runs' files requested again under a new key, lost requests retried, endless failures stopped."""

from __future__ import annotations

from pathlib import Path

from pdm_assets.lib.data.landing import LandedFile, scan_landing
from pdm_assets.lib.data.landing_ticks import LOST_REQUEST_SECONDS, MAX_FAILED_RUNS, LandingCursor, plan_tick

NOW = 1_800_000_000.0
OLD_MTIME = int((NOW - 3600) * 1e9)


def landed(name: str, size: int = 10, done: bool = False) -> LandedFile:
    return LandedFile(Path("/landing") / name, size, OLD_MTIME, done)


def names(files: list[LandedFile]) -> list[str]:
    return [f.path.name for f in files]


def test_a_file_is_ready_when_unchanged_since_the_last_tick() -> None:
    first = plan_tick(LandingCursor(), [landed("errors_20160101T0000.csv")], None, NOW, 5)
    assert first.ready == [] and "new or still changing" in first.waiting[0]
    grown = plan_tick(first.cursor, [landed("errors_20160101T0000.csv", size=20)], None, NOW, 5)
    assert grown.ready == []
    stable = plan_tick(grown.cursor, [landed("errors_20160101T0000.csv", size=20)], None, NOW, 5)
    assert names(stable.ready) == ["errors_20160101T0000.csv"]


def test_a_done_marker_or_no_settling_makes_a_file_ready_at_once() -> None:
    assert plan_tick(LandingCursor(), [landed("errors_20160101T0000.csv", done=True)], None, NOW, 5).ready
    assert plan_tick(LandingCursor(), [landed("errors_20160101T0000.csv")], None, NOW, 0).ready


def test_a_stable_but_young_file_waits_for_the_settle_time() -> None:
    young = LandedFile(Path("/landing/errors_20160101T0000.csv"), 10, int((NOW - 1) * 1e9))
    first = plan_tick(LandingCursor(), [young], None, NOW, 5)
    assert plan_tick(first.cursor, [young], None, NOW, 5).ready == []


def test_scan_ignores_dot_tmp_and_marker_files_and_sees_the_marker(tmp_path: Path) -> None:
    for name in (".errors_20160101T0000.csv", "errors_20160102T0000.csv.tmp", "errors_20160103T0000.csv"):
        (tmp_path / name).write_text("x")
    (tmp_path / "errors_20160103T0000.csv.done").touch()
    found = scan_landing(tmp_path)
    assert names(found) == ["errors_20160103T0000.csv"] and found[0].done_marker


def requested(files: list[LandedFile]) -> tuple[LandingCursor, str]:
    cursor = plan_tick(LandingCursor(), files, None, NOW, 0).cursor
    return cursor, cursor.start_request(files, NOW)


def test_one_request_at_a_time_and_a_failed_run_is_requested_again_under_a_new_key() -> None:
    files = [landed("errors_20160101T0000.csv")]
    cursor, key = requested(files)
    later = files + [landed("maint_20160101T0000.csv")]
    running = plan_tick(cursor, later, "in_flight", NOW, 0)
    assert running.busy and running.ready == []
    failed = plan_tick(LandingCursor.parse(running.cursor.dump()), later, "failed", NOW, 0)
    assert names(failed.ready) == ["errors_20160101T0000.csv", "maint_20160101T0000.csv"]
    assert failed.cursor.start_request(files, NOW) != key


def test_a_request_without_a_run_waits_then_counts_as_lost() -> None:
    files = [landed("errors_20160101T0000.csv")]
    cursor, _ = requested(files)
    assert plan_tick(cursor, files, "missing", NOW + 60, 0).busy
    lost = plan_tick(cursor, files, "missing", NOW + LOST_REQUEST_SECONDS, 0)
    assert not lost.busy and names(lost.ready) == ["errors_20160101T0000.csv"]
    assert lost.cursor.failed_runs == {files[0].fingerprint: 1}


def test_a_succeeded_run_or_gone_files_end_the_request() -> None:
    files = [landed("errors_20160101T0000.csv")]
    cursor, _ = requested(files)
    assert plan_tick(cursor, [], "in_flight", NOW, 0).cursor.request is None  # its files left landing/
    assert plan_tick(cursor, files, "succeeded", NOW, 0).cursor.request is None


def test_after_repeated_failures_a_file_waits_until_it_changes() -> None:
    files = [landed("errors_20160101T0000.csv")]
    cursor = LandingCursor(failed_runs={files[0].fingerprint: MAX_FAILED_RUNS})
    stuck = plan_tick(cursor, files, None, NOW, 0)
    assert stuck.ready == [] and "touch it" in stuck.waiting[0]
    touched = [LandedFile(files[0].path, 10, OLD_MTIME + 1)]
    assert names(plan_tick(stuck.cursor, touched, None, NOW, 0).ready) == ["errors_20160101T0000.csv"]


def test_the_old_cursor_of_seen_files_is_dropped() -> None:
    """The list kept by earlier versions marked files seen even when their run failed: they are looked at again."""
    cursor = LandingCursor.parse('["errors_20160101T0000.csv:10:1"]')
    assert cursor == LandingCursor()

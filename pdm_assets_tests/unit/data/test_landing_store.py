"""The landing folder as a local path and as an S3 URI (moto): listing, settling, reading, moving to processed/ and
rejected/, and group runs that share one landed file."""

from __future__ import annotations

import pytest
from fsspec import AbstractFileSystem
from upath import UPath

from pdm_assets.lib.data.landing import (
    PROCESSED,
    REJECTED,
    LandedFileGone,
    accept,
    landed_frames,
    read_pending,
    reject,
    scan_landing,
)
from pdm_assets.lib.data.landing_store import landing_path, move

ERRORS = "datetime,machineID,errorID\n2015-10-01 06:00:00,1,error1\n2015-10-01 07:00:00,2,error3\n"
NAME = "errors_20151001T0600.csv"


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> UPath:
    """An empty landing folder: a local one, or a prefix in a new bucket."""
    if request.param == "local":
        return landing_path(str(tmp_path_factory.mktemp("landing")))
    bucket = request.getfixturevalue("s3_bucket")
    return landing_path(f"s3://{bucket}/landing")


def land(folder: UPath, name: str = NAME, text: str = ERRORS) -> UPath:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def elsewhere(path: UPath) -> AbstractFileSystem:
    """The file system as another process (another run's pod) sees it: without this process's cached listings."""
    return type(path.fs)(skip_instance_cache=True)


def moved_by_another_run(path: UPath) -> None:
    other = elsewhere(path)
    other.makedirs((path.parent / PROCESSED).path, exist_ok=True)
    other.copy(path.path, (path.parent / PROCESSED / path.name).path)
    other.rm(path.path)


def names(folder: UPath) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_a_uri_stays_a_uri_and_a_folder_becomes_absolute() -> None:
    assert str(landing_path("s3://bucket/landing")) == "s3://bucket/landing"
    assert landing_path("data/landing").is_absolute()


def test_scan_lists_data_files_with_their_markers_and_not_subfolders(root: UPath) -> None:
    assert scan_landing(root) == []  # not there yet
    land(root)
    land(root, f"{NAME}.done", "")
    land(root, "maint_20151002T0600.csv.tmp", "partial")
    land(root / PROCESSED, "errors_20150901T0600.csv")
    found = scan_landing(str(root))  # as the setting gives it
    assert [(f.path.name, f.size, f.done_marker) for f in found] == [(NAME, len(ERRORS), True)]
    assert str(found[0].path) == str(root / NAME)


def test_a_rewritten_file_has_a_new_fingerprint_and_a_deleted_one_is_not_listed(root: UPath) -> None:
    path = land(root)
    first = scan_landing(root)[0].fingerprint
    assert scan_landing(root)[0].fingerprint == first  # unchanged between ticks: it can settle
    path.write_text(ERRORS + "2015-10-01 08:00:00,3,error2\n")
    assert scan_landing(root)[0].fingerprint != first
    elsewhere(path).rm(path.path)  # by another process: this one's listing must not be remembered
    assert scan_landing(root) == []


def test_accept_moves_to_processed_and_a_second_move_of_the_same_file_is_a_no_op(root: UPath) -> None:
    path = land(root)
    land(root, f"{NAME}.done", "")
    kept = accept(path)
    assert str(kept) == str(root / PROCESSED / NAME)
    assert names(root) == [PROCESSED] and names(root / PROCESSED) == [NAME]
    assert accept(str(path)) == kept  # another group's run moved it first
    assert names(root / PROCESSED) == [NAME] and kept.read_text() == ERRORS


def test_a_later_file_of_the_same_name_is_kept_beside_the_first(root: UPath) -> None:
    accept(land(root))
    accept(land(root))  # the same bytes again: one copy
    accept(land(root, text=ERRORS + "2015-10-01 09:00:00,4,error5\n"))
    assert names(root / PROCESSED) == ["errors_20151001T0600.1.csv", NAME]


def test_accepting_a_file_gone_from_landing_and_processed_fails(root: UPath) -> None:
    with pytest.raises(LandedFileGone, match=NAME):
        accept(root / NAME)


def test_a_pending_file_is_read_from_processed_once_another_run_moved_it(root: UPath) -> None:
    path = land(root)
    land(root / PROCESSED, "errors_20150901T0600.csv")
    assert names(root / PROCESSED) == ["errors_20150901T0600.csv"]  # this process has seen processed/ without it
    assert read_pending(path) == (path, ERRORS.encode())
    moved_by_another_run(path)  # the first group's run finished
    source, data = read_pending(path)
    assert str(source) == str(root / PROCESSED / NAME) and data == ERRORS.encode()
    (root / PROCESSED / NAME).unlink()
    with pytest.raises(LandedFileGone, match="neither in the landing folder nor in processed/"):
        read_pending(path)


def test_a_shared_file_moved_during_the_run_is_read_once(root: UPath) -> None:
    path = land(root)
    assert scan_landing(root)  # this run saw it in landing/
    moved_by_another_run(path)  # between this run's start and its read
    landed = landed_frames(root, [path])
    table = landed.table("errors")
    assert table is not None and len(table) == 2 and not landed.rejected


def test_reject_sets_the_file_aside_with_its_reason(root: UPath) -> None:
    path = land(root, text="x\n1\n")
    target = reject(path, ["missing column 'errorID'"])
    assert str(target) == str(root / REJECTED / NAME) and target.read_text() == "x\n1\n"
    assert (root / REJECTED / f"{NAME}.reason.txt").read_text() == "missing column 'errorID'\n"
    assert names(root) == [REJECTED]
    assert str(reject(path, ["again"])) == str(root / REJECTED / "errors_20151001T0600.1.csv")  # gone: no-op
    assert names(root / REJECTED) == [NAME, f"{NAME}.reason.txt"]


def test_a_move_copies_before_it_deletes(root: UPath, monkeypatch: pytest.MonkeyPatch) -> None:
    """A move interrupted after the copy leaves the file in both places, never in neither."""
    path = land(root)
    target = root / PROCESSED / NAME

    def interrupted(*_: object, **__: object) -> None:
        raise ConnectionError("the pod was stopped")

    monkeypatch.setattr(path.fs, "rm", interrupted)
    monkeypatch.setattr("shutil.move", lambda *_: interrupted())
    with pytest.raises(ConnectionError):
        move(path, target)
    assert path.exists()
    if path.protocol == "s3":
        assert target.read_text() == ERRORS

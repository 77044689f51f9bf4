"""The landing sensor, ticked with build_sensor_context on a temporary landing folder."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from pdm_assets.defs.ingest.sensors import landing_sensor
from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.data.landing import REJECTED, accept
from pdm_assets.settings import get_settings

ERRORS = "datetime,machineID,errorID\n2015-10-01 06:00:00,1,error1\n"


@pytest.fixture
def landing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    monkeypatch.setenv("PDM_LANDING_DIR", str(folder))
    monkeypatch.setenv("PDM_LANDING_SETTLE_SECONDS", "0")
    return folder


def tick(cursor: str | None = None) -> dg.SensorResult | dg.SkipReason:
    with dg.instance_for_test() as instance:
        resources = {"settings": ProjectSettings.of(get_settings())}
        context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
        result = landing_sensor(context)
        assert isinstance(result, dg.SensorResult | dg.SkipReason)
        return result


def files_of(result: dg.SensorResult) -> list[str]:
    request = result.run_requests[0]
    return [Path(p).name for p in request.run_config["ops"]["raw_tables"]["config"]["landed_files"]]


def test_a_new_file_requests_one_run_and_the_next_tick_skips(landing: Path) -> None:
    (landing / "errors_20151001T0600.csv").write_text(ERRORS)
    first = tick()
    assert isinstance(first, dg.SensorResult)
    assert files_of(first) == ["errors_20151001T0600.csv"]
    assert len(first.run_requests) == 1 and first.run_requests[0].partition_key is None  # one group: unpartitioned
    assert first.cursor is not None

    second = tick(first.cursor)
    assert isinstance(second, dg.SkipReason)
    assert "no new files" in (second.skip_message or "")


def test_the_cursor_advances_to_later_files_only(landing: Path) -> None:
    (landing / "errors_20151001T0600.csv").write_text(ERRORS)
    first = tick()
    assert isinstance(first, dg.SensorResult)
    accept(landing / "errors_20151001T0600.csv")  # what the requested run does when it succeeds
    (landing / "maint_20151002T0600.csv").write_text("datetime,machineID,comp\n2015-10-02 06:00:00,1,comp1\n")
    second = tick(first.cursor)
    assert isinstance(second, dg.SensorResult)
    assert files_of(second) == ["maint_20151002T0600.csv"]
    assert [f.split(":")[0] for f in json.loads(second.cursor or "{}")["request"]["files"]] == [
        "maint_20151002T0600.csv"
    ]


def test_a_changed_file_with_the_same_name_is_new(landing: Path) -> None:
    path = landing / "errors_20151001T0600.csv"
    path.write_text(ERRORS)
    first = tick()
    assert isinstance(first, dg.SensorResult)
    path.write_text(ERRORS + "2015-10-01 07:00:00,2,error2\n")
    again = tick(first.cursor)
    assert isinstance(again, dg.SensorResult)
    assert again.run_requests[0].run_key != first.run_requests[0].run_key


def test_a_bad_file_is_rejected_with_its_reason_and_does_not_block_good_ones(landing: Path) -> None:
    (landing / "errors_20151001T0600.csv").write_text("datetime,machineID\n2015-10-01 06:00:00,1\n")
    (landing / "errors_20151002T0600.csv").write_text(ERRORS)
    result = tick()
    assert isinstance(result, dg.SensorResult)
    assert files_of(result) == ["errors_20151002T0600.csv"]
    assert "missing column 'errorID'" in result.run_requests[0].tags["pdm/rejected"]
    reason = landing / REJECTED / "errors_20151001T0600.csv.reason.txt"
    assert reason.read_text().strip() == "missing column 'errorID'"


def test_only_bad_files_skip_with_the_reason(landing: Path) -> None:
    (landing / "pumps_20151001T0600.csv").write_text(ERRORS)
    result = tick()
    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests
    assert result.skip_reason is not None
    assert "pumps_20151001T0600.csv" in (result.skip_reason.skip_message or "")
    assert (landing / REJECTED / "pumps_20151001T0600.csv").exists()


def test_with_three_groups_a_file_requests_one_run_per_group_its_machines_are_in(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDM_MACHINE_GROUPS", "3")
    rows = "".join(f"2015-10-01 0{hour}:00:00,{machine},error1\n" for hour, machine in enumerate((1, 4, 2)))
    (landing / "errors_20151001T0600.csv").write_text(ERRORS.splitlines()[0] + "\n" + rows)  # groups 1 and 2
    result = tick()
    assert isinstance(result, dg.SensorResult)
    by_group = {r.partition_key: r for r in result.run_requests}
    assert sorted(by_group) == ["g1-of-3", "g2-of-3"]
    for request in result.run_requests:
        assert request.run_config["ops"]["raw_tables"]["config"]["landed_files"] == [
            str(landing / "errors_20151001T0600.csv")
        ]
    assert len({r.run_key for r in result.run_requests}) == 2
    assert len({r.tags["pdm/landing_request"] for r in result.run_requests}) == 1  # one request, two runs
    assert json.loads(result.cursor or "{}")["request"]["runs"] == 2


def test_a_file_without_readable_machine_ids_is_requested_for_the_first_group(
    landing: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDM_MACHINE_GROUPS", "3")
    (landing / "errors_20151001T0600.csv").write_text("datetime,machineID,errorID\n2015-10-01 06:00:00,M-7,error1\n")
    result = tick()
    assert isinstance(result, dg.SensorResult)
    assert [r.partition_key for r in result.run_requests] == ["g0-of-3"]


def test_a_landing_folder_on_s3_is_listed_and_requested_by_uri(s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from upath import UPath

    landing = UPath(f"s3://{s3_bucket}/landing")
    (landing / "errors_20151001T0600.csv").write_text(ERRORS)
    monkeypatch.setenv("PDM_LANDING_DIR", str(landing))
    monkeypatch.setenv("PDM_LANDING_SETTLE_SECONDS", "0")
    result = tick()
    assert isinstance(result, dg.SensorResult)
    assert result.run_requests[0].run_config["ops"]["raw_tables"]["config"]["landed_files"] == [
        f"s3://{s3_bucket}/landing/errors_20151001T0600.csv"
    ]

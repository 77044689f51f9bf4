"""The landing sensor, ticked with build_sensor_context on a temporary landing folder."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from pdm_assets.defs.ingest.sensors import landing_sensor
from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.data.landing import REJECTED
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
        # the sensor reads the landing folder from the settings resource, built from this test's environment
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, resources={"settings": ProjectSettings.of(get_settings())}
        )
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
    assert first.cursor is not None

    second = tick(first.cursor)
    assert isinstance(second, dg.SkipReason)
    assert "no new files" in (second.skip_message or "")


def test_the_cursor_advances_to_later_files_only(landing: Path) -> None:
    (landing / "errors_20151001T0600.csv").write_text(ERRORS)
    first = tick()
    assert isinstance(first, dg.SensorResult)
    (landing / "maint_20151002T0600.csv").write_text("datetime,machineID,comp\n2015-10-02 06:00:00,1,comp1\n")
    second = tick(first.cursor)
    assert isinstance(second, dg.SensorResult)
    assert files_of(second) == ["maint_20151002T0600.csv"]
    assert len(json.loads(second.cursor or "[]")) == 2


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

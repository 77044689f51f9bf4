"""Rows through ingest (issue 14, items 3 and 5): a landed correction replaces the row it corrects, the same
content twice changes nothing, and on dirty data every row of all five tables is accounted for."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pdm_assets.lib.data.tables import FILE_NAMES, TABLE_NAMES, TableName
from pdm_assets.lib.synthetic.simulate import generate_fleet
from pdm_assets_tests.support.ingest import TELEMETRY_HEADER, materialize_ingest, output_metadata
from pdm_assets_tests.support.project import load_defs

GOOD = "170.0,450.0,100.0,40.0"
UNUSABLE_KEYS = f"not a time,1,{GOOD}\n2016-01-01 01:00:00,x,{GOOD}\n"



def land(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def volt_at(frame: pd.DataFrame, machine: int, time: str) -> list[float]:
    at = pd.to_datetime(frame["datetime"].astype(str), errors="coerce") == pd.Timestamp(time)
    return pd.to_numeric(frame.loc[at & (frame["machineID"].astype(str) == str(machine)), "volt"]).tolist()


def test_a_correction_replaces_the_row_and_the_same_content_twice_changes_nothing(landing: Path) -> None:
    defs = load_defs()
    with dg.instance_for_test() as instance:
        first = land(landing, "telemetry_20160101T0000.csv", TELEMETRY_HEADER + UNUSABLE_KEYS)
        first.write_text(first.read_text() + f"2016-01-01 00:00:00,1,4000.0,{GOOD[6:]}\n")
        assert materialize_ingest(defs, instance, [first]).success
        before = defs.load_asset_value("raw_telemetry", instance=instance)
        source_row = before.iloc[0]

        correction = TELEMETRY_HEADER + f"2016-01-01 00:00:00,1,{GOOD}\n"
        correction += f"{source_row['datetime']},{source_row['machineID']},171.5,{GOOD[6:]}\n"
        result = materialize_ingest(
            defs, instance, [land(landing, "telemetry_20160102T0000.csv", correction)]
        )
        assert result.success
        raw = defs.load_asset_value("raw_telemetry", instance=instance)
        assert len(raw) == len(before)
        assert volt_at(raw, 1, "2016-01-01 00:00:00") == [170.0]  # was 4000: a correction, not a dropped row
        assert volt_at(raw, int(source_row["machineID"]), str(source_row["datetime"])) == [171.5]
        assert output_metadata(result, "raw_telemetry")["landed_replacing_rows"] == 2
        quarantined = defs.load_asset_value("quarantine", instance=instance)
        assert (quarantined["table"] == "telemetry").sum() == 2  # the two unusable keys; 4000 V is gone

        again = TELEMETRY_HEADER + UNUSABLE_KEYS + correction.removeprefix(TELEMETRY_HEADER)
        result = materialize_ingest(defs, instance, [land(landing, "telemetry_20160103T0000.csv", again)])
        assert result.success
        assert len(defs.load_asset_value("raw_telemetry", instance=instance)) == len(before)
        assert output_metadata(result, "raw_telemetry")["landed_identical_rows"] == 4
        quarantined = defs.load_asset_value("quarantine", instance=instance)
        assert (quarantined["table"] == "telemetry").sum() == 2  # not doubled


# Per table: rows appended to the source files, each bad in one way validation knows.
SOURCE_FAULTS: dict[TableName, list[dict[str, object]]] = {
    "telemetry": [
        {"datetime": "2015-01-01 06:00:00", "machineID": 1, "volt": 1.0, "rotate": 1, "pressure": 1, "vibration": 1},
        {"datetime": "not a time", "machineID": 1, "volt": 170, "rotate": 450, "pressure": 100, "vibration": 40},
        {"datetime": "2015-02-01 00:00:00", "machineID": "x", "volt": 170, "rotate": 450, "pressure": 100},
        {"datetime": "2015-02-01 01:00:00", "machineID": 1, "volt": 170, "rotate": 450, "pressure": 100},
        {
            "datetime": "2015-02-01 02:00:00",
            "machineID": 1,
            "volt": 4000,
            "rotate": 450,
            "pressure": 100,
            "vibration": 40,
        },
        {
            "datetime": "2099-01-01 00:00:00",
            "machineID": 1,
            "volt": 170,
            "rotate": 450,
            "pressure": 100,
            "vibration": 40,
        },
        {
            "datetime": "2015-02-01 03:30:00",
            "machineID": 1,
            "volt": 170,
            "rotate": 450,
            "pressure": 100,
            "vibration": 40,
        },
        {
            "datetime": "2015-02-01 04:00:00",
            "machineID": 99,
            "volt": 170,
            "rotate": 450,
            "pressure": 100,
            "vibration": 40,
        },
    ],
    "errors": [
        {"datetime": "2015-01-13 02:00:00", "machineID": 1, "errorID": "error3"},
        {"datetime": "2015-02-01 00:00:00", "machineID": 1, "errorID": "error9"},
        {"datetime": "yesterday", "machineID": 1, "errorID": "error1"},
        {"datetime": "2015-02-01 01:00:00", "machineID": 99, "errorID": "error1"},
        {"datetime": "2015-02-01 02:00:00", "machineID": 1},
    ],
    "maint": [
        {"datetime": "2014-08-29 06:00:00", "machineID": 1, "comp": "comp1"},
        {"datetime": "2015-02-01 06:00:00", "machineID": 1, "comp": "comp7"},
        {"datetime": "2099-02-01 06:00:00", "machineID": 1, "comp": "comp1"},
        {"datetime": "2015-02-01 06:00:00", "machineID": "abc", "comp": "comp2"},
        {"machineID": 2, "comp": "comp2"},
    ],
    "failures": [
        {"datetime": "2015-01-17 06:00:00", "machineID": 2, "failure": "comp1"},
        {"datetime": "2015-02-01 06:00:00", "machineID": 2, "failure": "comp9"},
        {"datetime": "2015-13-01 06:00:00", "machineID": 2, "failure": "comp1"},
        {"datetime": "2015-02-01 06:00:00", "machineID": 99, "failure": "comp1"},
    ],
    "machines": [
        # a machine listed twice: column-level uniqueness quarantines both rows, so it is not one of the fleet's
        {"machineID": 9, "model": "model1", "age": 3},
        {"machineID": 9, "model": "model1", "age": 3},
        {"machineID": 4, "model": "model1", "age": 500},
        {"machineID": 5, "model": "model9", "age": 3},
        {"machineID": "x", "model": "model1", "age": 3},
        {"machineID": 6, "model": "model1"},
    ],
}

# Per table, landed rows: new (good and bad), corrections, identical copies, and an unusable key landed twice.
NEW_GOOD: dict[TableName, list[dict[str, object]]] = {
    "telemetry": [
        {
            "datetime": "2016-01-01 00:00:00",
            "machineID": 2,
            "volt": 170,
            "rotate": 450,
            "pressure": 100,
            "vibration": 40,
        }
    ],
    "errors": [{"datetime": "2016-01-01 00:00:00", "machineID": 2, "errorID": "error2"}],
    "maint": [{"datetime": "2016-01-01 06:00:00", "machineID": 3, "comp": "comp4"}],
    "failures": [{"datetime": "2016-01-01 06:00:00", "machineID": 3, "failure": "comp4"}],
    "machines": [{"machineID": 7, "model": "model4", "age": 1}],
}
NEW_BAD: dict[TableName, list[dict[str, object]]] = {
    "telemetry": [
        {"datetime": "2016-01-01 01:00:00", "machineID": 2, "volt": 170, "rotate": -5, "pressure": 100, "vibration": 40}
    ],
    "errors": [{"datetime": "2016-01-01 00:00:00", "machineID": 2, "errorID": "error0"}],
    "maint": [{"datetime": "2016-01-01 06:00:00", "machineID": 3, "comp": "comp0"}],
    "failures": [{"datetime": "2016-01-01 06:00:00", "machineID": 42, "failure": "comp1"}],
    "machines": [{"machineID": 8, "model": "model4", "age": -1}],
}
UNUSABLE: dict[TableName, dict[str, object]] = {
    "telemetry": {"datetime": "soon", "machineID": 2, "volt": 170, "rotate": 450, "pressure": 100, "vibration": 40},
    "errors": {"datetime": "2016-01-01 00:00:00", "machineID": "two", "errorID": "error2"},
    "maint": {"datetime": "2016-01-01 06:00:00", "machineID": 3},  # a missing comp is a missing key
    "failures": {"datetime": "", "machineID": 3, "failure": "comp4"},
    "machines": {"machineID": "seven", "model": "model4", "age": 1},
}


def dirty_source(folder: Path) -> dict[TableName, pd.DataFrame]:
    """A small synthetic fleet as the dataset's CSV files, each table with SOURCE_FAULTS appended; as read back."""
    folder.mkdir()
    fleet = generate_fleet(machines=3, days=20, seed=3)
    for name in TABLE_NAMES:
        frame = pd.concat([fleet.table(name).astype(object), pd.DataFrame(SOURCE_FAULTS[name])], ignore_index=True)
        frame.to_csv(folder / FILE_NAMES[name], index=False)
    return {name: pd.read_csv(folder / FILE_NAMES[name], dtype=str) for name in TABLE_NAMES}


def corrected(row: pd.Series, name: TableName) -> pd.Series:
    """The row with a non-key value changed; tables whose columns are all key have no correction."""
    column = {"telemetry": "volt", "machines": "age"}[name]
    return row.copy().set_axis(row.index).where(row.index != column, str(float(row[column]) + 1))


def test_every_row_of_every_table_is_accounted_for_on_dirty_data(
    isolated_project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = dirty_source(isolated_project / "input")
    monkeypatch.setenv("PDM_DATA_SOURCE", "local")
    monkeypatch.setenv("PDM_DATA_DIR", str(isolated_project / "input"))
    landing = isolated_project / "landing"
    landing.mkdir()
    monkeypatch.setenv("PDM_LANDING_DIR", str(landing))

    landed: list[Path] = []
    expected: dict[TableName, dict[str, int]] = {}
    for name in TABLE_NAMES:
        identical = source[name].iloc[[2]]  # a row as the source has it, landed again
        corrections = [corrected(source[name].iloc[1], name)] if name in ("telemetry", "machines") else []
        first = pd.concat(
            [pd.DataFrame(NEW_GOOD[name] + NEW_BAD[name] + [UNUSABLE[name]]), identical, pd.DataFrame(corrections)],
            ignore_index=True,
        )
        second = pd.DataFrame([UNUSABLE[name]], columns=first.columns)
        for stamp, frame in (("20160101T0000", first), ("20160102T0000", second)):
            landed.append(landing / f"{name}_{stamp}.csv")
            frame.to_csv(landed[-1], index=False)
        expected[name] = {
            "source_rows": len(source[name]),
            "landed_file_rows": len(first) + len(second),
            "landed_rows": len(NEW_GOOD[name]) + len(NEW_BAD[name]) + 1,
            "landed_replacing_rows": len(corrections),
            "landed_identical_rows": 2,  # the copy of a source row, the unusable key landed again
            "quarantined_rows": len(SOURCE_FAULTS[name]) + len(NEW_BAD[name]) + 1,
        }

    defs = load_defs()
    with dg.instance_for_test() as instance:
        result = materialize_ingest(defs, instance, landed)
    assert result.success
    for name in TABLE_NAMES:
        raw = output_metadata(result, f"raw_{name}")
        validated = output_metadata(result, f"validated_{name}")
        counted = {key: raw[key] for key in expected[name] if key in raw} | {
            "quarantined_rows": validated["quarantined_rows"]
        }
        assert counted == expected[name], name
        assert raw["source_rows"] + raw["landed_rows"] == raw["raw_rows"] == validated["raw_rows"], name
        assert raw["landed_file_rows"] == (
            raw["landed_rows"] + raw["landed_replacing_rows"] + raw["landed_identical_rows"]
        ), name
        assert validated["raw_rows"] == validated["validated_rows"] + validated["quarantined_rows"], name
        assert validated["validated_rows"] == validated["dagster/row_count"], name

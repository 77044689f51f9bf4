"""Validation: typed valid rows, quarantined rows with reasons, structural rejection; no row lost."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from pdm_assets.lib.data.sources import load_local
from pdm_assets.lib.data.tables import TABLE_NAMES
from pdm_assets.lib.data.validation import validate_all, validate_table


def raw_telemetry() -> pd.DataFrame:
    """Six rows as read from a CSV: strings for times, one bad of each kind."""
    return pd.DataFrame(
        {
            "datetime": [
                "2015-01-01 06:00:00",  # good
                "2015-01-01 07:00:00",  # good
                "not a time",  # unparseable
                "2015-01-01 06:00:00",  # duplicate of row 0
                "2015-01-01 08:30:00",  # not on the hour
                "2015-01-01 09:00:00",  # unknown machine
                "2015-01-01 10:00:00",  # volt out of range
                "2015-01-01 11:00:00",  # missing vibration
            ],
            "machineID": [1, 1, 1, 1, 1, 7, 1, 1],
            "volt": [170.0, 171.0, 172.0, 173.0, 174.0, 175.0, 4000.0, 170.0],
            "rotate": 450.0,
            "pressure": 100.0,
            "vibration": [40.0, 40.0, 40.0, 40.0, 40.0, 40.0, 40.0, None],
        }
    )


def test_bad_rows_go_to_quarantine_with_their_reason() -> None:
    outcome = validate_table("telemetry", raw_telemetry(), known_machines=[1, 2])
    assert outcome.passed
    assert outcome.valid["datetime"].dt.hour.tolist() == [6, 7]
    reasons = dict(zip(outcome.quarantine["raw_row"], outcome.quarantine["reason"], strict=True))
    assert set(reasons) == {2, 3, 4, 5, 6, 7}
    assert "not a valid ISO-8601 timestamp" in reasons[2]
    assert "duplicate" in reasons[3]
    assert "on_the_hour" in reasons[4]
    assert "machineID 7 is not in machines" in reasons[5]
    assert "4000.0" in reasons[6] and "in_range" in reasons[6]
    assert "vibration is missing" in reasons[7]
    kept = json.loads(outcome.quarantine.set_index("raw_row").at[6, "record"])
    assert kept["volt"] == 4000.0  # the original values travel with the reason


def test_valid_plus_quarantined_equals_raw() -> None:
    raw = raw_telemetry()
    outcome = validate_table("telemetry", raw, known_machines=[1])
    assert len(outcome.valid) + len(outcome.quarantine) == len(raw)


def test_valid_rows_are_strictly_typed() -> None:
    outcome = validate_table("telemetry", raw_telemetry(), known_machines=[1])
    dtypes = outcome.valid.dtypes.astype(str).to_dict()
    assert dtypes == {
        "datetime": "datetime64[ns]",
        "machineID": "int64",
        "volt": "float64",
        "rotate": "float64",
        "pressure": "float64",
        "vibration": "float64",
    }


@pytest.mark.parametrize(
    ("table", "raw", "reason"),
    [
        ("errors", {"datetime": ["2015-01-01 06:00:00"], "machineID": [1], "errorID": ["error9"]}, "error9"),
        ("maint", {"datetime": ["2015-01-01 06:00:00"], "machineID": [1], "comp": ["comp7"]}, "comp7"),
        (
            "failures",
            {"datetime": ["2099-01-01 06:00:00"], "machineID": [1], "failure": ["comp1"]},
            "not_in_the_future",
        ),
        ("machines", {"machineID": [1], "model": ["model9"], "age": [3]}, "model9"),
        ("machines", {"machineID": [1], "model": ["model1"], "age": [300]}, "in_range"),
        ("machines", {"machineID": [1], "model": ["model1"], "age": [2.5]}, "not a valid whole number"),
    ],
)
def test_unknown_codes_and_ranges_are_row_problems(
    table: str, raw: dict[str, list[object]], reason: str
) -> None:
    frame = pd.DataFrame(raw)
    good = {"errors": "error1", "maint": "comp1", "failures": "comp1"}
    if table in good:
        column = {"errors": "errorID", "maint": "comp", "failures": "failure"}[table]
        frame = pd.concat(
            [
                frame,
                pd.DataFrame({"datetime": ["2015-01-02 06:00:00"], "machineID": [1], column: [good[table]]}),
            ]
        )
    else:
        frame = pd.concat([frame, pd.DataFrame({"machineID": [2], "model": ["model2"], "age": [5]})])
    outcome = validate_table(table, frame, known_machines=[1, 2])  # type: ignore[arg-type]
    assert outcome.passed
    assert len(outcome.valid) == 1 and len(outcome.quarantine) == 1
    assert reason in outcome.quarantine["reason"].iloc[0]


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda f: f.drop(columns=["volt"]), "missing column 'volt'"),
        (lambda f: f.assign(extra=1), "unexpected column 'extra'"),
        (lambda f: f.iloc[:0], "no rows"),
        (lambda f: f.assign(volt="high"), "column 'volt' has no value of the expected type"),
    ],
)
def test_structural_problems_reject_the_whole_table(change, problem: str) -> None:  # type: ignore[no-untyped-def]
    raw = change(raw_telemetry())
    outcome = validate_table("telemetry", raw, known_machines=[1])
    assert not outcome.passed
    assert any(problem in p for p in outcome.structural_problems)
    assert outcome.valid.empty
    assert len(outcome.quarantine) == len(raw)  # even a rejected table loses no row


def test_validate_all_checks_every_table_against_the_valid_machines() -> None:
    """Machine 2 has an unknown model: it is quarantined, and so are the other tables' rows about it."""
    times = ["2015-01-01 06:00:00", "2015-01-01 06:00:00"]
    raw = {
        "telemetry": pd.DataFrame({"datetime": times, "machineID": [1, 2], "volt": 170.0, "rotate": 450.0,
                                   "pressure": 100.0, "vibration": 40.0}),
        "errors": pd.DataFrame({"datetime": times, "machineID": [1, 2], "errorID": "error1"}),
        "maint": pd.DataFrame({"datetime": times, "machineID": [1, 2], "comp": "comp1"}),
        "failures": pd.DataFrame({"datetime": times, "machineID": [1, 2], "failure": "comp1"}),
        "machines": pd.DataFrame({"machineID": [1, 2], "model": ["model1", "model9"], "age": [3, 4]}),
    }
    outcomes = validate_all(raw)
    assert list(outcomes) == list(TABLE_NAMES)
    assert outcomes["machines"].valid["machineID"].tolist() == [1]
    for name in ("telemetry", "errors", "maint", "failures"):
        assert outcomes[name].valid["machineID"].tolist() == [1]
        assert outcomes[name].quarantine["raw_row"].tolist() == [1]
        assert "machineID 2 is not in machines" in outcomes[name].quarantine["reason"].iloc[0]

@pytest.mark.real_data
def test_the_real_tables_pass_without_quarantine(real_data_dir: Path) -> None:
    tables = load_local(real_data_dir, "PdM_telemetry*.csv")
    for name, outcome in validate_all({name: tables.table(name) for name in TABLE_NAMES}).items():
        assert outcome.passed, outcome.structural_problems
        assert outcome.quarantine.empty, outcome.quarantine.head()
        assert len(outcome.valid) == len(tables.table(name))

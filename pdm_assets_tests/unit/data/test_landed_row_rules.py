"""Landed rows against the source (issue 14, item 3): the last writer wins on the natural key, the same content
twice changes nothing (also for rows whose key cannot be read), and every landed row is counted once."""

from __future__ import annotations

import pandas as pd

from pdm_assets.lib.data.landed_rows import append_rows

COLUMNS = ["datetime", "machineID", "volt", "rotate", "pressure", "vibration"]


def telemetry(*rows: tuple[object, ...]) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=COLUMNS)


def typed_source() -> pd.DataFrame:
    """As the synthetic source gives it: datetime64 and numbers, not text."""
    frame = telemetry(
        ("2015-01-01 06:00:00", 1, 4000.0, 450.0, 100.0, 40.0), ("2015-01-01 07:00:00", 1, 171.0, 450.0, 100.0, 40.0)
    )
    return frame.assign(datetime=pd.to_datetime(frame["datetime"]))


def test_a_correction_replaces_the_row_in_place() -> None:
    landed = telemetry(("2015-01-01T06:00:00", "1", "170", "450", "100", "40"))
    merged, counts = append_rows(typed_source(), landed, "telemetry")
    assert (counts.appended, counts.replacing, counts.identical) == (0, 1, 0)
    assert merged["volt"].astype(float).tolist() == [170.0, 171.0]


def test_the_same_values_spelled_differently_change_nothing() -> None:
    landed = telemetry(("2015-01-01T06:00:00", "1", "4000.0", "450", "100.00", "40"))
    merged, counts = append_rows(typed_source(), landed, "telemetry")
    assert (counts.appended, counts.replacing, counts.identical) == (0, 0, 1)
    assert merged.equals(typed_source())


def test_within_landed_rows_the_last_change_wins_and_a_repeat_is_identical() -> None:
    landed = telemetry(
        ("2016-01-01 00:00:00", 2, 1.0, 450, 100, 40),
        ("2016-01-01 00:00:00", 2, 2.0, 450, 100, 40),
        ("2016-01-01 00:00:00", 2, 2.0, 450, 100, 40),
    )
    merged, counts = append_rows(typed_source(), landed, "telemetry")
    assert (counts.file_rows, counts.appended, counts.replacing, counts.identical) == (3, 1, 1, 1)
    assert merged["volt"].astype(float).tolist() == [4000.0, 171.0, 2.0]


def test_rows_with_unusable_keys_are_kept_once_per_content() -> None:
    bad_keys = telemetry(("not a time", 1, 170, 450, 100, 40), ("2016-01-01 00:00:00", "x", 170, 450, 100, None))
    once, first = append_rows(typed_source(), bad_keys, "telemetry")
    twice, second = append_rows(once, bad_keys, "telemetry")
    assert first.appended == 2 and len(once) == 4
    assert (second.appended, second.identical) == (0, 2) and len(twice) == 4


def test_the_source_is_kept_as_given() -> None:
    """Duplicates already in the source stay for validation to quarantine; nothing landed, nothing changes."""
    source = pd.concat([typed_source(), typed_source()], ignore_index=True)
    merged, counts = append_rows(source, telemetry(), "telemetry")
    assert merged.equals(source) and counts.file_rows == 0

"""Labels on a timeline written by hand."""

from __future__ import annotations

import pandas as pd

from pdm_assets.lib.modelling.labels import build_labels

T0 = pd.Timestamp("2015-01-01 00:00")


def keys(hours: list[int], machine: int = 1) -> pd.DataFrame:
    return pd.DataFrame({"machineID": machine, "datetime": [T0 + pd.Timedelta(hours=h) for h in hours]})


def failures(rows: list[tuple[int, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "datetime": [T0 + pd.Timedelta(hours=h) for _, h, _ in rows],
            "machineID": [m for m, _, _ in rows],
            "failure": [c for _, _, c in rows],
        }
    )


def test_window_is_after_t_up_to_and_including_the_horizon() -> None:
    labels = build_labels(keys([0, 1, 24, 25, 47, 48, 49]), failures([(1, 48, "comp2")]), horizon_hours=24)
    # failure at 48 is in (t, t + 24] for t in [24, 48)
    assert labels["fails_comp2"].tolist() == [False, False, True, True, True, False, False]
    assert labels["label"].tolist() == ["none", "none", "comp2", "comp2", "comp2", "none", "none"]
    assert not labels["fails_comp1"].any()


def test_components_failing_together_are_all_flagged() -> None:
    labels = build_labels(keys([40]), failures([(1, 48, "comp4"), (1, 48, "comp1")]), horizon_hours=24)
    row = labels.iloc[0]
    assert row["fails_comp1"] and row["fails_comp4"] and row["failure"]
    assert row["failing_components"] == 2
    assert row["label"] == "comp1"  # a tie goes to the lowest-numbered component


def test_the_earliest_failure_names_the_label() -> None:
    labels = build_labels(keys([40]), failures([(1, 60, "comp1"), (1, 50, "comp3")]), horizon_hours=24)
    assert labels.iloc[0]["label"] == "comp3"
    assert labels.iloc[0]["failing_components"] == 2


def test_other_machines_failures_do_not_count() -> None:
    labels = build_labels(keys([40], machine=2), failures([(1, 48, "comp1")]), horizon_hours=24)
    assert not labels["failure"].any()


def test_a_longer_horizon_reaches_further_back() -> None:
    labels = build_labels(keys([0, 10]), failures([(1, 48, "comp3")]), horizon_hours=48)
    assert labels["failure"].tolist() == [True, True]

"""Time splits: configured dates when the data spans them, proportional cut points otherwise."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from pdm_assets.lib.modelling.split import plan_split

GUIDE = {"train_end": datetime(2015, 9, 30, 1), "test_start": datetime(2015, 10, 1, 1)}


def test_a_full_year_uses_the_configured_dates() -> None:
    plan = plan_split(
        datetime(2015, 1, 1, 6), datetime(2016, 1, 1, 5), horizon_hours=24, validation_fraction=0.2, **GUIDE
    )
    assert plan.kind == "configured"
    assert plan.test_start == datetime(2015, 10, 1, 1)
    assert plan.validation_end == datetime(2015, 9, 30, 1)
    assert plan.validation_start - plan.train_end >= timedelta(hours=24)
    assert plan.test_start - plan.validation_end >= timedelta(hours=24)


def test_a_quarter_falls_back_to_proportional_cut_points() -> None:
    plan = plan_split(
        datetime(2015, 1, 1, 6), datetime(2015, 4, 1, 5), horizon_hours=24, validation_fraction=0.2, **GUIDE
    )
    assert plan.kind == "proportional"
    assert datetime(2015, 3, 1) < plan.test_start < datetime(2015, 3, 20)
    assert plan.train_start < plan.train_end < plan.validation_start < plan.validation_end < plan.test_start


@pytest.mark.parametrize("horizon", [24, 48])
def test_no_label_window_crosses_a_boundary(horizon: int) -> None:
    plan = plan_split(
        datetime(2015, 1, 1, 6),
        datetime(2016, 1, 1, 5),
        horizon_hours=horizon,
        validation_fraction=0.2,
        **GUIDE,
    )
    assert plan.test_start - plan.validation_end >= timedelta(hours=horizon)
    assert plan.validation_start - plan.train_end >= timedelta(hours=horizon)


def test_parts_are_disjoint_and_ordered() -> None:
    times = pd.Series(pd.date_range("2015-01-01 06:00", "2015-12-31 23:00", freq="3h"))
    plan = plan_split(
        times.min().to_pydatetime(),
        times.max().to_pydatetime(),
        horizon_hours=24,
        validation_fraction=0.2,
        **GUIDE,
    )
    masks = {name: plan.part(times, name) for name in ("train", "validation", "test")}
    assert not (masks["train"] & masks["validation"]).any()
    assert not (masks["validation"] & masks["test"]).any()
    assert times[masks["train"]].max() < times[masks["validation"]].min()
    assert times[masks["test"]].min() >= pd.Timestamp(GUIDE["test_start"])


def test_too_little_data_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="too short"):
        plan_split(
            datetime(2015, 1, 1), datetime(2015, 1, 2), horizon_hours=24, validation_fraction=0.2, **GUIDE
        )

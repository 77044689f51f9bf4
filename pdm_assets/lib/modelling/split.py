"""Time splits with a gap of at least the horizon between train, validation and test."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

# Proportional fallback: share of the time range given to the test period.
PROPORTIONAL_TEST_SHARE = 0.2
# The guide's dates are used only when each period would hold at least this much data.
MIN_PERIOD = timedelta(days=14)


@dataclass(frozen=True)
class SplitPlan:
    """Half-open periods [start, end) for train, validation and test, and how they were chosen."""

    kind: str  # "configured" (the dates asked for) or "proportional" (the data does not span them)
    train_start: datetime
    train_end: datetime
    validation_start: datetime
    validation_end: datetime
    test_start: datetime
    test_end: datetime
    gap_hours: int

    def to_dict(self) -> dict[str, Any]:
        """Plain values for metadata and reports."""
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> SplitPlan:
        """A SplitPlan back from its `to_dict()` form (as carried in model metadata)."""
        return cls(
            kind=str(values["kind"]),
            train_start=datetime.fromisoformat(values["train_start"]),
            train_end=datetime.fromisoformat(values["train_end"]),
            validation_start=datetime.fromisoformat(values["validation_start"]),
            validation_end=datetime.fromisoformat(values["validation_end"]),
            test_start=datetime.fromisoformat(values["test_start"]),
            test_end=datetime.fromisoformat(values["test_end"]),
            gap_hours=int(values["gap_hours"]),
        )

    def part(self, times: pd.Series, name: str) -> pd.Series:
        """Boolean mask of the rows in one period: "train", "validation" or "test"."""
        start, end = {
            "train": (self.train_start, self.train_end),
            "validation": (self.validation_start, self.validation_end),
            "test": (self.test_start, self.test_end),
        }[name]
        return (times >= pd.Timestamp(start)) & (times < pd.Timestamp(end))


def plan_split(
    first: datetime,
    last: datetime,
    *,
    train_end: datetime,
    test_start: datetime,
    horizon_hours: int,
    validation_fraction: float,
) -> SplitPlan:
    """Train and validation before train_end, test from test_start; proportional cut points if out of range.

    Every boundary leaves a gap of at least the horizon, so no label window crosses into a later period.
    """
    gap = timedelta(hours=horizon_hours)
    end = last + timedelta(seconds=1)
    kind = "configured"
    if first + MIN_PERIOD * 2 + gap > train_end or test_start + MIN_PERIOD > end:
        kind = "proportional"
        span = end - first
        test_start = first + span * (1 - PROPORTIONAL_TEST_SHARE)
        test_start = _ceil_hour(test_start)
        train_end = test_start - gap
    return _periods(kind, first, min(train_end, test_start - gap), test_start, end, horizon_hours,
                    validation_fraction)


def plan_for_horizon(plan: SplitPlan, first: datetime, horizon_hours: int, validation_fraction: float) -> SplitPlan:
    """The same test period for a head with another horizon (and rows from `first`): its training and
    validation end at least `horizon_hours` before the test."""
    validation_end = min(plan.validation_end, plan.test_start - timedelta(hours=horizon_hours))
    return _periods(plan.kind, first, validation_end, plan.test_start, plan.test_end, horizon_hours,
                    validation_fraction)


def rolling_plans(
    first: datetime, last: datetime, *, warmup: timedelta, step: timedelta, horizon_hours: int,
    validation_fraction: float, max_folds: int | None = None,
) -> list[SplitPlan]:
    """Expanding windows: test periods of `step` from first + warmup to the end, each after training and
    validation on everything up to `horizon_hours` before it; the step grows to keep at most `max_folds`."""
    end = last + timedelta(seconds=1)
    origin = _ceil_hour(first + warmup)
    if max_folds is not None and origin < end:
        step = max(step, timedelta(hours=math.ceil((end - origin) / timedelta(hours=1) / max_folds)))
    plans = []
    while origin < end:
        closing = min(origin + step, end)
        plans.append(_periods("rolling", first, origin - timedelta(hours=horizon_hours), origin, closing,
                              horizon_hours, validation_fraction))
        origin = closing
    return plans


def _periods(
    kind: str, first: datetime, validation_end: datetime, test_start: datetime, test_end: datetime,
    horizon_hours: int, validation_fraction: float,
) -> SplitPlan:
    """Validation as the last `validation_fraction` before validation_end, training before it, gaps of the horizon."""
    validation_start = _ceil_hour(validation_end - (validation_end - first) * validation_fraction)
    fit_end = validation_start - timedelta(hours=horizon_hours)
    if fit_end <= first:
        raise ValueError(
            f"data from {first} to {test_end} is too short for a {horizon_hours} h horizon split; "
            "use more days or a shorter horizon"
        )
    return SplitPlan(
        kind=kind,
        train_start=first,
        train_end=fit_end,
        validation_start=validation_start,
        validation_end=validation_end,
        test_start=test_start,
        test_end=test_end,
        gap_hours=horizon_hours,
    )


def _ceil_hour(moment: datetime) -> datetime:
    floored = moment.replace(minute=0, second=0, microsecond=0)
    return floored if floored == moment else floored + timedelta(hours=1)

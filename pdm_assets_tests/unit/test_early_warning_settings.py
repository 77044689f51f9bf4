"""The early warning's settings refuse combinations that could never work, naming the values and the fix."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from pdm_assets.settings import Settings


def test_the_early_warning_looks_further_ahead_than_the_answer() -> None:
    with pytest.raises(ValidationError, match="PDM_EARLY_WARNING_HORIZON_HOURS=24 must be longer than"):
        Settings(early_warning_horizon_hours=24)


def test_the_baseline_is_whole_days_and_ends_after_its_gap() -> None:
    with pytest.raises(ValidationError, match="multiple of 24"):
        Settings(baseline_lookback_hours=250)
    with pytest.raises(ValidationError, match="greater than or equal to 120"):
        Settings(baseline_lookback_hours=96)

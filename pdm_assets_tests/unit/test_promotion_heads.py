"""The gate's criteria for the second head: named as the head's, a missing head, a champion head of another kind."""

from __future__ import annotations

from pdm_assets.lib.evaluation.promotion import (
    Criterion,
    decide,
    for_head,
    incomparable_champion,
    missing_head,
)


def test_a_heads_criterion_says_whose_it_is() -> None:
    named = for_head(Criterion("beats_baselines", False, "does not beat error_rule", {"x": 1}), "early_warning", 48)
    assert named.name == "early_warning_beats_baselines"
    assert named.reason == "48 h early_warning head: does not beat error_rule" and named.details == {"x": 1}
    decision = decide([Criterion("beats_baselines", True, "ok"), named])
    assert not decision.promote and "FAIL early_warning_beats_baselines: 48 h early_warning head" in decision.reason


def test_a_version_without_the_head_cannot_replace_a_champion_with_one() -> None:
    refused = missing_head("early_warning", champion_has_it=True, why="too little data")
    assert not refused.passed and "take the answer away" in refused.reason and "too little data" in refused.reason
    assert missing_head("early_warning", champion_has_it=False, why="too little data").passed


def test_a_champion_head_built_on_another_baseline_cannot_be_compared() -> None:
    metadata = {"horizon_hours": 48, "grid_hours": 3, "feature_columns": ["a"], "threshold": 0.2,
                "baseline_lookback_hours": 336}
    other = incomparable_champion(metadata, horizon_hours=48, grid_hours=3, available_columns=["a"],
                                  must_match={"baseline_lookback_hours": 240})
    assert other is not None and not other.passed
    assert "its baseline_lookback_hours is 336, the challenger's 240" in other.reason
    assert incomparable_champion(metadata, horizon_hours=48, grid_hours=3, available_columns=["a"],
                                 must_match={"baseline_lookback_hours": 336}) is None

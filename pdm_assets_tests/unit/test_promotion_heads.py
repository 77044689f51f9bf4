"""The gate's criteria for the second head: named as the head's, a missing head, a champion head of another kind."""

from __future__ import annotations

from pdm_assets.lib.evaluation.promotion import (
    Criterion,
    decide,
    for_head,
    incomparable_champion,
    missing_head,
    warns_earlier,
)

# The early warning's curve as the threshold falls: more events first alerted 36 h ahead, more false episodes.
CURVE = {"share_first_alerted_36h_ahead": [0.0, 0.2, 0.5, 0.8, None],
         "false_alarm_episodes_per_100_machine_days": [0.0, 0.5, 2.0, 6.0, 9.0]}


def rule(share: float | None, episodes: float | None) -> dict:
    return {"share_first_alerted_36h_ahead": share, "false_alarm_episodes_per_100_machine_days": episodes}


def test_the_early_warning_must_warn_earlier_than_the_error_rule_at_no_more_false_episodes() -> None:
    passed = warns_earlier(CURVE, {"error_rule": rule(0.1, 7.0)})
    assert passed.passed and passed.details["error_rule"]["best_share_at_no_more_episodes"] == 0.8
    strict = warns_earlier(CURVE, {"error_rule": rule(0.5, 2.0)})  # 0.5 at 2.0 is only a tie
    assert not strict.passed and "first-alerts no more events" in strict.reason
    assert not warns_earlier(CURVE, {"error_rule": rule(None, None)}).passed  # no event to compare on


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

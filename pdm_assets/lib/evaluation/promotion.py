"""The promotion gate: a new model version becomes `champion` only if it passes both criteria, for each of its
heads (the 24 h answer and the early warning, judged at their own horizons on the same test period).

1. It beats every baseline on the test period: at some threshold it announces at least as many failure
   events with no more false alarms than the baseline at its own operating point, one of them strictly
   (a baseline that announces every event is only matched: recall 1 at no more false alarms).
2. Its cost on its validation rows is not worse than the champion's on the same rows, beyond the noise:
   the machine-bootstrap interval of (challenger cost - champion cost) reaches 0 or below. With no champion
   yet this holds trivially.

For the early-warning head, criterion 1 asks what the head is for: at some threshold it first alerts a larger
share of the test events at least 36 h ahead than the error rule, with no more false-alarm episodes than the
rule (lib/evaluation/warning.py). It is not held to always-none: telemetry drifts without a failure too, so no
threshold of an early warning is free of false alarms. A version without an early-warning head (data too short
to fit one) cannot replace a champion that has one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from pdm_assets.lib.evaluation import bootstrap
from pdm_assets.lib.evaluation.events import EventView, event_view
from pdm_assets.lib.evaluation.metrics import scored_frame
from pdm_assets.lib.tracking import tracking

PROMOTED = "promoted"
EARLY_WARNING_BASELINES: tuple[str, ...] = ("error_rule",)
REJECTED = "rejected"


@dataclass(frozen=True)
class Criterion:
    """One test of the gate: passed or not, why, and the numbers behind it."""

    name: str
    passed: bool
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """Whether the version is promoted, with every criterion."""

    promote: bool
    reason: str
    criteria: tuple[Criterion, ...]

    @property
    def outcome(self) -> str:
        return PROMOTED if self.promote else REJECTED

    def to_dict(self) -> dict[str, Any]:
        return {"promote": self.promote, "outcome": self.outcome, "reason": self.reason,
                "criteria": [asdict(c) for c in self.criteria]}


@dataclass(frozen=True)
class PromotionOutcome:
    """The `promotion` asset's value: the candidate, who is champion afterwards, and the gate's decision."""

    candidate_version: str
    champion_version: str | None
    decision: Decision

    @property
    def promote(self) -> bool:
        return self.decision.promote

    @property
    def reason(self) -> str:
        return self.decision.reason


def beats_baselines(
    curve: Mapping[str, Sequence[float]], baselines: Mapping[str, Mapping[str, Any]]
) -> Criterion:
    """Criterion 1: for each baseline, a point of our (threshold, event recall, false alarms) curve dominates it.

    `curve` has equal-length lists threshold / event_recall / false_alarms_per_100_machine_days; each
    baseline has event_recall and false_alarms_per_100_machine_days at its own threshold.
    """
    recall = np.asarray(curve["event_recall"], dtype=np.float64)
    alarms = np.asarray(curve["false_alarms_per_100_machine_days"], dtype=np.float64)
    thresholds = np.asarray(curve["threshold"], dtype=np.float64)
    details: dict[str, Any] = {}
    failed: list[str] = []
    for name, figures in baselines.items():
        their_recall, their_alarms = figures.get("event_recall"), figures.get("false_alarms_per_100_machine_days")
        if their_recall is None or their_alarms is None or not np.isfinite([their_recall, their_alarms]).all():
            details[name] = {"beaten": False, "why": "the test period has no failure event to compare on"}
            failed.append(name)
            continue
        tolerance = 1e-9
        no_more_alarms = alarms <= their_alarms + tolerance
        # A baseline that announces every event cannot be beaten on recall: matching it is enough.
        perfect = their_recall >= 1.0 - tolerance
        dominates = no_more_alarms & (recall >= their_recall - tolerance) & (
            (recall > their_recall + tolerance) | (alarms < their_alarms - tolerance) | perfect
        )
        entry: dict[str, Any] = {"baseline_event_recall": their_recall, "baseline_false_alarms": their_alarms}
        if dominates.any():
            # The best such point: highest recall, then fewest false alarms.
            candidates = np.flatnonzero(dominates)
            best = candidates[np.lexsort((alarms[candidates], -recall[candidates]))[0]]
            entry |= {"beaten": True, "threshold": float(thresholds[best]), "event_recall": float(recall[best]),
                      "false_alarms": float(alarms[best])}
        else:
            reach = recall[no_more_alarms].max() if no_more_alarms.any() else float("nan")
            entry |= {"beaten": False, "best_event_recall_at_no_more_false_alarms": float(reach)}
            failed.append(name)
        details[name] = entry
    if failed:
        return Criterion("beats_baselines", False, f"does not beat {', '.join(failed)} on event recall at equal "
                         "or fewer false alarms (test period)", details)
    return Criterion("beats_baselines", True, f"beats all {len(details)} baselines on event recall at equal or "
                     "fewer false alarms (test period)", details)


def warns_earlier(curve: Mapping[str, Sequence[float | None]], baselines: Mapping[str, Mapping[str, Any]]) -> Criterion:
    """Criterion 1 of the early warning: for each baseline, a point of its warning curve (warning.warning_curve)
    with a larger share of events first alerted >= 36 h ahead at no more false-alarm episodes."""
    share = np.asarray([np.nan if v is None else v for v in curve["share_first_alerted_36h_ahead"]], dtype=float)
    episodes = np.asarray(curve["false_alarm_episodes_per_100_machine_days"], dtype=np.float64)
    details: dict[str, Any] = {}
    failed: list[str] = []
    for name, figures in baselines.items():
        their_share, their_episodes = figures.get("share_first_alerted_36h_ahead"), figures.get(
            "false_alarm_episodes_per_100_machine_days")
        if their_share is None or their_episodes is None:
            details[name] = {"earlier": False, "why": "the test period has no failure event to compare on"}
            failed.append(name)
            continue
        allowed = episodes <= their_episodes + 1e-9
        best = float(np.nanmax(share[allowed])) if allowed.any() and np.isfinite(share[allowed]).any() else 0.0
        earlier = best > their_share + 1e-9
        details[name] = {"earlier": earlier, "baseline_share": their_share, "baseline_episodes": their_episodes,
                         "best_share_at_no_more_episodes": best}
        if not earlier:
            failed.append(name)
    if failed:
        return Criterion("warns_earlier", False, f"first-alerts no more events >= 36 h ahead than {', '.join(failed)} "
                         "at equal or fewer false-alarm episodes (test period)", details)
    return Criterion("warns_earlier", True, f"first-alerts more events >= 36 h ahead than {', '.join(details)} at "
                     "equal or fewer false-alarm episodes (test period)", details)


def cost_by_machine(
    view: EventView, threshold: float, cost_missed: float, cost_false_alarm: float, machines: np.ndarray
) -> np.ndarray:
    """Each machine's alert cost: missed events times their cost plus false alarms times theirs.

    `machines` is sorted and distinct (as Resamples.machines); only its index is used, so no resample is drawn.
    """
    index = bootstrap.Resamples(machines, np.zeros((0, len(machines))))
    missed = bootstrap.per_machine(index, view.event_machine, (view.event_best_score < threshold).astype(float))
    alarms = bootstrap.per_machine(index, view.negative_machine, (view.negative_scores >= threshold).astype(float))
    return cost_missed * missed + cost_false_alarm * alarms


def not_worse_than_champion(
    validation: pd.DataFrame,
    failures: pd.DataFrame,
    *,
    challenger: tuple[np.ndarray, float],
    champion: tuple[np.ndarray, float],
    horizon_hours: int,
    grid_hours: int,
    cost_missed: float,
    cost_false_alarm: float,
    resamples: int = bootstrap.DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = bootstrap.DEFAULT_LEVEL,
) -> Criterion:
    """Criterion 2 on the same validation rows: (scores, threshold) of the challenger and of the champion."""
    machines = validation["machineID"].to_numpy(np.int64)
    draws = bootstrap.draw_machines(machines, resamples, seed)
    costs = []
    for scores, threshold in (challenger, champion):
        view = event_view(scored_frame(validation, scores), failures, horizon_hours, grid_hours)
        costs.append(cost_by_machine(view, threshold, cost_missed, cost_false_alarm, draws.machines))
    difference = draws.counts @ (costs[0] - costs[1])
    low, high = bootstrap.interval(difference, level)
    details = {
        "challenger_cost": float(costs[0].sum()),
        "champion_cost": float(costs[1].sum()),
        "difference": float(costs[0].sum() - costs[1].sum()),
        "difference_ci": [low, high],
        "validation_rows": len(validation),
    }
    passed = bool(low <= 0.0)
    verdict = "within the noise of" if costs[0].sum() > costs[1].sum() else "no worse than"
    reason = (
        f"validation cost {costs[0].sum():.0f} vs champion {costs[1].sum():.0f}: "
        + (f"{verdict} the champion's (95% CI of the difference [{low:.0f}, {high:.0f}])" if passed
           else f"worse beyond the noise (95% CI of the difference [{low:.0f}, {high:.0f}] is above 0)")
    )
    return Criterion("not_worse_than_champion", passed, reason, details)


def no_champion() -> Criterion:
    """Criterion 2 when no version holds the alias yet."""
    return Criterion("not_worse_than_champion", True, "no champion yet: nothing to compare with")


def already_champion(version: str) -> Criterion:
    """Criterion 2 when the challenger is the champion already (a re-run)."""
    return Criterion("not_worse_than_champion", True, f"version {version} is already the champion")


def incomparable_champion(
    metadata: Mapping[str, Any], *, horizon_hours: int, grid_hours: int, available_columns: Sequence[str],
    must_match: Mapping[str, Any] | None = None,
) -> Criterion | None:
    """A failed criterion when the champion cannot be scored on the challenger's rows; None when it can.

    `must_match` names further metadata the two must share (e.g. the baseline lookback its features used).
    """
    problems = [f"its {key} is {metadata.get(key)}, the challenger's {value}"
                for key, value in (must_match or {}).items() if metadata.get(key) != value]
    if metadata.get("horizon_hours") != horizon_hours:
        problems.append(f"its horizon is {metadata.get('horizon_hours')} h, the challenger's {horizon_hours} h")
    if metadata.get("grid_hours") != grid_hours:
        problems.append(f"its grid is {metadata.get('grid_hours')} h, the challenger's {grid_hours} h")
    missing = [c for c in metadata.get("feature_columns", []) if c not in set(available_columns)]
    if missing or "feature_columns" not in metadata or "threshold" not in metadata:
        problems.append(f"it needs features or metadata this data lacks: {missing or 'feature_columns/threshold'}")
    if not problems:
        return None
    return Criterion("not_worse_than_champion", False,
                     "the champion cannot be compared on the same rows (" + "; ".join(problems)
                     + "): promote by hand with `mlflow` if intended", {"problems": problems})


def for_head(criterion: Criterion, head: str, horizon_hours: int) -> Criterion:
    """A criterion of a second head, named and explained as that head's."""
    return replace(criterion, name=f"{head}_{criterion.name}",
                   reason=f"{horizon_hours} h {head} head: {criterion.reason}")


def missing_head(head: str, *, champion_has_it: bool, why: str) -> Criterion:
    """The criterion for a challenger without the head: it may not take the place of a champion with one."""
    if champion_has_it:
        return Criterion(f"{head}_head", False, f"the challenger has no {head} head ({why}) and the champion has "
                         "one: promoting it would take the answer away from the service")
    return Criterion(f"{head}_head", True, f"neither the challenger nor the champion has a {head} head ({why})")


def decide(criteria: Sequence[Criterion]) -> Decision:
    """Promote only when every criterion passed; the reason names each one."""
    passed = all(c.passed for c in criteria)
    reason = "; ".join(f"{'PASS' if c.passed else 'FAIL'} {c.name}: {c.reason}" for c in criteria)
    return Decision(passed, reason, tuple(criteria))


def record_decision(tracking_uri: str, registered_name: str, version: str, run_id: str, decision: Decision) -> None:
    """Tag the model version and its run with the outcome and the reason."""
    tags = {"promotion": decision.outcome, "promotion_reason": decision.reason[:5000]}
    with tracking(tracking_uri) as client:
        for key, value in tags.items():
            client.set_model_version_tag(registered_name, version, key, value)
            client.set_tag(run_id, key, value)

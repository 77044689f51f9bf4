"""The few lines `make run` ends with: what was read, what was trained, how good it is, where to look next."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEADLINE = (
    ("event_recall", "event recall", "{:.3f}"),
    ("false_alarms_per_100_machine_days", "false alarms per 100 machine-days", "{:.2f}"),
    ("row_pr_auc", "PR-AUC", "{:.3f}"),
)
NEXT_STEPS = (
    ("{reports}/model_card.md", "the model card: every figure with its interval, the baselines, the plots"),
    ("make ui", "the Dagster UI on http://127.0.0.1:3000: asset graph, runs, checks, metadata"),
    ("make serve", "the champion's bento on http://127.0.0.1:3100 (POST /predict, GET /model)"),
    ("make mlflow-ui", "MLflow on http://127.0.0.1:5000: runs, metrics and the registered model's `champion`"),
)


@dataclass(frozen=True)
class RunFacts:
    """What the Dagster instance and the reports hold after a run (None where an asset never materialized)."""

    data_source: str | None
    rows: dict[str, int | None]
    promotion: dict[str, Any]
    report: dict[str, Any] | None
    bento_tag: str | None
    image: str | None
    reports_dir: Path


def render_summary(facts: RunFacts) -> str:
    """A short plain-text summary; missing pieces are said, not skipped."""
    rows = ", ".join(f"{name} {count:,}" if count is not None else f"{name} not materialized"
                     for name, count in facts.rows.items())
    lines = ["", "== pdm-assets: what this run produced ==",
             f"data      {facts.data_source or 'unknown (raw tables not materialized)'}: {rows} rows"]
    lines += _model_lines(facts.promotion)
    lines += _figure_lines(facts.report)
    lines.append(f"serving   bento {facts.bento_tag or 'not built'}; image: {facts.image or 'not built'}")
    lines.append("next      " + "\n          ".join(
        f"{what.format(reports=facts.reports_dir)}: {why}" for what, why in NEXT_STEPS))
    return "\n".join(lines)


def _model_lines(promotion: dict[str, Any]) -> list[str]:
    if not promotion:
        return ["model     no promotion decision yet (the `promotion` asset did not materialize)"]
    outcome = promotion.get("outcome", "?")
    champion = promotion.get("champion_after", "?")
    became = "became champion" if outcome == "promoted" else f"stays a challenger (champion: {champion})"
    return [f"model     version {promotion.get('candidate_version', '?')} {became}",
            f"gate      {outcome}: {' '.join(str(promotion.get('reason', '?')).split())}"]


def _figure_lines(report: dict[str, Any] | None) -> list[str]:
    if report is None:
        return ["test      no evaluation report yet"]
    intervals = report.get("ci", {})
    level = report.get("ci_level", 0.95)
    parts = []
    for key, label, fmt in HEADLINE:
        value = report.get(key)
        shown = "n/a" if value is None else fmt.format(value)
        low, high = intervals.get(key, (None, None))
        if low is not None and high is not None:
            shown += f" [{fmt.format(low)}, {fmt.format(high)}]"
        parts.append(f"{label} {shown}")
    events = report.get("events")
    head = f"test      from {report.get('test_start', '?')}, {events} failure events, {level:.0%} CIs by machine:"
    return [head, "          " + "; ".join(parts)]

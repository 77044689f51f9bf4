"""One self-contained HTML page for the planner: today's worklist, the heat-map, each alert's reasons, the
realized outcomes so far and the champion's model card. Images are inlined as data URIs and the style is in
the page, so it opens from disk with no server and nothing fetched."""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pandas as pd
from markdown_it import MarkdownIt

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem auto; max-width: 1200px; color: #222; }
h1 { margin-bottom: 0.2rem; } .sub { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.6rem 0; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } tr.alert td { background: #fde8e8; }
.reasons li { margin: 0.1rem 0; } .up { color: #b00020; } .down { color: #1b6e20; }
img { max-width: 100%; border: 1px solid #eee; } section { margin-bottom: 2rem; }
.card { border: 1px solid #ddd; padding: 0 1rem; background: #fafafa; }
"""


def png_tag(name: str, data: bytes) -> str:
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img id="{html.escape(name)}" alt="{html.escape(name)}" src="data:image/png;base64,{encoded}">'


def worklist_table(worklist: pd.DataFrame) -> str:
    """The day's worklist as an HTML table; alert rows highlighted."""
    header = ["rank", "machine", "P(failure)", "alert", "likely component", *(
        f"h since {c.removeprefix('hours_since_replacement_')}" for c in worklist.columns
        if c.startswith("hours_since_replacement_")), "top reasons"]
    replaced = [c for c in worklist.columns if c.startswith("hours_since_replacement_")]
    rows = []
    for row in _records(worklist):
        p = row["failure_probability"]
        component = (f"{row['likely_component']} ({row['likely_component_probability']:.2f})"
                     if isinstance(row["likely_component"], str) else "-")
        cells = [str(row["rank"]), str(row["machineID"]), f"{p:.3g}" if p == p else str(row["status"]),
                 "yes" if row["alert"] else "", component, *(_hours(row[c]) for c in replaced),
                 html.escape("; ".join(str(row["reasons"]).split("; ")[:3]))]
        css = ' class="alert"' if row["alert"] else ""
        rows.append(f"<tr{css}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    return f'<table id="worklist"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _unscored(worklist: pd.DataFrame) -> str:
    """One line for the machines without a score that day (no telemetry), instead of a row each."""
    missing = worklist[worklist["failure_probability"].isna()]
    if missing.empty:
        return ""
    machines = ", ".join(str(m) for m in sorted(missing["machineID"]))
    return (f'<p id="unscored">{len(missing)} machine(s) not scored (too few hourly readings in the last 24 h): '
            f"{html.escape(machines)}</p>")


def _value(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _hours(value: float) -> str:
    return "-" if value != value else f"{value:.0f}"


def alert_reasons(worklist: pd.DataFrame) -> str:
    """Each alerting machine with every reason: value and contribution to the log-odds."""
    alerts = worklist[worklist["alert"]]
    if alerts.empty:
        return "<p>No machine alerts today.</p>"
    parts = []
    for row in _records(alerts):
        items = []
        for reason in json.loads(row["reason_details"]):
            direction = "up" if reason["contribution"] > 0 else "down"
            items.append(f'<li class="{direction}">{html.escape(reason["text"])} '
                         f'<small>({html.escape(reason["feature"])} = {html.escape(_value(reason["value"]))}, '
                         f'{reason["contribution"]:+.2f} log-odds)</small></li>')
        parts.append(f"<h3>machine {row['machineID']}: P(failure) {row['failure_probability']:.3f}, most likely "
                     f"{row['likely_component']}</h3><ul class=\"reasons\">{''.join(items)}</ul>")
    return "".join(parts)


def render_report(
    *,
    day: str,
    worklist: pd.DataFrame,
    heatmap_png: bytes,
    weekly: pd.DataFrame,
    outcomes_png: bytes | None,
    verdict: str,
    model_card_md: str,
    champion: Mapping[str, str],
    capacity: int,
) -> str:
    """The whole page as one HTML string."""
    alerts = int(worklist["alert"].sum())
    scored = worklist[worklist["failure_probability"].notna()]
    over = f" — <b>over the crew capacity of {capacity}</b>" if alerts > capacity else ""
    outcome_table = (weekly.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="-", border=0,
                                    table_id="outcomes") if len(weekly) else "<p>No resolved prediction yet.</p>")
    card = MarkdownIt("commonmark").enable("table").render(model_card_md) if model_card_md else "<p>No model card.</p>"
    champion_text = ", ".join(f"{html.escape(k)} {html.escape(str(v))}" for k, v in champion.items())
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Fleet risk {html.escape(day)}</title>
<style>{STYLE}</style></head><body>
<h1>Fleet risk for {html.escape(day)}</h1>
<p class="sub">{alerts} alert(s){over}; champion: {champion_text}; generated
{datetime.now().isoformat(timespec="seconds")}</p>
<section><h2>Worklist</h2>{worklist_table(scored)}{_unscored(worklist)}</section>
<section><h2>Fleet heat-map</h2>{png_tag("heatmap", heatmap_png)}</section>
<section><h2>Why each alert</h2>{alert_reasons(worklist)}</section>
<section><h2>Realized outcomes</h2><p>{html.escape(verdict)}</p>
{png_tag("outcomes", outcomes_png) if outcomes_png else ""}{outcome_table}</section>
<section><h2>Champion's model card</h2><div class="card">{card}</div></section>
</body></html>
"""


def inline_plots(card_md: str, plots: Mapping[str, bytes]) -> str:
    """The model card with its `plots/<name>.png` images inlined as data URIs (the page must stand alone)."""
    for name, data in plots.items():
        encoded = base64.b64encode(data).decode("ascii")
        card_md = card_md.replace(f"(plots/{name}.png)", f"(data:image/png;base64,{encoded})")
    return card_md

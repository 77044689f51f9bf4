"""The whole evaluation protocol (fitting included) on each of the Microsoft guide's three time splits.

`python -m pdm_assets.lib.evaluation.guide_splits [--splits 1 2 3]` writes reports/splits.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pdm_assets.lib.evaluation.assessment import CI_METRICS, OURS
from pdm_assets.lib.evaluation.protocol import ProtocolConfig, config_from, report, run_protocol
from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table, split_parts
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.modelling.labels import build_labels
from pdm_assets.lib.modelling.train import fit_and_tune

# The Microsoft Modelling Guide's splits: (train before, test from).
GUIDE_SPLITS: Mapping[int, tuple[datetime, datetime]] = {
    1: (datetime(2015, 7, 31, 1), datetime(2015, 8, 1, 1)),
    2: (datetime(2015, 8, 31, 1), datetime(2015, 9, 1, 1)),
    3: (datetime(2015, 9, 30, 1), datetime(2015, 10, 1, 1)),
}


def evaluate_guide_splits(
    features: pd.DataFrame, labels: pd.DataFrame, failures: pd.DataFrame, config: ProtocolConfig,
    splits: Sequence[int] = (1, 2, 3),
) -> list[dict[str, Any]]:
    """The whole protocol (search, thresholds, baselines, intervals) for each of the guide's splits."""
    table = modelling_table(features, labels)
    rows = []
    for split in splits:
        train_end, test_start = GUIDE_SPLITS[split]
        plan = plan_for_table(table, train_end=train_end, test_start=test_start, horizon_hours=config.horizon_hours,
                        validation_fraction=config.validation_fraction)
        parts = split_parts(table, plan)
        trained = fit_and_tune(
            parts["train"], parts["validation"], failures, feature_columns=FEATURE_COLUMNS,
            horizon_hours=config.horizon_hours, grid_hours=config.grid_hours, cost_missed=config.cost_missed,
            cost_false_alarm=config.cost_false_alarm, negative_fraction=config.negative_fraction, seed=config.seed,
        )
        result = run_protocol(table, failures, plan, trained, config, importance=False)
        rows.append({**report(result, data_source=""), "guide_split": split})
    return rows


def splits_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One line per split and model: the headline figures with their intervals."""
    lines = []
    for row in rows:
        for name, figures in [(OURS, row), *row["baselines"].items()]:
            lines.append({
                "split": row["guide_split"], "kind": row["split"]["kind"], "test_start": row["test_start"],
                "model": name,
                **{k: f"{_show(figures[k])} [{_show(figures['ci'][k][0])}, {_show(figures['ci'][k][1])}]"
                   for k in CI_METRICS},
            })
    return pd.DataFrame(lines)


def _show(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: Sequence[str] | None = None) -> None:
    """Evaluate the guide's splits on the configured data source and write reports/splits.json."""
    from threadpoolctl import threadpool_limits

    from pdm_assets.lib.data.sources import load_raw
    from pdm_assets.lib.data.tables import TABLE_NAMES
    from pdm_assets.lib.data.validation import validate_all
    from pdm_assets.lib.modelling.features import build_features
    from pdm_assets.settings import get_settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3], choices=sorted(GUIDE_SPLITS))
    args = parser.parse_args(argv)
    settings = get_settings()
    raw = load_raw(settings).tables
    valid = {name: outcome.valid for name, outcome in validate_all({n: raw.table(n) for n in TABLE_NAMES}).items()}
    features = build_features(valid["telemetry"], valid["errors"], valid["maint"], valid["machines"],
                              grid_hours=settings.scoring_grid_hours)
    labels = build_labels(features, valid["failures"], settings.horizon_hours)
    config = config_from(settings)
    with threadpool_limits(settings.training_threads, user_api="openmp"):
        rows = evaluate_guide_splits(features, labels, valid["failures"], config, args.splits)
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    path = settings.reports_dir / "splits.json"
    path.write_text(json.dumps({"data_source": raw.source, "splits": rows}, indent=2, default=str))
    print(splits_table(rows).to_markdown(index=False))
    print(f"written to {Path(path).resolve()}")


if __name__ == "__main__":
    main()

"""Serving set-up, run in a trained project's environment: the bento, request bodies and the in-process floor.

`python -m pdm_assets_tests.benchmarks.prepare OUT_DIR POINTS` (cwd and PDM_ settings those of a project whose pipeline
has registered a champion) materializes the `bento` asset, writes the request bodies both servers get, and
times the work a request cannot avoid: features for one history and predict_proba on one row.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from pdm_assets.lib.serving.bento import BuiltBento

FLOOR_REPEATS = 300
FLOOR_WARMUP = 20


def median_ms(work: Callable[[], object], repeats: int = FLOOR_REPEATS) -> float:
    """Median wall time of `work()` in milliseconds, after a few warm-up calls."""
    for _ in range(FLOOR_WARMUP):
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def scoring_points(telemetry: pd.DataFrame, grid_hours: int, after: pd.Timestamp, count: int) -> pd.DataFrame:
    """`count` scoring points of the grid at or after `after` (else in the last quarter), spread over machines."""
    from pdm_assets.lib.modelling.features import grid_score_times

    points = grid_score_times(telemetry, grid_hours)
    first, last = points["datetime"].min(), points["datetime"].max()
    points = points[points["datetime"] >= min(after, last - (last - first) / 4)]
    chosen = points.sample(n=min(count, len(points)), random_state=0)
    return chosen.sort_values(["machineID", "datetime"]).reset_index(drop=True)


def json_row(values: Sequence[Any]) -> list[Any]:
    """A feature row as JSON values: numpy scalars as Python numbers, NaN kept (MLflow's parser reads it)."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


def build_bento() -> BuiltBento:
    """Materialize the `bento` asset of this project (the champion must be registered)."""
    import dagster as dg

    from pdm_assets.definitions import defs as load

    defs = load.load_fn()  # `@dg.definitions` makes a loader: the code location's Definitions
    result = dg.materialize(
        cast(list[Any], list(defs.assets or [])),
        selection=dg.AssetSelection.assets("bento"),
        resources=defs.resources,
        instance=dg.DagsterInstance.ephemeral(),
    )
    built: BuiltBento = result.output_for_node("bento")
    return built


def main(argv: Sequence[str]) -> None:
    out_dir, count = Path(argv[0]), int(argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    from threadpoolctl import threadpool_limits

    from pdm_assets.lib.data.sources import load_raw
    from pdm_assets.lib.serving.bento import load_champion
    from pdm_assets.lib.serving.history_arrays import features_for_histories
    from pdm_assets.lib.serving.requests_from_tables import histories_from_tables
    from pdm_assets.lib.serving.schema import Limits, MachineHistory
    from pdm_assets.settings import get_settings

    settings = get_settings()
    started = time.perf_counter()
    bento = build_bento()
    bento_seconds = time.perf_counter() - started
    champion = load_champion(settings.mlflow_tracking_uri, settings.registered_model_name)
    contract = champion.contract
    tables = load_raw(settings).tables
    points = scoring_points(tables.telemetry, contract.grid_hours, pd.Timestamp(settings.test_start), count)
    histories = histories_from_tables(tables.telemetry, tables.errors, tables.maint, tables.machines, points)
    limits = Limits(max(settings.max_batch, len(histories)), settings.max_telemetry_rows, settings.max_event_rows)
    features = features_for_histories(histories, limits=limits)
    columns = list(contract.feature_columns)
    rows = [json_row(r) for r in features[columns].itertuples(index=False, name=None)]
    history_json = [json.loads(h.model_dump_json()) for h in histories]
    bodies = {
        "ours_single": [{"histories": [h]} for h in history_json],
        "ours_batch": [{"histories": history_json}],
        "peer_single": [{"dataframe_split": {"columns": columns, "data": [row]}} for row in rows],
        "peer_batch": [{"dataframe_split": {"columns": columns, "data": rows}}],
    }
    for name, content in bodies.items():
        (out_dir / f"{name}.json").write_text(json.dumps(content))

    # The floor, with one BLAS/OpenMP thread as the service scores.
    pipeline = champion.pipeline
    one_row = features[columns].iloc[[0]]
    one_history = histories[:1]
    one_body = json.dumps(history_json[0])
    with threadpool_limits(1):
        floor = {
            "predict_one_row_ms": median_ms(lambda: pipeline.predict_proba(one_row)),
            "features_one_history_ms": median_ms(lambda: features_for_histories(one_history, limits=limits)),
            "parse_one_history_ms": median_ms(lambda: MachineHistory.model_validate_json(one_body)),
            "predict_100_rows_ms": median_ms(lambda: pipeline.predict_proba(features[columns]), repeats=50),
            "features_100_histories_ms": median_ms(lambda: features_for_histories(histories, limits=limits),
                                                   repeats=50),
        }
        expected = 1.0 - pipeline.predict_proba(features[columns])[:, 0]
    summary = {
        "bento_tag": bento.tag,
        "bentoml_home": str(settings.bentoml_home.resolve()),
        "model_uri": f"models:/{contract.registered_name}@champion",
        "registered_version": contract.registered_version,
        "tracking_uri": settings.mlflow_tracking_uri,
        "bento_build_seconds": round(bento_seconds, 2),
        "histories": len(histories),
        "telemetry_rows_per_history": float(np.mean([len(h.telemetry) for h in histories])),
        "expected_failure_probability": expected.tolist(),
        "floor": floor,
    }
    (out_dir / "prepared.json").write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1:])

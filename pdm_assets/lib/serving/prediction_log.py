"""What the service predicted, logged through `bentoml.monitor` and read back by the pipeline.

The service logs one record per scored history (BentoML's default monitor writes JSON lines to
`<PDM_PREDICTION_LOG_DIR>/pdm_predictions/data/data.<worker>.log`, rotated daily); the `prediction_outcomes`
asset reads every file there and joins the records with the failures that land later.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

MONITOR_NAME = "pdm_predictions"
# column: (BentoML role, BentoML data type)
COLUMNS: dict[str, tuple[str, str]] = {
    "machine_id": ("feature", "categorical"),
    "as_of": ("feature", "categorical"),
    "failure_probability": ("prediction", "numerical"),
    "alert": ("prediction", "categorical"),
    "threshold": ("prediction", "numerical"),
    "horizon_hours": ("prediction", "numerical"),
    "model_version": ("prediction", "categorical"),
}


class Monitor(Protocol):
    def log_batch(self, data_batch: Sequence[Any], name: str, role: str, data_type: str) -> None: ...


def log_predictions(monitor: Monitor, predictions: Sequence[Any]) -> None:
    """One record per prediction (objects with the COLUMNS as attributes), as columns of equal length."""
    for column, (role, data_type) in COLUMNS.items():
        values = [getattr(p, column) for p in predictions]
        if column == "as_of":
            values = [v.isoformat() for v in values]
        monitor.log_batch(values, column, role, data_type)


def monitor_options(log_dir: Path) -> dict[str, str]:
    """The default monitor's options: its files go under `log_dir` whatever BentoML's configuration says."""
    return {"log_path": str(log_dir)}


def read_prediction_log(log_dir: Path) -> pd.DataFrame:
    """Every logged prediction under `log_dir` (all workers, rotated files too), oldest first."""
    folder = Path(log_dir) / MONITOR_NAME / "data"
    records = []
    for path in sorted(folder.glob("data.*.log*")) if folder.exists() else []:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError as error:
                raise ValueError(f"{path} line {number} is not a JSON record ({error}); a partly written line "
                                 "means the service stopped mid-write: delete that line") from error
    columns = ["machine_id", "as_of", "failure_probability", "alert", "threshold", "horizon_hours",
               "model_version", "timestamp", "request_id"]
    frame = pd.DataFrame(records, columns=columns)
    frame["as_of"] = pd.to_datetime(frame["as_of"])
    frame["alert"] = frame["alert"].astype(bool)
    return frame.sort_values(["as_of", "machine_id"], kind="stable").reset_index(drop=True)

"""Metadata helpers that make an asset readable in the Dagster UI."""

from __future__ import annotations

from typing import Any

import dagster as dg
import pandas as pd

PREVIEW_ROWS = 5


def frame_metadata(frame: pd.DataFrame) -> dict[str, Any]:
    """Row count, time range and machine count where present, and a small preview."""
    metadata: dict[str, Any] = {"dagster/row_count": len(frame)}
    if "datetime" in frame.columns and len(frame):
        times = pd.to_datetime(frame["datetime"], errors="coerce")
        metadata |= {"start": str(times.min()), "end": str(times.max())}
    if "machineID" in frame.columns:
        metadata["machines"] = int(pd.to_numeric(frame["machineID"], errors="coerce").nunique())
    metadata["preview"] = dg.MetadataValue.md(frame.head(PREVIEW_ROWS).to_markdown(index=False))
    return metadata

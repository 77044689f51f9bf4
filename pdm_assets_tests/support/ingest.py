"""Landing-folder helpers for the Dagster-level ingest tests: a fresh code location, sensor ticks, ingest runs."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd

from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.settings import get_settings

TELEMETRY_HEADER = "datetime,machineID,volt,rotate,pressure,vibration\n"
INGEST = dg.AssetSelection.assets("raw_telemetry", "validated_telemetry").required_multi_asset_neighbors()



def tick(instance: dg.DagsterInstance, cursor: str | None) -> tuple[dg.SensorResult | dg.SkipReason, str | None]:
    """One evaluation of the landing sensor with the settings of the environment; its result and new cursor."""
    from pdm_assets.defs.ingest.sensors import landing_sensor

    resources = {"settings": ProjectSettings.of(get_settings())}
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    result = landing_sensor(context)
    assert isinstance(result, dg.SensorResult | dg.SkipReason)
    after = result.cursor if isinstance(result, dg.SensorResult) and result.cursor is not None else context.cursor
    return result, after


def requested_files(result: dg.SensorResult | dg.SkipReason) -> list[str]:
    """Names of the files the tick's run request carries; none for a skip."""
    if not isinstance(result, dg.SensorResult) or not result.run_requests:
        return []
    config = result.run_requests[0].run_config["ops"]["raw_tables"]["config"]
    return [Path(p).name for p in config["landed_files"]]


def run_request(
    defs: dg.Definitions, instance: dg.DagsterInstance, request: dg.RunRequest
) -> dg.ExecuteInProcessResult:
    """What the daemon does with a run request: the ingest job with its config and tags."""
    job = defs.resolve_job_def("ingest_landed_files")
    return job.execute_in_process(
        run_config=request.run_config, instance=instance, tags=request.tags, raise_on_error=False
    )


def materialize_ingest(
    defs: dg.Definitions, instance: dg.DagsterInstance, landed: list[Path] | None = None
) -> dg.ExecuteInProcessResult:
    """Raw and validated tables in one run, with `landed` files handed to raw_tables as the sensor would."""
    config = {"landed_files": [str(p) for p in landed or []]}
    return dg.materialize(
        list(defs.assets or []),
        selection=INGEST,
        resources=defs.resources,
        instance=instance,
        run_config={"ops": {"raw_tables": {"config": config}}},
        raise_on_error=False,
    )


def telemetry_rows(hours: int, machine: int = 1, start: str = "2016-01-01") -> str:
    """Hourly plausible readings for one machine after the synthetic fleet's range, as CSV lines."""
    times = pd.date_range(start, periods=hours, freq="h")
    return "".join(f"{t:%Y-%m-%d %H:%M:%S},{machine},170.0,450.0,100.0,40.0\n" for t in times)


def output_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, object]:
    """The metadata values of the run's materialization of `asset`."""
    events = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == asset]
    assert events, f"{asset} was not materialized"
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}

"""`make report`: score the latest complete day if it has no worklist yet, then the outcomes and the page."""

from datetime import date
from pathlib import Path

import dagster as dg
import pandas as pd

from pdm_assets.defs.resources import build_resources
from pdm_assets.lib.planning.fleet_risk import complete_days
from pdm_assets.lib.planning.storage import stored_days
from pdm_assets.settings import Settings


def make_report(settings: Settings) -> Path:
    """reports/fleet_report.html for the latest day the validated telemetry completes."""
    from pdm_assets.definitions import defs as lazy

    loaded = lazy()
    defs = dg.Definitions(assets=loaded.assets, asset_checks=loaded.asset_checks, jobs=loaded.jobs,
                          resources=build_resources(settings))
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("validated_telemetry"))
        end = event.asset_materialization.metadata.get("end") if event and event.asset_materialization else None
        if end is None:
            raise SystemExit("no validated telemetry yet: run `make run` first")
        days = complete_days(pd.Timestamp(str(end.value)).to_pydatetime(), None, settings.fleet_risk_start)
        if not days:
            raise SystemExit(f"the validated telemetry ends at {end.value}, before PDM_FLEET_RISK_START")
        day: date = days[-1]
        if day not in stored_days(settings.fleet_risk_dir):
            scored = defs.resolve_job_def("score_fleet_days").execute_in_process(
                instance=instance, partition_key=day.isoformat(), raise_on_error=False)
            if not scored.success:
                raise SystemExit(f"scoring {day} failed; see the run in the Dagster UI (make ui)")
        done = dg.materialize([*(defs.assets or []), *(defs.asset_checks or [])],
                              selection=dg.AssetSelection.assets("prediction_outcomes", "fleet_report"),
                              resources=defs.resources, instance=instance, raise_on_error=False)
        if not done.success:
            raise SystemExit("prediction_outcomes or fleet_report failed; see the run in the Dagster UI (make ui)")
    return settings.reports_dir / "fleet_report.html"

"""The landing sensor: new files in PDM_LANDING_DIR request a run that appends them to the raw tables."""

import json

import dagster as dg

from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.data.landing import landed_problems, reject, scan_landing

CURSOR_LIMIT = 10_000

ingest_landed_files = dg.define_asset_job(
    "ingest_landed_files",
    selection=dg.AssetSelection.assets("raw_telemetry").required_multi_asset_neighbors(),
    description="Appends landed files to the raw tables; automation refreshes everything downstream.",
)


@dg.sensor(
    job=ingest_landed_files,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches PDM_LANDING_DIR; good files are appended, bad ones moved to rejected/ with a reason.",
)
def landing_sensor(context: dg.SensorEvaluationContext, settings: ProjectSettings) -> dg.SensorResult | dg.SkipReason:
    """One run per tick for all new good files; the cursor remembers name, size and mtime of each file seen."""
    project = settings.get()
    seen: list[str] = json.loads(context.cursor) if context.cursor else []
    known = set(seen)
    new = [f for f in scan_landing(project.landing_dir, project.landing_settle_seconds) if f.fingerprint not in known]
    if not new:
        return dg.SkipReason(f"no new files in {project.landing_dir}")
    good, rejected = [], []
    for landed in new:
        problems = landed_problems(landed)
        if problems:
            target = reject(landed, problems)
            rejected.append(f"{landed.path.name}: {'; '.join(problems)}")
            context.log.warning(f"rejected {landed.path.name} → {target}: {'; '.join(problems)}")
        else:
            good.append(landed)
    cursor = json.dumps((seen + [f.fingerprint for f in new])[-CURSOR_LIMIT:])
    if not good:
        return dg.SensorResult(skip_reason=dg.SkipReason("rejected " + " | ".join(rejected)), cursor=cursor)
    request = dg.RunRequest(
        run_key="|".join(f.fingerprint for f in good),
        run_config={"ops": {"raw_tables": {"config": {"landed_files": [str(f.path.resolve()) for f in good]}}}},
        tags={
            "pdm/landed_files": ",".join(f.path.name for f in good)[:4000],
            **({"pdm/rejected": " | ".join(rejected)[:4000]} if rejected else {}),
        },
    )
    return dg.SensorResult(run_requests=[request], cursor=cursor)

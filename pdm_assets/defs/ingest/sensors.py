"""The landing sensor: complete new files in PDM_LANDING_DIR request a run that appends them to the raw tables."""

import time

import dagster as dg

from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.data.landing import landed_problems, reject, scan_landing
from pdm_assets.lib.data.landing_ticks import LandingCursor, RunState, plan_tick

LANDING_REQUEST_TAG = "pdm/landing_request"
_FAILED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}

ingest_landed_files = dg.define_asset_job(
    "ingest_landed_files",
    selection=dg.AssetSelection.assets("raw_telemetry").required_multi_asset_neighbors(),
    description="Appends landed files to the raw tables; automation refreshes everything downstream.",
)


def _run_state(instance: dg.DagsterInstance, key: str) -> RunState:
    runs = instance.get_runs(filters=dg.RunsFilter(tags={LANDING_REQUEST_TAG: key}), limit=1)
    if not runs:
        return "missing"
    if runs[0].status == dg.DagsterRunStatus.SUCCESS:
        return "succeeded"
    return "failed" if runs[0].status in _FAILED else "in_flight"


@dg.sensor(
    job=ingest_landed_files,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches PDM_LANDING_DIR; good files are appended, bad ones moved to rejected/ with a reason.",
)
def landing_sensor(context: dg.SensorEvaluationContext, settings: ProjectSettings) -> dg.SensorResult | dg.SkipReason:
    """One run at a time for the complete good files; files leave landing/ only when their run succeeds, so a
    failed run's files are requested again."""
    project = settings.get()
    cursor = LandingCursor.parse(context.cursor)
    state = _run_state(context.instance, cursor.request.key) if cursor.request else None
    now = time.time()
    plan = plan_tick(cursor, scan_landing(project.landing_dir), state, now, project.landing_settle_seconds)
    waiting = "; ".join(plan.waiting)
    good, rejected = [], []
    for landed in plan.ready:
        problems = landed_problems(landed)
        if problems:
            target = reject(landed, problems)
            rejected.append(f"{landed.path.name}: {'; '.join(problems)}")
            context.log.warning(f"rejected {landed.path.name} → {target}: {'; '.join(problems)}")
        else:
            good.append(landed)
    if rejected and not good:
        return dg.SensorResult(skip_reason=dg.SkipReason("rejected " + " | ".join(rejected)), cursor=plan.cursor.dump())
    if not good:
        context.update_cursor(plan.cursor.dump())
        return dg.SkipReason(f"no new files to request in {project.landing_dir}" + (f": {waiting}" if waiting else ""))
    key = plan.cursor.start_request(good, now)
    request = dg.RunRequest(
        run_key=key,
        run_config={"ops": {"raw_tables": {"config": {"landed_files": [str(f.path) for f in good]}}}},
        tags={
            LANDING_REQUEST_TAG: key,
            "pdm/landed_files": ",".join(f.path.name for f in good)[:4000],
            **({"pdm/rejected": " | ".join(rejected)[:4000]} if rejected else {}),
        },
    )
    return dg.SensorResult(run_requests=[request], cursor=plan.cursor.dump())

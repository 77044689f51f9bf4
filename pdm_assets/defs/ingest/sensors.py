"""The landing sensor: complete new files in PDM_LANDING_DIR request a run that appends them to the raw tables."""

import time

import dagster as dg

from pdm_assets.defs.automation import SENSOR_INTERVAL_SECONDS
from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.data.landing import reject, scan_landing
from pdm_assets.lib.data.landing_groups import CheckedFile, check_landed_file, files_by_group
from pdm_assets.lib.data.landing_ticks import LandingCursor, Request, RunState, plan_tick, request_state

LANDING_REQUEST_TAG = "pdm/landing_request"
_FAILED = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
_PARTITION_TAG = "dagster/partition"  # the tag Dagster sets on a partitioned run

ingest_landed_files = dg.define_asset_job(
    "ingest_landed_files",
    selection=dg.AssetSelection.assets("raw_telemetry").required_multi_asset_neighbors(),
    description="Appends landed files to the raw tables; automation refreshes everything downstream.",
)


def _state(run: dg.DagsterRun) -> RunState:
    if run.status == dg.DagsterRunStatus.SUCCESS:
        return "succeeded"
    return "failed" if run.status in _FAILED else "in_flight"


def _run_state(instance: dg.DagsterInstance, request: Request) -> RunState:
    """The state of the request's runs, the latest of each machine group (a re-executed run replaces its first)."""
    latest: dict[str | None, dg.DagsterRun] = {}
    for run in instance.get_runs(filters=dg.RunsFilter(tags={LANDING_REQUEST_TAG: request.key})):  # newest first
        latest.setdefault(run.tags.get(_PARTITION_TAG), run)
    return request_state([_state(run) for run in latest.values()], request.runs)


@dg.sensor(
    job=ingest_landed_files,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Watches PDM_LANDING_DIR; good files are appended, bad ones moved to rejected/ with a reason.",
)
def landing_sensor(context: dg.SensorEvaluationContext, settings: ProjectSettings) -> dg.SensorResult | dg.SkipReason:
    """One request at a time for the complete good files: one run, or with PDM_MACHINE_GROUPS > 1 one run per
    group the files touch. Files leave landing/ only when a run succeeds, so a failed run's files are requested
    again."""
    project = settings.get()
    cursor = LandingCursor.parse(context.cursor)
    state = _run_state(context.instance, cursor.request) if cursor.request else None
    now = time.time()
    plan = plan_tick(cursor, scan_landing(project.landing_dir), state, now, project.landing_settle_seconds)
    waiting = "; ".join(plan.waiting)
    good: list[CheckedFile] = []
    rejected: list[str] = []
    for landed in plan.ready:
        checked = check_landed_file(landed, project.machine_groups)
        if checked is None:
            continue  # gone since the listing: nothing to request
        if checked.problems:
            target = reject(landed, checked.problems)
            rejected.append(f"{landed.path.name}: {'; '.join(checked.problems)}")
            context.log.warning(f"rejected {landed.path.name} → {target}: {'; '.join(checked.problems)}")
        else:
            good.append(checked)
    if rejected and not good:
        return dg.SensorResult(skip_reason=dg.SkipReason("rejected " + " | ".join(rejected)), cursor=plan.cursor.dump())
    if not good:
        context.update_cursor(plan.cursor.dump())
        return dg.SkipReason(f"no new files to request in {project.landing_dir}" + (f": {waiting}" if waiting else ""))
    runs = files_by_group(good, project.machine_groups)
    key = plan.cursor.start_request([f.landed for f in good], now, runs=len(runs))
    requests = [
        dg.RunRequest(
            run_key=key if group is None else f"{key}-{group}",
            partition_key=group,  # set only with machine groups: one group leaves the job unpartitioned
            run_config={"ops": {"raw_tables": {"config": {"landed_files": [str(f.path) for f in files]}}}},
            tags={
                LANDING_REQUEST_TAG: key,
                "pdm/landed_files": ",".join(f.path.name for f in files)[:4000],
                **({"pdm/rejected": " | ".join(rejected)[:4000]} if rejected else {}),
            },
        )
        for group, files in runs.items()
    ]
    return dg.SensorResult(run_requests=requests, cursor=plan.cursor.dump())

"""The planner's view: the daily `fleet_risk` worklist, `prediction_outcomes` with its `realized_recall` check,
and the `fleet_report` page."""

import json
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from threadpoolctl import threadpool_limits

from pdm_assets.defs.automation import after_updates_or
from pdm_assets.defs.logs import lib_progress
from pdm_assets.defs.partitions import PerGroup, fan_in
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.data.groups import combined
from pdm_assets.lib.evaluation.plots import markdown_image
from pdm_assets.lib.monitoring.drift import push_registry
from pdm_assets.lib.planning import outcomes as realized
from pdm_assets.lib.planning.fleet_risk import Champion, complete_days, day_summary, fleet_worklists, top_markdown
from pdm_assets.lib.planning.plots import outcome_trends, risk_heatmap
from pdm_assets.lib.planning.report import inline_plots, render_report
from pdm_assets.lib.planning.storage import read_worklists, stored_days, write_worklists
from pdm_assets.lib.serving.prediction_log import read_prediction_log
from pdm_assets.settings import Settings, get_settings

GROUP = "planning"
HEATMAP_DAYS = 30
CAPACITY_CHECK = "crew_capacity"
RECALL_CHECK = "realized_recall"
CHAMPION_FILES = ["evaluation.json", "model_card.md", "plots"]


def fleet_risk_asset(partitions: dg.DailyPartitionsDefinition, machine_groups: int = 1) -> dg.AssetsDefinition:
    every_group = fan_in(machine_groups)

    @dg.asset(
        name="fleet_risk",
        group_name=GROUP,
        kinds={"pandas", "parquet"},
        partitions_def=partitions,
        # A backfill of many days is one run: the tables are loaded and the features computed once.
        backfill_policy=dg.BackfillPolicy.single_run(),
        # The whole fleet is ranked each day: every machine group's tables.
        ins={f"validated_{name}": dg.AssetIn(partition_mapping=every_group)
             for name in ("telemetry", "errors", "maint", "machines")},
        check_specs=[dg.AssetCheckSpec(CAPACITY_CHECK, asset="fleet_risk", blocking=False,
                                       description="Warns when a day's alerts exceed PDM_MAINTENANCE_CAPACITY.")],
    )
    def fleet_risk(
        context: dg.AssetExecutionContext,
        settings: ProjectSettings,
        mlflow: MLflowResource,
        validated_telemetry: PerGroup,
        validated_errors: PerGroup,
        validated_maint: PerGroup,
        validated_machines: PerGroup,
    ):  # no return annotation: with a check spec Dagster reads one as the outputs' types
        """Every machine scored by the champion at 23:00 of each day, ranked, with the reasons of each alert;
        one Parquet and one CSV file per day in PDM_FLEET_RISK_DIR."""
        config = settings.get()
        window = context.partition_time_window
        days = [window.start.date() + timedelta(days=k) for k in range((window.end - window.start).days)]
        loaded = mlflow.load_alias()
        if loaded is None:
            raise dg.Failure("no champion to score the fleet with: materialize model, evaluation and promotion "
                             "first (the promotion gate sets the `champion` alias)")
        champion = Champion.of(loaded.pipeline, loaded.version, loaded.metadata)
        with lib_progress(context), threadpool_limits(config.training_threads, user_api="openmp"):
            worklist = fleet_worklists(champion, combined(validated_telemetry), combined(validated_errors),
                                       combined(validated_maint), combined(validated_machines), days)
        written = write_worklists(worklist, config.fleet_risk_dir)
        summary = day_summary(worklist, config.maintenance_capacity)
        latest = worklist[worklist["day"] == days[-1]]
        recent = read_worklists(config.fleet_risk_dir, days[-1] - timedelta(days=HEATMAP_DAYS - 1), days[-1])
        over = summary[summary["over_capacity"]]
        capacity = dg.AssetCheckResult(
            check_name=CAPACITY_CHECK,
            passed=over.empty,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "capacity": config.maintenance_capacity,
                "max_alerts_per_day": int(summary["alerts"].max()),
                "days_over_capacity": dg.MetadataValue.md(over.to_markdown(index=False) if len(over) else "none"),
            },
        )
        return dg.MaterializeResult(
            metadata={
                "days": len(days),
                "machines": int(worklist["machineID"].nunique()),
                "scored": int(worklist["failure_probability"].notna().sum()),
                "alerts": int(worklist["alert"].sum()),
                "champion_version": champion.version,
                "threshold": champion.threshold,
                f"top_20_{days[-1].isoformat()}": dg.MetadataValue.md(top_markdown(latest)),
                "alerts_per_day": dg.MetadataValue.md(summary.tail(31).to_markdown(index=False)),
                "heatmap": dg.MetadataValue.md(markdown_image("heatmap", risk_heatmap(recent, champion.threshold))),
                "files": dg.MetadataValue.path(str(Path(written[-1]).parent)),
            },
            check_results=[capacity],
        )

    return fleet_risk


def fleet_risk_sensor(job: Any, first_day: date) -> dg.SensorDefinition:
    @dg.sensor(
        name="fleet_risk_sensor",
        job=job,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="When validated telemetry reaches a new day's 23:00, scores that day (several days: one run).",
    )
    def sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        event = context.instance.get_latest_materialization_event(dg.AssetKey("validated_telemetry"))
        if event is None or event.asset_materialization is None:
            return dg.SkipReason("validated_telemetry has not been materialized")
        cursor = json.loads(context.cursor) if context.cursor else {}
        seen = f"{event.run_id}@{event.timestamp}"  # which materialization was read last
        if cursor.get("seen") == seen:
            return dg.SkipReason("no new validated telemetry")
        end = event.asset_materialization.metadata.get("end")
        if end is None:
            return dg.SkipReason("the latest validated_telemetry has no `end` (an empty table)")
        through = date.fromisoformat(cursor["through"]) if cursor.get("through") else None
        days = complete_days(pd.Timestamp(str(end.value)).to_pydatetime(), through, first_day)
        new_cursor = json.dumps({"seen": seen,
                                 "through": (days[-1] if days else through or first_day).isoformat()})
        if not days:
            return dg.SensorResult(skip_reason=dg.SkipReason("no newly completed day"), cursor=new_cursor)
        first, last = days[0].isoformat(), days[-1].isoformat()
        request = dg.RunRequest(
            run_key=f"fleet_risk:{first}:{last}",
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        )
        return dg.SensorResult(run_requests=[request], cursor=new_cursor)

    return sensor


@dg.asset(
    group_name=GROUP,
    kinds={"pandas"},
    deps=["fleet_risk"],
    automation_condition=after_updates_or("0 6 * * *") & ~dg.AutomationCondition.any_deps_in_progress(),
    check_specs=[dg.AssetCheckSpec(RECALL_CHECK, asset="prediction_outcomes", blocking=False,
                                   description="Fails when realized event recall over the last K weeks is below "
                                               "the champion's test-time CI; a failure requests retraining.")],
)
def prediction_outcomes(
    settings: ProjectSettings,
    mlflow: MLflowResource,
    validated_failures: PerGroup,
    validated_telemetry: PerGroup,
):  # no return annotation: with a check spec Dagster reads one as the outputs' types
    """The stored worklists and the service's logged predictions against the failures that landed later:
    event recall, false alarms per 100 machine-days, median lead time and top-N precision per week."""
    config = settings.get()
    weekly, verdict, champion_recall = _outcomes(config, mlflow, combined(validated_failures),
                                                 combined(validated_telemetry))
    published = _publish(config, realized.outcome_registry(weekly, verdict, champion_recall))
    figures = {"weeks": int(weekly["week"].nunique()) if len(weekly) else 0,
               **{f"realized_recall_{source}": value for source, value in verdict.realized.items()}}
    plot = ({"plot": dg.MetadataValue.md(markdown_image("outcomes", outcome_trends(weekly, champion_recall)))}
            if len(weekly) else {})
    return dg.MaterializeResult(
        value=weekly,
        metadata={
            **figures,
            "weekly": dg.MetadataValue.md(weekly.to_markdown(index=False, floatfmt=".3g") if len(weekly) else "none"),
            **plot,
            **published,
        },
        check_results=[dg.AssetCheckResult(
            check_name=RECALL_CHECK,
            passed=verdict.passed,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "reason": verdict.reason,
                "weeks": ", ".join(verdict.weeks) or "none",
                "champion_test_event_recall": champion_recall if champion_recall is not None else "none",
                "bound": verdict.bound if verdict.bound is not None else "none",
                **{f"realized_{s}": v for s, v in verdict.realized.items()},
                **{f"events_{s}": v for s, v in verdict.events.items()},
            },
        )],
    )


def _outcomes(
    config: Settings, mlflow: MLflowResource, failures: pd.DataFrame, telemetry: pd.DataFrame
) -> tuple[pd.DataFrame, realized.RecallVerdict, float | None]:
    champion = mlflow.load_alias()
    horizon = int(champion.metadata["horizon_hours"]) if champion else config.horizon_hours
    report = _champion_files(mlflow, champion.version)[0] if champion else None
    recall, ci = realized.champion_test_recall(report)
    predictions = pd.concat([
        realized.worklist_predictions(read_worklists(config.fleet_risk_dir)),
        realized.logged_predictions(read_prediction_log(config.prediction_log_dir), horizon),
    ], ignore_index=True)
    until = realized.observed_until(telemetry["datetime"])
    weekly = realized.weekly_outcomes(predictions, failures, until, horizon, config.outcome_top_n)
    verdict = realized.realized_recall(weekly, recall, ci, config.realized_recall_weeks,
                                       config.realized_recall_min_events)
    return weekly, verdict, recall


def _champion_files(mlflow: MLflowResource, version: str) -> tuple[dict[str, Any] | None, str, dict[str, bytes]]:
    """The champion's evaluation report, model card and plots, as its evaluation logged them to MLflow."""
    with tempfile.TemporaryDirectory() as folder:
        found = mlflow.download_run_files(version, CHAMPION_FILES, Path(folder))
        report = json.loads(found["evaluation.json"].read_text()) if "evaluation.json" in found else None
        card = found["model_card.md"].read_text() if "model_card.md" in found else ""
        plots = {p.stem: p.read_bytes() for p in found["plots"].glob("*.png")} if "plots" in found else {}
    return report, card, plots


def _publish(config: Settings, registry: Any) -> dict[str, str]:
    config.metrics_dir.mkdir(parents=True, exist_ok=True)
    (config.metrics_dir / "pdm_outcomes.prom").write_text(realized.outcome_prometheus_text(registry))
    if not config.pushgateway_url:
        return {}
    failure = push_registry(registry, config.pushgateway_url, realized.PUSHGATEWAY_JOB)
    if failure:  # a gateway that is down costs the dashboard one update, not the check's verdict
        dg.get_dagster_logger().warning(failure)
    return {"pushgateway": failure or f"pushed to {config.pushgateway_url}"}


@dg.asset(group_name=GROUP, kinds={"html"}, deps=["fleet_risk", "prediction_outcomes"],
          automation_condition=after_updates_or("0 6 * * *") & ~dg.AutomationCondition.any_deps_in_progress())
def fleet_report(settings: ProjectSettings, mlflow: MLflowResource, prediction_outcomes: pd.DataFrame
                 ) -> dg.MaterializeResult:
    """reports/fleet_report.html: the latest day's worklist, the heat-map, each alert's reasons, realized
    outcomes and the champion's model card, in one page that opens from disk."""
    config = settings.get()
    days = stored_days(config.fleet_risk_dir)
    if not days:
        raise dg.Failure(f"no stored worklist in {config.fleet_risk_dir}: materialize a fleet_risk partition first")
    day = days[-1]
    worklist = read_worklists(config.fleet_risk_dir, day, day)
    recent = read_worklists(config.fleet_risk_dir, day - timedelta(days=HEATMAP_DAYS - 1), day)
    champion = mlflow.load_alias()
    report, card, plots = _champion_files(mlflow, champion.version) if champion else (None, "", {})
    recall, ci = realized.champion_test_recall(report)
    verdict = realized.realized_recall(prediction_outcomes, recall, ci, config.realized_recall_weeks,
                                       config.realized_recall_min_events)
    threshold = float(worklist["threshold"].iloc[0])
    page = render_report(
        day=day.isoformat(), worklist=worklist, heatmap_png=risk_heatmap(recent, threshold),
        weekly=prediction_outcomes,
        outcomes_png=outcome_trends(prediction_outcomes, recall) if len(prediction_outcomes) else None,
        verdict=verdict.reason, model_card_md=inline_plots(card, plots),
        champion={"version": champion.version if champion else "none", "threshold": f"{threshold:.4f}"},
        capacity=config.maintenance_capacity,
    )
    path = config.reports_dir / "fleet_report.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page)
    return dg.MaterializeResult(metadata={"day": day.isoformat(), "alerts": int(worklist["alert"].sum()),
                                          "path": dg.MetadataValue.path(str(path.resolve())),
                                          "bytes": len(page.encode())})


@dg.definitions
def planning() -> dg.Definitions:
    """The partitions start at PDM_FLEET_RISK_START, read when the code location loads."""
    settings = get_settings()
    first_day = settings.fleet_risk_start
    partitions = dg.DailyPartitionsDefinition(start_date=first_day.isoformat())
    fleet_risk = fleet_risk_asset(partitions, settings.machine_groups)
    job = dg.define_asset_job("score_fleet_days", selection=[fleet_risk], partitions_def=partitions,
                              description="Scores the fleet at the end of the given days (fleet_risk partitions).")
    return dg.Definitions(assets=[fleet_risk, prediction_outcomes, fleet_report], jobs=[job],
                          sensors=[fleet_risk_sensor(job, first_day)])

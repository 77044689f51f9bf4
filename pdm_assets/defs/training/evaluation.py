"""The `evaluation` asset: the untouched test period scored once, beside the baselines, and a second horizon."""

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
from threadpoolctl import threadpool_limits

from pdm_assets.defs.automation import AFTER_SCORES
from pdm_assets.defs.logs import lib_progress
from pdm_assets.defs.partitions import PerGroup
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.data.groups import by_group, combined
from pdm_assets.lib.evaluation import plots, protocol
from pdm_assets.lib.evaluation.model_card import build_model_card, results_table
from pdm_assets.lib.evaluation.scored import FleetBaselines, GroupScores, protocol_from_scores
from pdm_assets.lib.modelling.registered import RegisteredModel

GROUP = "training"
HEADLINE = ("row_pr_auc", "row_f1", "event_recall", "false_alarms_per_100_machine_days", "lead_time_median_h",
            "threshold", "positive_rate")


@dg.asset(group_name=GROUP, kinds={"sklearn", "mlflow"}, automation_condition=AFTER_SCORES)
def evaluation(
    context: dg.AssetExecutionContext,
    settings: ProjectSettings,
    model: RegisteredModel,
    baselines: FleetBaselines,
    scored_rows: PerGroup,
    validated_failures: PerGroup,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[dict[str, Any]]:
    """The untouched test period, scored once per machine group, aggregated beside the baselines; the early-warning
    head at its horizon; report, plots, card."""
    config = settings.get()
    groups: dict[str, GroupScores] = by_group(scored_rows)
    stale = sorted(key or "fleet" for key, scores in groups.items() if scores.model_version != model.version)
    if stale:  # scores of another version would be judged at this version's thresholds
        raise dg.Failure(f"scored_rows of {', '.join(stale)} are not from model version {model.version}: "
                         "materialize scored_rows for every group first (the automation does it next)")
    context.log.info(f"aggregating the scores of {len(groups)} machine group(s)")
    with lib_progress(context), threadpool_limits(config.training_threads, user_api="openmp"):
        result = protocol_from_scores(list(groups.values()), combined(validated_failures), model.split,
                                      model.trained, model.early_warning, protocol.config_from(config),
                                      early_warning_hours=config.early_warning_horizon_hours)
    result.importance = baselines.importance
    second = next(iter(result.horizons.values()), {})
    if "skipped" in second:
        context.log.warning(f"the {second['horizon_hours']} h evaluation was skipped: {second['skipped']}")
    report = protocol.report(result, data_source=model.data_source, extra={
        "model_version": model.version,
        "generated_at": datetime.now().isoformat(timespec="seconds"),
    })
    images = _figures(result)
    paths = _write_outputs(config.reports_dir, report, images, model)
    run_id = model.record.run_id
    for path in paths["files"]:
        mlflow.log_artifact(run_id, path)
    for path in paths["plots"]:
        mlflow.log_artifact(run_id, path, "plots")
    mlflow.log_metrics(run_id, {f"test_{k}": v for k, v in report.items() if isinstance(v, float)})
    mlflow.log_metrics(run_id, {f"test_{name}_{k}": v for name, figures in report["baselines"].items()
                                for k, v in figures.items() if isinstance(v, float)})
    return dg.MaterializeResult(
        value=report,
        metadata={
            **{k: report[k] for k in HEADLINE if report[k] is not None},
            "data_source": model.data_source,
            "split_kind": result.plan.kind,
            "machine_groups": len(groups),
            "results": dg.MetadataValue.md(results_table(report)),
            "ci": dg.MetadataValue.json(report["ci"]),
            "comparisons": dg.MetadataValue.json(report["comparisons"]),
            **{f"plot_{name}": dg.MetadataValue.md(plots.markdown_image(name, data)) for name, data in images.items()},
            "report": dg.MetadataValue.path(str(paths["files"][0].resolve())),
            "model_card": dg.MetadataValue.path(str(paths["files"][1].resolve())),
        },
    )


def _figures(result: protocol.ProtocolResult) -> dict[str, bytes]:
    scored = {name: result.assessments[name].test_scores for name in ("ours", "ours_no_telemetry", "guide_replica")}
    rule = result.assessments["error_rule"].metrics
    return plots.render(
        result.test_truth, scored, {"error_rule": (rule["row_recall"], rule["row_precision"])},
        {name: result.assessments[name].calibration for name in ("ours", "guide_replica")},
        result.ours.confusion, result.ours.lead_times_h, result.importance,
        horizon_hours=result.config.horizon_hours, grid_hours=result.config.grid_hours,
    )


def _write_outputs(reports_dir: Path, report: dict[str, Any], images: dict[str, bytes],
                   model: RegisteredModel) -> dict[str, list[Path]]:
    """reports/evaluation.json, reports/model_card.md and reports/plots/*.png."""
    plot_dir = reports_dir / "plots"
    plot_dir.mkdir(parents=True, exist_ok=True)
    plot_paths = []
    for name, data in images.items():
        path = plot_dir / f"{name}.png"
        path.write_bytes(data)
        plot_paths.append(path)
    report_path = reports_dir / "evaluation.json"
    report_path.write_text(json.dumps(report, indent=2, default=str))
    card_path = reports_dir / "model_card.md"
    card = build_model_card(report, model={**vars(model.record), "registry_uri": model.record.registry_uri},
                            plots=list(images))
    card_path.write_text(card)
    return {"files": [report_path, card_path], "plots": plot_paths}

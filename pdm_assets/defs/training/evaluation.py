"""The `evaluation` asset: the untouched test period scored once, beside the baselines, and a second horizon."""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
from threadpoolctl import threadpool_limits

from pdm_assets.defs.automation import SAFE_EAGER
from pdm_assets.defs.logs import lib_progress
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.evaluation import plots, protocol
from pdm_assets.lib.evaluation.model_card import build_model_card, results_table
from pdm_assets.lib.modelling.dataset import modelling_table
from pdm_assets.lib.modelling.registered import RegisteredModel
from pdm_assets.settings import Settings

GROUP = "training"
HEADLINE = ("row_pr_auc", "row_f1", "event_recall", "false_alarms_per_100_machine_days", "lead_time_median_h",
            "threshold", "positive_rate")


@dg.asset(group_name=GROUP, kinds={"sklearn", "mlflow"}, automation_condition=SAFE_EAGER)
def evaluation(
    context: dg.AssetExecutionContext,
    settings: ProjectSettings,
    model: RegisteredModel,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    validated_failures: pd.DataFrame,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[dict[str, Any]]:
    """Score the untouched test period once, beside the baselines; the early-warning head at its horizon (or, for
    a version without one, the 24 h model refitted at 48 h); report, plots, card."""
    config = settings.get()
    protocol_config = protocol.config_from(config)
    second = config.early_warning_horizon_hours if model.early_warning is None else model.early_warning.horizon_hours
    context.log.info(f"scoring the test period; the {second} h horizon in a second thread")
    # The second horizon scores (or fits) its own model: run it beside the main protocol (2 cores, 1 thread each).
    with lib_progress(context), ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_other_horizon, config, features, validated_failures, model, protocol_config, second)
        with threadpool_limits(config.training_threads, user_api="openmp"):
            result = protocol.run_protocol(modelling_table(features, labels), validated_failures, model.split,
                                           model.trained, protocol_config)
        result.horizons[str(second)] = pending.result()
    if "skipped" in result.horizons[str(second)]:
        context.log.warning(f"the {second} h evaluation was skipped: {result.horizons[str(second)]['skipped']}")
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
            "results": dg.MetadataValue.md(results_table(report)),
            "ci": dg.MetadataValue.json(report["ci"]),
            "comparisons": dg.MetadataValue.json(report["comparisons"]),
            **{f"plot_{name}": dg.MetadataValue.md(plots.markdown_image(name, data)) for name, data in images.items()},
            "report": dg.MetadataValue.path(str(paths["files"][0].resolve())),
            "model_card": dg.MetadataValue.path(str(paths["files"][1].resolve())),
        },
    )


def _other_horizon(
    config: Settings, features: pd.DataFrame, failures: pd.DataFrame, model: RegisteredModel,
    protocol_config: protocol.ProtocolConfig, hours: int,
) -> dict[str, Any]:
    """The protocol's second horizon in a worker thread (thread limits are per thread, so set them here)."""
    with threadpool_limits(config.training_threads, user_api="openmp"):
        try:
            if model.early_warning is not None:
                return protocol.early_warning_horizon(features, failures, model.trained, model.early_warning,
                                                      protocol_config)
            return protocol.other_horizon(features, failures, model.trained, protocol_config, horizon_hours=hours,
                                          train_end=config.train_end, test_start=config.test_start)
        except ValueError as too_short:  # e.g. a small fleet with no failure in that split's training rows
            return {"horizon_hours": hours, "skipped": str(too_short)}


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

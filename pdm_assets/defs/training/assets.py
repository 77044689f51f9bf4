"""Model training (registered in MLflow), its evaluation against baselines, and the promotion gate.

model -> evaluation -> promotion: only `promotion` moves the `champion` alias, and only through the gate.
"""

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import dagster as dg
import pandas as pd
from threadpoolctl import threadpool_limits

from pdm_assets.defs.automation import RETRAIN, SAFE_EAGER
from pdm_assets.defs.resources import MLflowResource
from pdm_assets.lib.evaluation import plots, protocol
from pdm_assets.lib.evaluation import promotion as gate
from pdm_assets.lib.evaluation.model_card import build_model_card, results_table
from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table, plan_from_dict, split_parts
from pdm_assets.lib.modelling.features import ERROR_LOOKBACK_HOURS, FEATURE_COLUMNS, TELEMETRY_LOOKBACK_HOURS
from pdm_assets.lib.modelling.train import TrainedModel, fit_and_tune, score_failure
from pdm_assets.lib.tracking import ModelRecord
from pdm_assets.settings import get_settings

GROUP = "training"


@dg.asset(group_name=GROUP, kinds={"sklearn", "mlflow"}, automation_condition=RETRAIN)
def model(
    context: dg.AssetExecutionContext,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    validated_failures: pd.DataFrame,
    raw_provenance: dict[str, Any],
    mlflow: MLflowResource,
) -> dg.MaterializeResult[dict[str, Any]]:
    """Fit on train, tune and threshold on validation, log and register a new MLflow version (no alias)."""
    settings = get_settings()
    table = modelling_table(features, labels)
    plan = plan_for_table(table, train_end=settings.train_end, test_start=settings.test_start,
                          horizon_hours=settings.horizon_hours, validation_fraction=settings.validation_fraction)
    parts = split_parts(table, plan)
    with threadpool_limits(settings.training_threads, user_api="openmp"):
        trained = fit_and_tune(
            parts["train"], parts["validation"], validated_failures,
            feature_columns=FEATURE_COLUMNS, horizon_hours=settings.horizon_hours,
            grid_hours=settings.scoring_grid_hours, cost_missed=settings.cost_missed_failure,
            cost_false_alarm=settings.cost_false_alarm, negative_fraction=settings.negative_sample_fraction,
            seed=settings.random_seed,
        )
    contract = {
        "threshold": trained.threshold,
        "f1_threshold": trained.f1_threshold,
        "horizon_hours": settings.horizon_hours,
        "grid_hours": settings.scoring_grid_hours,
        "telemetry_lookback_hours": TELEMETRY_LOOKBACK_HOURS,
        "error_lookback_hours": ERROR_LOOKBACK_HOURS,
        "feature_columns": trained.feature_columns,
        "data_source": raw_provenance["data_source"],
        "training_start": plan.train_start.isoformat(),
        "training_end": plan.train_end.isoformat(),
        "split": plan.to_dict(),
        "costs": {"missed_failure": settings.cost_missed_failure, "false_alarm": settings.cost_false_alarm},
    }
    record = mlflow.log_and_register(
        trained.pipeline,
        input_example=parts["validation"][trained.feature_columns].head(5),
        params={**trained.params, **{f"split_{k}": v for k, v in plan.to_dict().items()},
                "horizon_hours": settings.horizon_hours, "grid_hours": settings.scoring_grid_hours,
                "threshold": trained.threshold, "f1_threshold": trained.f1_threshold,
                "negative_sample_fraction": settings.negative_sample_fraction},
        metrics={f"validation_{k}": v for k, v in trained.validation.items()},
        tags={"data_source": raw_provenance["data_source"], "split_kind": plan.kind},
        model_metadata=contract,
    )
    context.log.info(f"registered {record.registry_uri}; the `promotion` asset decides whether it becomes champion")
    return dg.MaterializeResult(
        value={"pipeline": trained.pipeline, "record": vars(record), "params": trained.params,
               "validation": trained.validation, **contract},
        metadata={
            "mlflow_run_id": record.run_id,
            "model_uri": record.model_uri,
            "registered_version": record.registry_uri,
            "data_source": raw_provenance["data_source"],
            "threshold": trained.threshold,
            "f1_threshold": trained.f1_threshold,
            "validation": dg.MetadataValue.json(trained.validation),
            "split": dg.MetadataValue.json(plan.to_dict()),
            "search": dg.MetadataValue.md(pd.DataFrame(trained.search).to_markdown(index=False)),
            "train_rows": len(parts["train"]),
            "validation_rows": len(parts["validation"]),
            "test_rows": len(parts["test"]),
        },
    )


def _trained(model: dict[str, Any]) -> TrainedModel:
    return TrainedModel(pipeline=model["pipeline"], feature_columns=list(model["feature_columns"]),
                        params=dict(model["params"]), threshold=model["threshold"],
                        f1_threshold=model["f1_threshold"], validation=dict(model["validation"]))


@dg.asset(group_name=GROUP, kinds={"sklearn", "mlflow"}, automation_condition=SAFE_EAGER)
def evaluation(
    context: dg.AssetExecutionContext,
    model: dict[str, Any],
    features: pd.DataFrame,
    labels: pd.DataFrame,
    validated_failures: pd.DataFrame,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[dict[str, Any]]:
    """Score the untouched test period once, beside the baselines; a second horizon; report, plots, card."""
    settings = get_settings()
    config = protocol.config_from(settings)
    trained = _trained(model)
    second = 48 if settings.horizon_hours != 48 else 24
    # The second horizon fits its own model: run it beside the main protocol (2 cores, 1 thread each).
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_other_horizon, features, validated_failures, trained, config, second)
        with threadpool_limits(settings.training_threads, user_api="openmp"):
            result = protocol.run_protocol(modelling_table(features, labels), validated_failures,
                                           plan_from_dict(model["split"]), trained, config)
        result.horizons[str(second)] = pending.result()
    if "skipped" in result.horizons[str(second)]:
        context.log.warning(f"the {second} h evaluation was skipped: {result.horizons[str(second)]['skipped']}")
    report = protocol.report(result, data_source=model["data_source"], extra={
        "model_version": model["record"]["version"],
        "generated_at": datetime.now().isoformat(timespec="seconds"),
    })
    images = _figures(result)
    paths = _write_outputs(settings.reports_dir, report, images, model)
    run_id = model["record"]["run_id"]
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
            **{k: report[k] for k in ("row_pr_auc", "row_f1", "event_recall", "false_alarms_per_100_machine_days",
                                       "lead_time_median_h", "threshold", "positive_rate") if report[k] is not None},
            "data_source": model["data_source"],
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
    features: pd.DataFrame, failures: pd.DataFrame, trained: TrainedModel, config: protocol.ProtocolConfig, hours: int
) -> dict[str, Any]:
    """The protocol's second horizon in a worker thread (thread limits are per thread, so set them here)."""
    settings = get_settings()
    with threadpool_limits(settings.training_threads, user_api="openmp"):
        try:
            return protocol.other_horizon(features, failures, trained, config, horizon_hours=hours,
                                          train_end=settings.train_end, test_start=settings.test_start)
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


def _write_outputs(reports_dir: Any, report: dict[str, Any], images: dict[str, bytes],
                   model: dict[str, Any]) -> dict[str, list[Any]]:
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
    record = model["record"]  # vars() of the ModelRecord the `model` asset registered
    card = build_model_card(report, model={**record, "registry_uri": ModelRecord(**record).registry_uri},
                            plots=list(images))
    card_path.write_text(card)
    return {"files": [report_path, card_path], "plots": plot_paths}


@dg.asset(group_name=GROUP, kinds={"mlflow"}, automation_condition=SAFE_EAGER)
def promotion(
    context: dg.AssetExecutionContext,
    model: dict[str, Any],
    evaluation: dict[str, Any],
    features: pd.DataFrame,
    labels: pd.DataFrame,
    validated_failures: pd.DataFrame,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[dict[str, Any]]:
    """Move the `champion` alias to the new version only if it passes the gate; record why either way."""
    settings = get_settings()
    version = model["record"]["version"]
    beats = gate.beats_baselines(evaluation["event_curve"], evaluation["baselines"])
    champion = mlflow.load_alias()
    before = champion.version if champion is not None else None
    if champion is None:
        against = gate.no_champion()
    elif champion.version == version:
        against = gate.already_champion(version)
    else:
        parts = split_parts(modelling_table(features, labels), plan_from_dict(model["split"]))
        validation = parts["validation"]
        against = gate.incomparable_champion(
            champion.metadata, horizon_hours=model["horizon_hours"], grid_hours=model["grid_hours"],
            available_columns=list(validation.columns),
        ) or gate.not_worse_than_champion(
            validation, validated_failures,
            challenger=(_scores(model["pipeline"], validation, model["feature_columns"]), model["threshold"]),
            champion=(_scores(champion.pipeline, validation, champion.metadata["feature_columns"]),
                      float(champion.metadata["threshold"])),
            horizon_hours=model["horizon_hours"], grid_hours=model["grid_hours"],
            cost_missed=settings.cost_missed_failure, cost_false_alarm=settings.cost_false_alarm,
            seed=settings.random_seed,
        )
    decision = gate.decide([beats, against])
    if decision.promote:
        mlflow.set_alias(version, reason=f"promotion gate: {decision.reason}")
    run_id = model["record"]["run_id"]
    gate.record_decision(mlflow.tracking_uri, mlflow.registered_model_name, version, run_id, decision)
    after = version if decision.promote else before
    log = context.log.info if decision.promote else context.log.warning
    log(f"version {version} {decision.outcome}; champion is {after}: {decision.reason}")
    return dg.MaterializeResult(
        value={"candidate_version": version, "champion_version": after, **decision.to_dict()},
        # The data version is the champion: serving rebuilds when it changes, not after a rejection.
        data_version=dg.DataVersion(str(after)),
        metadata={
            "outcome": decision.outcome,
            "candidate_version": version,
            "champion_before": str(before),
            "champion_after": str(after),
            "reason": dg.MetadataValue.md(decision.reason.replace("; ", "\n\n")),
            "criteria": dg.MetadataValue.json([c.__dict__ for c in decision.criteria]),
        },
    )


def _scores(pipeline: Any, rows: pd.DataFrame, columns: list[str]) -> Any:
    return score_failure(pipeline, rows[list(columns)])

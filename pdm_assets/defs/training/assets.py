"""Model training (tracked and registered in MLflow) and its test-period evaluation."""

import json
from datetime import datetime
from typing import Any

import dagster as dg
import pandas as pd

from pdm_assets.defs.resources import MLflowResource
from pdm_assets.lib.dataset import modelling_table, split_parts
from pdm_assets.lib.evaluation import evaluate_scores
from pdm_assets.lib.features import ERROR_LOOKBACK_HOURS, FEATURE_COLUMNS, TELEMETRY_LOOKBACK_HOURS
from pdm_assets.lib.split import plan_split
from pdm_assets.lib.train import failure_probability, fit_and_tune, predict_components
from pdm_assets.settings import get_settings

GROUP = "training"


@dg.asset(group_name=GROUP, kinds={"sklearn", "mlflow"})
def model(
    context: dg.AssetExecutionContext,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    validated_failures: pd.DataFrame,
    raw_provenance: dict[str, Any],
    mlflow: MLflowResource,
) -> dg.MaterializeResult[dict[str, Any]]:
    """Fit on train, tune and threshold on validation, log and register in MLflow, alias `champion`."""
    settings = get_settings()
    table = modelling_table(features, labels)
    plan = plan_split(
        table["datetime"].min().to_pydatetime(), table["datetime"].max().to_pydatetime(),
        train_end=settings.train_end, test_start=settings.test_start,
        horizon_hours=settings.horizon_hours, validation_fraction=settings.validation_fraction,
    )
    parts = split_parts(table, plan)
    trained = fit_and_tune(
        parts["train"], parts["validation"], validated_failures,
        feature_columns=FEATURE_COLUMNS, horizon_hours=settings.horizon_hours,
        grid_hours=settings.scoring_grid_hours, cost_missed=settings.cost_missed_failure,
        cost_false_alarm=settings.cost_false_alarm, negative_fraction=settings.negative_sample_fraction,
        seed=settings.random_seed,
    )
    contract = {
        "threshold": trained.threshold,
        "horizon_hours": settings.horizon_hours,
        "grid_hours": settings.scoring_grid_hours,
        "telemetry_lookback_hours": TELEMETRY_LOOKBACK_HOURS,
        "error_lookback_hours": ERROR_LOOKBACK_HOURS,
        "feature_columns": trained.feature_columns,
        "data_source": raw_provenance["data_source"],
        "training_start": plan.train_start.isoformat(),
        "training_end": plan.train_end.isoformat(),
        "split": plan.to_dict(),
    }
    record = mlflow.log_and_register(
        trained.pipeline,
        input_example=parts["validation"][trained.feature_columns].head(5),
        params={**trained.params, **{f"split_{k}": v for k, v in plan.to_dict().items()},
                "horizon_hours": settings.horizon_hours, "grid_hours": settings.scoring_grid_hours,
                "threshold": trained.threshold},
        metrics={f"validation_{k}": v for k, v in trained.validation.items()},
        tags={"data_source": raw_provenance["data_source"], "split_kind": plan.kind},
        model_metadata=contract,
    )
    mlflow.set_alias(record.version)
    context.log.info(f"registered {record.registry_uri} and moved alias 'champion' to it")
    return dg.MaterializeResult(
        value={"pipeline": trained.pipeline, "record": vars(record), **contract},
        metadata={
            "mlflow_run_id": record.run_id,
            "model_uri": record.model_uri,
            "registered_version": record.registry_uri,
            "data_source": raw_provenance["data_source"],
            "threshold": trained.threshold,
            "split": dg.MetadataValue.json(plan.to_dict()),
            "search": dg.MetadataValue.md(pd.DataFrame(trained.search).to_markdown(index=False)),
            "train_rows": len(parts["train"]),
            "validation_rows": len(parts["validation"]),
            "test_rows": len(parts["test"]),
        },
    )


@dg.asset(group_name=GROUP, kinds={"sklearn", "mlflow"})
def evaluation(
    model: dict[str, Any],
    features: pd.DataFrame,
    labels: pd.DataFrame,
    validated_failures: pd.DataFrame,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[dict[str, Any]]:
    """Score the untouched test period once; write reports/evaluation.json and log it to MLflow."""
    settings = get_settings()
    table = modelling_table(features, labels)
    test = table[pd.to_datetime(table["datetime"]) >= pd.Timestamp(model["split"]["test_start"])]
    scores = failure_probability(predict_components(model["pipeline"], test[model["feature_columns"]]))
    scored = test[["machineID", "datetime", "failure"]].assign(score=scores)
    figures = evaluate_scores(
        scored, validated_failures, threshold=model["threshold"],
        horizon_hours=model["horizon_hours"], grid_hours=model["grid_hours"],
    )
    report = {
        "data_source": model["data_source"],
        "horizon_hours": model["horizon_hours"],
        "test_start": model["split"]["test_start"],
        "split": model["split"],
        "model_version": model["record"]["version"],
        "generated_at": datetime.now().isoformat(timespec="seconds"),
        **figures,
    }
    settings.reports_dir.mkdir(parents=True, exist_ok=True)
    path = settings.reports_dir / "evaluation.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    mlflow.log_artifact(model["record"]["run_id"], path)
    mlflow.log_metrics(model["record"]["run_id"], {f"test_{k}": v for k, v in figures.items() if isinstance(v, float)})
    return dg.MaterializeResult(
        value=report,
        metadata={
            "row_pr_auc": figures["row_pr_auc"],
            "row_f1": figures["row_f1"],
            "event_recall": figures["event_recall"],
            "false_alarms_per_100_machine_days": figures["false_alarms_per_100_machine_days"],
            "data_source": model["data_source"],
            "report": dg.MetadataValue.path(str(path.resolve())),
        },
    )

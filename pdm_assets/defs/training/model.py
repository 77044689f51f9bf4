"""The `model` asset: fit, tune and threshold on validation, then register a new MLflow version (no alias)."""

import dagster as dg
import pandas as pd
from threadpoolctl import threadpool_limits

from pdm_assets.defs.automation import OUTCOMES, TRAINING_POOL, retrain
from pdm_assets.defs.logs import lib_progress
from pdm_assets.defs.partitions import PerGroup
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.data.groups import by_group, combined
from pdm_assets.lib.data.tables import Provenance
from pdm_assets.lib.modelling.dataset import plan_for_table, split_parts
from pdm_assets.lib.modelling.early_warning import (
    EARLY_WARNING,
    EarlyWarningHead,
    early_warning_plan,
    early_warning_table,
    fit_early_warning,
    tuning_costs,
)
from pdm_assets.lib.modelling.features import ERROR_LOOKBACK_HOURS, FEATURE_COLUMNS, TELEMETRY_LOOKBACK_HOURS
from pdm_assets.lib.modelling.registered import RegisteredModel, model_contract
from pdm_assets.lib.modelling.sample import feature_part
from pdm_assets.lib.modelling.split import SplitPlan
from pdm_assets.lib.modelling.train import fit_and_tune
from pdm_assets.settings import Settings, get_settings

GROUP = "training"


def model_asset(retrain_cron: str) -> dg.AssetsDefinition:
    """The `model` asset, retrained after a failed drift check or on the cron the settings name."""

    # features and prediction_outcomes are dependencies for their checks only (drift, realized_recall): a failure
    # of either requests a retrain. The model reads the features through each group's training sample.
    @dg.asset(name="model", group_name=GROUP, kinds={"sklearn", "mlflow"}, automation_condition=retrain(retrain_cron),
              deps=["features", OUTCOMES], pool=TRAINING_POOL)
    def model(
        context: dg.AssetExecutionContext,
        settings: ProjectSettings,
        training_sample: PerGroup,
        validated_failures: PerGroup,
        raw_provenance: PerGroup,
        mlflow: MLflowResource,
    ) -> dg.MaterializeResult[RegisteredModel]:
        """Fit on every machine group's training sample, tune and threshold on validation, log and register a new
        MLflow version (no alias)."""
        config = settings.get()
        sample_rows = {key or "fleet": len(frame) for key, frame in by_group(training_sample).items()}
        provenance: Provenance = next(iter(by_group(raw_provenance).values()))
        table = combined(training_sample)
        validated_failures = combined(validated_failures)
        plan = plan_for_table(table, train_end=config.train_end, test_start=config.test_start,
                              horizon_hours=config.horizon_hours, validation_fraction=config.validation_fraction)
        parts = split_parts(table, plan)
        context.log.info(f"split ({plan.kind}): " + ", ".join(f"{k} {len(v):,} rows" for k, v in parts.items()))
        with lib_progress(context), threadpool_limits(config.training_threads, user_api="openmp"):
            trained = fit_and_tune(
                parts["train"], parts["validation"], validated_failures,
                feature_columns=FEATURE_COLUMNS, horizon_hours=config.horizon_hours,
                grid_hours=config.scoring_grid_hours, cost_missed=config.cost_missed_failure,
                cost_false_alarm=config.cost_false_alarm, negative_fraction=config.negative_sample_fraction,
                seed=config.random_seed,
            )
            head = _early_warning_head(context, config, feature_part(table), validated_failures, plan)
        contract = model_contract(
            trained, plan, data_source=provenance.data_source, horizon_hours=config.horizon_hours,
            grid_hours=config.scoring_grid_hours, telemetry_lookback_hours=TELEMETRY_LOOKBACK_HOURS,
            error_lookback_hours=ERROR_LOOKBACK_HOURS,
            costs={"missed_failure": config.cost_missed_failure, "false_alarm": config.cost_false_alarm},
            early_warning=head,
        )
        heads = {} if head is None else {
            EARLY_WARNING: (head.trained.pipeline, parts["validation"][head.trained.feature_columns].head(5))
        }
        early_metrics = {} if head is None else {f"early_warning_validation_{k}": v
                                                 for k, v in head.trained.validation.items()}
        record = mlflow.log_and_register(
            trained.pipeline,
            input_example=parts["validation"][trained.feature_columns].head(5),
            params={**trained.params, **{f"split_{k}": v for k, v in plan.to_dict().items()},
                    "horizon_hours": config.horizon_hours, "grid_hours": config.scoring_grid_hours,
                    "threshold": trained.threshold, "f1_threshold": trained.f1_threshold,
                    "negative_sample_fraction": config.negative_sample_fraction},
            metrics={**{f"validation_{k}": v for k, v in trained.validation.items()}, **early_metrics},
            tags={"data_source": provenance.data_source, "split_kind": plan.kind},
            model_metadata=contract,
            heads=heads,
        )
        context.log.info(f"registered {record.registry_uri}; the `promotion` asset decides whether it becomes champion")
        return dg.MaterializeResult(
            value=RegisteredModel(trained, record, contract, head),
            metadata={
                "mlflow_run_id": record.run_id,
                "model_uri": record.model_uri,
                "registered_version": record.registry_uri,
                "data_source": provenance.data_source,
                "threshold": trained.threshold,
                "f1_threshold": trained.f1_threshold,
                "validation": dg.MetadataValue.json(trained.validation),
                "split": dg.MetadataValue.json(plan.to_dict()),
                "search": dg.MetadataValue.md(pd.DataFrame(trained.search).to_markdown(index=False)),
                "train_rows": len(parts["train"]),
                "validation_rows": len(parts["validation"]),
                "test_rows": len(parts["test"]),
                "sample_rows_by_group": dg.MetadataValue.json(sample_rows),
                "early_warning": dg.MetadataValue.json(
                    {"skipped": "see the run's warning"} if head is None else
                    {"threshold": head.trained.threshold, "horizon_hours": head.horizon_hours,
                     "validation": head.trained.validation}
                ),
            },
        )

    return model


def _early_warning_head(
    context: dg.AssetExecutionContext, config: Settings, features: pd.DataFrame, failures: pd.DataFrame,
    plan: SplitPlan,
) -> EarlyWarningHead | None:
    """The early-warning head on the 24 h head's test period; None (with a warning) when the data cannot fit it."""
    try:
        table = early_warning_table(features, failures, horizon_hours=config.early_warning_horizon_hours,
                                    baseline_hours=config.baseline_lookback_hours)
        head_plan = early_warning_plan(table, plan, config.early_warning_horizon_hours, config.validation_fraction)
        return fit_early_warning(table, failures, head_plan, tuning_costs(config),
                                 baseline_hours=config.baseline_lookback_hours)
    except ValueError as too_little:  # e.g. no failure with a usable baseline in the training period
        context.log.warning(f"no early-warning head for this version: {too_little}")
        return None


@dg.definitions
def training_model() -> dg.Definitions:
    """The retrain cron is a setting, read when the code location loads."""
    return dg.Definitions(assets=[model_asset(get_settings().retrain_cron)])

"""The fleet's baselines, fitted once on the training sample, and `scored_rows`: each machine group's validation
and test rows scored by every model, which the evaluation aggregates."""

from dataclasses import replace

import dagster as dg
import pandas as pd
from threadpoolctl import threadpool_limits

from pdm_assets.defs.automation import AFTER_BASELINES, BESIDE_THE_MODEL, TRAINING_POOL
from pdm_assets.defs.logs import lib_progress
from pdm_assets.defs.partitions import PerGroup, machine_group_partitions
from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.data.groups import combined
from pdm_assets.lib.evaluation import protocol
from pdm_assets.lib.evaluation.importance import feature_importance
from pdm_assets.lib.evaluation.scored import FleetBaselines, GroupScores, fit_baselines, score_group
from pdm_assets.lib.modelling.dataset import modelling_table, split_parts
from pdm_assets.lib.modelling.registered import RegisteredModel
from pdm_assets.settings import get_settings

GROUP = "training"


def baselines(
    context: dg.AssetExecutionContext, settings: ProjectSettings, model: RegisteredModel, training_sample: PerGroup,
) -> dg.MaterializeResult[FleetBaselines]:
    """The guide's replica and ours without telemetry on the train rows, and our model's permutation importance on
    the validation rows, of the training sample."""
    config = settings.get()
    parts = split_parts(combined(training_sample), model.split)
    with lib_progress(context), threadpool_limits(config.training_threads, user_api="openmp"):
        fitted = fit_baselines(parts["train"], model.trained, protocol.config_from(config))
        importance = feature_importance(model.trained.pipeline, parts["validation"], model.trained.feature_columns,
                                        config.random_seed)
    return dg.MaterializeResult(
        value=FleetBaselines(fitted, importance, model.version),
        metadata={"model_version": model.version, "train_rows": len(parts["train"]),
                  "validation_rows": len(parts["validation"])},
    )


def scored_rows(
    context: dg.AssetExecutionContext, settings: ProjectSettings, model: RegisteredModel, baselines: FleetBaselines,
    features: pd.DataFrame, labels: pd.DataFrame, validated_failures: pd.DataFrame,
) -> dg.MaterializeResult[GroupScores]:
    """This group's validation and test rows with every model's scores (no feature columns)."""
    config = settings.get()
    if baselines.model_version != model.version:  # the automation may start this before baselines has caught up
        raise dg.Failure(f"baselines were fitted beside model version {baselines.model_version}, the model is "
                         f"version {model.version}: materialize baselines first (the automation does it next)")
    with lib_progress(context), threadpool_limits(config.training_threads, user_api="openmp"):
        scores = score_group(modelling_table(features, labels), features, validated_failures, model.split,
                             model.trained, baselines.fitted, model.early_warning)
    return dg.MaterializeResult(
        value=replace(scores, model_version=model.version),
        metadata={"model_version": model.version, "dagster/row_count": len(scores.rows),
                  "machines": int(scores.rows["machineID"].nunique()), "megabytes": round(scores.nbytes / 2**20, 1)},
    )


@dg.definitions
def scoring_definitions() -> dg.Definitions:
    partitions = machine_group_partitions(get_settings().machine_groups)
    fleet = dg.asset(name="baselines", group_name=GROUP, kinds={"sklearn"}, automation_condition=BESIDE_THE_MODEL,
                     pool=TRAINING_POOL)(baselines)
    per_group = dg.asset(name="scored_rows", group_name=GROUP, kinds={"pandas"}, automation_condition=AFTER_BASELINES,
                         partitions_def=partitions)(scored_rows)
    return dg.Definitions(assets=[fleet, per_group])

"""`training_sample`: each machine group's bounded share of the rows the fleet-wide model fits on."""

import dagster as dg
import pandas as pd

from pdm_assets.defs.automation import SAFE_EAGER
from pdm_assets.defs.metadata import frame_metadata
from pdm_assets.defs.partitions import machine_group_partitions, run_group
from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.modelling.dataset import modelling_table, plan_for_table
from pdm_assets.lib.modelling.sample import training_sample
from pdm_assets.settings import get_settings

GROUP = "training"


def sample(
    context: dg.AssetExecutionContext, settings: ProjectSettings, features: pd.DataFrame, labels: pd.DataFrame,
    validated_failures: pd.DataFrame,
) -> dg.MaterializeResult[pd.DataFrame]:
    """The group's share of PDM_TRAINING_NEGATIVE_BUDGET: near-failure and sampled other rows of the train period,
    whole machines elsewhere (lib.modelling.sample)."""
    config = settings.get()
    index, groups = run_group(context)
    table = modelling_table(features, labels)
    # Every group spans the fleet's dates, so this is the split the model will use.
    plan = plan_for_table(table, train_end=config.train_end, test_start=config.test_start,
                          horizon_hours=config.horizon_hours, validation_fraction=config.validation_fraction)
    drawn = training_sample(
        table, validated_failures, plan,
        longest_horizon_hours=max(config.horizon_hours, config.early_warning_horizon_hours),
        negative_budget=max(1, config.training_negative_budget // groups), seed=[config.random_seed, index],
    )
    return dg.MaterializeResult(
        value=drawn.table,
        metadata={**frame_metadata(drawn.table), "group_rows": drawn.rows, "near_failure_train_rows": drawn.positives,
                  "negative_rate": drawn.negative_rate, "machines_kept_whole": drawn.machines_kept},
    )


@dg.definitions
def training_sample_asset() -> dg.Definitions:
    partitions = machine_group_partitions(get_settings().machine_groups)
    asset = dg.asset(name="training_sample", group_name=GROUP, kinds={"pandas"}, automation_condition=SAFE_EAGER,
                     partitions_def=partitions)(sample)
    return dg.Definitions(assets=[asset])

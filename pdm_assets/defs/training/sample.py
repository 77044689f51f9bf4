"""`training_sample`: each machine group's bounded share of the rows the fleet-wide model fits on."""

import dagster as dg
import pandas as pd

from pdm_assets.defs.automation import SAFE_EAGER
from pdm_assets.defs.metadata import frame_metadata
from pdm_assets.defs.partitions import machine_group_partitions, run_group
from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.modelling.dataset import modelling_table
from pdm_assets.lib.modelling.sample import training_sample
from pdm_assets.settings import get_settings

GROUP = "training"


def sample(
    context: dg.AssetExecutionContext, settings: ProjectSettings, features: pd.DataFrame, labels: pd.DataFrame,
    validated_failures: pd.DataFrame,
) -> dg.MaterializeResult[pd.DataFrame]:
    """Every row near a failure and the group's share of PDM_TRAINING_NEGATIVE_BUDGET other rows."""
    config = settings.get()
    index, groups = run_group(context)
    drawn = training_sample(
        modelling_table(features, labels), validated_failures,
        longest_horizon_hours=max(config.horizon_hours, config.early_warning_horizon_hours),
        negative_budget=max(1, config.training_negative_budget // groups), seed=[config.random_seed, index],
    )
    return dg.MaterializeResult(
        value=drawn.table,
        metadata={**frame_metadata(drawn.table), "group_rows": drawn.rows, "near_failure_rows": drawn.positives,
                  "negative_rate": drawn.negative_rate},
    )


@dg.definitions
def training_sample_asset() -> dg.Definitions:
    partitions = machine_group_partitions(get_settings().machine_groups)
    asset = dg.asset(name="training_sample", group_name=GROUP, kinds={"pandas"}, automation_condition=SAFE_EAGER,
                     partitions_def=partitions)(sample)
    return dg.Definitions(assets=[asset])

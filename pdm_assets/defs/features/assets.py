"""Features and labels per (machine, scoring time)."""

import dagster as dg
import pandas as pd

from pdm_assets.defs.automation import SAFE_EAGER
from pdm_assets.defs.logs import lib_progress
from pdm_assets.defs.metadata import frame_metadata
from pdm_assets.defs.partitions import machine_group_partitions
from pdm_assets.defs.resources import ProjectSettings
from pdm_assets.lib.modelling.features import BASELINE_FEATURES, FEATURE_COLUMNS, build_features
from pdm_assets.lib.modelling.labels import CLASSES, build_labels
from pdm_assets.settings import get_settings

GROUP = "features"


def features(
    context: dg.AssetExecutionContext,
    settings: ProjectSettings,
    validated_telemetry: pd.DataFrame,
    validated_errors: pd.DataFrame,
    validated_maint: pd.DataFrame,
    validated_machines: pd.DataFrame,
) -> dg.MaterializeResult[pd.DataFrame]:
    """Rolling sensor stats against fixed windows and against each machine's own baseline, error counts, hours
    since replacement, model and age, from data at or before t."""
    config = settings.get()
    grid = config.scoring_grid_hours
    with lib_progress(context):
        table = build_features(
            validated_telemetry, validated_errors, validated_maint, validated_machines, grid_hours=grid,
            baseline_hours=config.baseline_lookback_hours,
        )
    return dg.MaterializeResult(
        value=table,
        metadata={**frame_metadata(table), "grid_hours": grid, "feature_count": len(FEATURE_COLUMNS),
                  "baseline_feature_count": len(BASELINE_FEATURES),
                  "baseline_lookback_hours": config.baseline_lookback_hours},
    )


def labels(
    settings: ProjectSettings, features: pd.DataFrame, validated_failures: pd.DataFrame
) -> dg.MaterializeResult[pd.DataFrame]:
    """Which components fail within PDM_HORIZON_HOURS after each scoring point."""
    horizon = settings.get().horizon_hours
    table = build_labels(features, validated_failures, horizon)
    counts = table["label"].value_counts().reindex(list(CLASSES), fill_value=0)
    return dg.MaterializeResult(
        value=table,
        metadata={
            **frame_metadata(table),
            "horizon_hours": horizon,
            "positive_rate": float(table["failure"].mean()) if len(table) else 0.0,
            "label_counts": dg.MetadataValue.json({k: int(v) for k, v in counts.items()}),
            "multi_component_rows": int((table["failing_components"] > 1).sum()),
        },
    )


@dg.definitions
def feature_tables() -> dg.Definitions:
    """Per machine group when PDM_MACHINE_GROUPS > 1, like the validated tables they read."""
    partitions = machine_group_partitions(get_settings().machine_groups)
    per_group = dg.asset(group_name=GROUP, kinds={"pandas"}, automation_condition=SAFE_EAGER,
                         partitions_def=partitions)
    return dg.Definitions(assets=[per_group(features), per_group(labels)])

"""The `rolling_origin` asset: both heads refitted on expanding windows, so every failure after the warm-up is
scored once by heads that never saw its period; the report and the lead-time plot."""

from typing import Any

import dagster as dg
import pandas as pd

from pdm_assets.defs.automation import SAFE_EAGER, TRAINING_POOL
from pdm_assets.defs.logs import lib_progress
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.evaluation import plots
from pdm_assets.lib.evaluation.rolling_origin import config_from, rolling_origin, rolling_table, write_report
from pdm_assets.lib.modelling.registered import RegisteredModel
from pdm_assets.settings import get_settings

# Not on the path to promotion and serving: a backtest of the training recipe, with its own group.
GROUP = "backtest"
# Refitting every fold is the costly part: it follows new model versions, not every refresh of the features.
AFTER_NEW_VERSIONS = SAFE_EAGER.ignore(dg.AssetSelection.assets("features", "validated_failures"))


def rolling_origin_asset(
    context: dg.AssetExecutionContext,
    settings: ProjectSettings,
    model: RegisteredModel,
    features: pd.DataFrame,
    validated_failures: pd.DataFrame,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[dict[str, Any]]:
    """Refit both heads on expanding windows and score each later period once; figures with machine CIs. With
    machine groups, on the last group's machines (the backtest is capped at PDM_ROLLING_ORIGIN_MAX_MACHINES)."""
    config = settings.get()
    with lib_progress(context):
        report = rolling_origin(features, validated_failures, config_from(config))
    report |= {"data_source": model.data_source, "model_version": model.version}
    path, plot = write_report(report, config.reports_dir)
    mlflow.log_artifact(model.record.run_id, path)
    mlflow.log_artifact(model.record.run_id, plot, "plots")
    early = report["models"]["early_warning"]
    mlflow.log_metrics(model.record.run_id, {f"rolling_{name}_{key}": figures[key]
                                             for name, figures in report["models"].items()
                                             for key in ("event_recall", "share_first_alerted_36h_ahead",
                                                         "false_alarm_episodes_per_100_machine_days")})
    return dg.MaterializeResult(
        value=report,
        metadata={
            "events": early["events"],
            "folds": len(report["folds"]),
            **{f"early_warning_{key}": early[key] for key in ("event_recall", "share_first_alerted_36h_ahead",
                                                              "false_alarm_episodes_per_100_machine_days")},
            "results": dg.MetadataValue.md(rolling_table(report)),
            "targets": dg.MetadataValue.json(report["targets"]),
            "plot_lead_time_vs_false_alarms": dg.MetadataValue.md(plots.markdown_image("lead_time_vs_false_alarms",
                                                                                       plot.read_bytes())),
            "report": dg.MetadataValue.path(str(path.resolve())),
        },
    )


@dg.definitions
def rolling_origin_definitions() -> dg.Definitions:
    # One group's machines: the backtest's machine cap is far below a group's size in the fleets groups are for.
    one_group = dg.LastPartitionMapping() if get_settings().machine_groups > 1 else None
    asset = dg.asset(
        name="rolling_origin", group_name=GROUP, kinds={"sklearn", "mlflow"}, automation_condition=AFTER_NEW_VERSIONS,
        pool=TRAINING_POOL, ins={name: dg.AssetIn(partition_mapping=one_group)
                                 for name in ("features", "validated_failures")},
    )(rolling_origin_asset)
    return dg.Definitions(assets=[asset])

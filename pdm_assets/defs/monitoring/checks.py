"""The drift check on features: the latest window against the champion's training data."""

import dagster as dg
import numpy as np
import pandas as pd

from pdm_assets.defs.automation import after_updates_or
from pdm_assets.defs.partitions import machine_group_partitions
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.modelling.estimators import failure_probability, predict_components
from pdm_assets.lib.modelling.features import FEATURE_COLUMNS
from pdm_assets.lib.monitoring.drift import drift_report, drift_windows, prometheus_text, push_drift_metrics
from pdm_assets.settings import get_settings

MAX_REFERENCE_ROWS = 20_000
WORST_SHOWN = 10



def drift_check(cron: str, partitions: dg.PartitionsDefinition | None = None) -> dg.AssetChecksDefinition:
    """The drift check on features, run after every refresh of features and on the cron the settings name; per
    machine group when features are partitioned."""
    return dg.asset_check(
        partitions_def=partitions,
        asset="features",
        name="drift",
        blocking=False,
        automation_condition=after_updates_or(cron),
        description="PSI and KS per feature and the alert-rate shift: recent window vs the champion's training data.",
    )(features_drift)


def features_drift(
    settings: ProjectSettings, features: pd.DataFrame, mlflow: MLflowResource
) -> dg.AssetCheckResult:
    """Warns (never blocks) when the recent window has drifted from what the champion was trained on."""
    config = settings.get()
    champion = mlflow.load_alias()
    if champion is None:
        return dg.AssetCheckResult(passed=True, metadata={"status": "no champion yet: nothing to compare with"})
    meta = champion.metadata
    reference, current = drift_windows(
        features,
        meta["training_start"],
        meta["training_end"],
        config.drift_window_days,
        MAX_REFERENCE_ROWS,
        config.random_seed,
    )
    columns = list(meta.get("feature_columns", FEATURE_COLUMNS))

    def score(frame: pd.DataFrame) -> np.ndarray:
        return failure_probability(predict_components(champion.pipeline, frame[columns]))

    numeric = [c for c in columns if c != "model"]
    report = drift_report(reference, current, numeric, score(reference), score(current), float(meta["threshold"]))
    config.metrics_dir.mkdir(parents=True, exist_ok=True)
    (config.metrics_dir / "pdm_drift.prom").write_text(prometheus_text(report))
    published: dict[str, str] = {}
    if config.pushgateway_url:
        # A gateway that is down costs the dashboard one update, not the check's verdict.
        failure = push_drift_metrics(report, config.pushgateway_url)
        if failure:
            dg.get_dagster_logger().warning(failure)
        published["pushgateway"] = failure or f"pushed to {config.pushgateway_url}"
    return dg.AssetCheckResult(
        passed=not report.drifted,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "champion_version": champion.version,
            "max_psi": report.max_psi,
            "reference_alert_rate": report.reference_alert_rate,
            "current_alert_rate": report.current_alert_rate,
            "alert_rate_ratio": report.alert_rate_ratio,
            "reference_rows": report.reference_rows,
            "current_rows": report.current_rows,
            "worst_features": dg.MetadataValue.md(report.worst(WORST_SHOWN).to_markdown(index=False, floatfmt=".4g")),
            **published,
        },
    )


@dg.definitions
def monitoring() -> dg.Definitions:
    """The drift cron is a setting, read when the code location loads."""
    settings = get_settings()
    return dg.Definitions(asset_checks=[drift_check(settings.drift_cron,
                                                    machine_group_partitions(settings.machine_groups))])

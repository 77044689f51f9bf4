"""Declarative automation shared by the stages: refresh on new data, never past a failed blocking check."""

import dagster as dg

from pdm_assets.settings import get_settings

# Read when the code location loads, like the crons: a sensor's interval is part of its definition.
SENSOR_INTERVAL_SECONDS = get_settings().sensor_interval_seconds

# eager() alone would also run after an upstream blocking check failed.
SAFE_EAGER = dg.AutomationCondition.eager() & dg.AutomationCondition.all_deps_blocking_checks_passed()

# A new model version reaches the gate one step at a time: baselines are fitted beside it, then every group is
# scored with both, then the scores are aggregated, then the gate judges that evaluation. eager() would request the
# whole chain in one tick (a dependency that "will be requested" counts as updated), and Dagster launches a
# per-group step and a fleet step as separate runs with no order between them; so each step here waits for its
# predecessor to have been materialized, and ignores the model itself.
def after_materialized(ignored: tuple[str, ...]) -> dg.AutomationCondition:
    skip = dg.AssetSelection.assets(*ignored)
    return (
        dg.AutomationCondition.in_latest_time_window()
        & dg.AutomationCondition.any_deps_match(dg.AutomationCondition.newly_updated()).ignore(skip)
        .since_last_handled()
        & ~dg.AutomationCondition.any_deps_missing()
        & ~dg.AutomationCondition.any_deps_in_progress()
        # nor in a tick that also requests one of its inputs (a retrain during a data refresh): Dagster could put
        # both in one run, this step after that input but before the steps between them
        & ~dg.AutomationCondition.any_deps_match(dg.AutomationCondition.will_be_requested())
        & ~dg.AutomationCondition.in_progress()
        & dg.AutomationCondition.all_deps_blocking_checks_passed()
    ).with_label("after its predecessor")


BESIDE_THE_MODEL = after_materialized(("training_sample",))  # refitted for a new version, not for new data
AFTER_BASELINES = after_materialized(("model",))
AFTER_SCORES = after_materialized(("model", "baselines", "validated_failures"))  # the scores follow the failures
AFTER_EVALUATION = after_materialized(("model", "training_sample", "validated_failures"))

# The bento is rebuilt when the promotion asset's data version (the champion version) changes, or when missing.
CHAMPION_MOVED = (
    dg.AutomationCondition.on_missing()
    | dg.AutomationCondition.any_deps_match(dg.AutomationCondition.data_version_changed())
) & ~dg.AutomationCondition.any_deps_in_progress()


# Steps that fit models hold the feature table and the model search in memory: the instance allows one at a time
# (deploy/helm/dagster-values.yaml: concurrency.pools, docs/scaling.md).
TRAINING_POOL = "training"

# Realized outcomes feed the model only through their realized_recall check: never having been computed does
# not hold training back.
OUTCOMES = "prediction_outcomes"


def retrain(cron: str) -> dg.AutomationCondition:
    """A challenger is trained when a check on an upstream asset (the drift check on features, realized_recall
    on prediction_outcomes) newly fails, or on the cron; never while upstream is missing or being refreshed."""
    return (
        (
            dg.AutomationCondition.any_deps_match(
                dg.AutomationCondition.any_checks_match(dg.AutomationCondition.check_failed().newly_true())
            )
            | dg.AutomationCondition.on_cron(cron)
        )
        & ~dg.AutomationCondition.any_deps_missing().ignore(dg.AssetSelection.assets(OUTCOMES))
        & ~dg.AutomationCondition.any_deps_in_progress()
    )


def after_updates_or(cron: str) -> dg.AutomationCondition:
    """After every refresh of the checked asset, and on the cron even when no data arrives."""
    return dg.AutomationCondition.any_deps_updated().since_last_handled() | dg.AutomationCondition.on_cron(cron)


automation_sensor = dg.AutomationConditionSensorDefinition(
    "automation_sensor",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=SENSOR_INTERVAL_SECONDS,
    description="Evaluates every asset's automation condition: refreshes after new data, retrains after drift.",
)

"""The `promotion` asset: the gate that alone moves the MLflow alias `champion`."""

from typing import Any

import dagster as dg
import pandas as pd

from pdm_assets.defs.automation import SAFE_EAGER
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.evaluation import promotion as gate
from pdm_assets.lib.modelling.dataset import modelling_table, split_parts
from pdm_assets.lib.modelling.estimators import score_failure
from pdm_assets.lib.modelling.registered import RegisteredModel

GROUP = "training"


@dg.asset(group_name=GROUP, kinds={"mlflow"}, automation_condition=SAFE_EAGER)
def promotion(
    context: dg.AssetExecutionContext,
    settings: ProjectSettings,
    model: RegisteredModel,
    evaluation: dict[str, Any],
    features: pd.DataFrame,
    labels: pd.DataFrame,
    validated_failures: pd.DataFrame,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[gate.PromotionOutcome]:
    """Move the `champion` alias to the new version only if it passes the gate; record why either way."""
    config = settings.get()
    version = model.version
    beats = gate.beats_baselines(evaluation["event_curve"], evaluation["baselines"])
    champion = mlflow.load_alias()
    before = champion.version if champion is not None else None
    if champion is None:
        against = gate.no_champion()
    elif champion.version == version:
        against = gate.already_champion(version)
    else:
        validation = split_parts(modelling_table(features, labels), model.split)["validation"]
        against = gate.incomparable_champion(
            champion.metadata, horizon_hours=model.horizon_hours, grid_hours=model.grid_hours,
            available_columns=list(validation.columns),
        ) or gate.not_worse_than_champion(
            validation, validated_failures,
            challenger=(_scores(model.trained.pipeline, validation, model.trained.feature_columns),
                        model.trained.threshold),
            champion=(_scores(champion.pipeline, validation, champion.metadata["feature_columns"]),
                      float(champion.metadata["threshold"])),
            horizon_hours=model.horizon_hours, grid_hours=model.grid_hours,
            cost_missed=config.cost_missed_failure, cost_false_alarm=config.cost_false_alarm,
            seed=config.random_seed,
        )
    decision = gate.decide([beats, against])
    if decision.promote:
        mlflow.set_alias(version, reason=f"promotion gate: {decision.reason}")
    gate.record_decision(mlflow.tracking_uri, mlflow.registered_model_name, version, model.record.run_id, decision)
    after = version if decision.promote else before
    log = context.log.info if decision.promote else context.log.warning
    log(f"version {version} {decision.outcome}; champion is {after}: {decision.reason}")
    return dg.MaterializeResult(
        value=gate.PromotionOutcome(candidate_version=version, champion_version=after, decision=decision),
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

"""The `promotion` asset: the gate that alone moves the MLflow alias `champion`, judging both heads."""

from typing import Any

import dagster as dg
import pandas as pd

from pdm_assets.defs.automation import AFTER_EVALUATION
from pdm_assets.defs.partitions import PerGroup
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.data.groups import combined
from pdm_assets.lib.evaluation import promotion as gate
from pdm_assets.lib.modelling.dataset import split_parts
from pdm_assets.lib.modelling.early_warning import EARLY_WARNING, early_warning_table
from pdm_assets.lib.modelling.estimators import score_failure
from pdm_assets.lib.modelling.registered import RegisteredModel
from pdm_assets.lib.modelling.sample import feature_part
from pdm_assets.lib.tracking import LoadedModel
from pdm_assets.settings import Settings

GROUP = "training"


@dg.asset(group_name=GROUP, kinds={"mlflow"}, automation_condition=AFTER_EVALUATION)
def promotion(
    context: dg.AssetExecutionContext,
    settings: ProjectSettings,
    model: RegisteredModel,
    evaluation: dict[str, Any],
    training_sample: PerGroup,
    validated_failures: PerGroup,
    mlflow: MLflowResource,
) -> dg.MaterializeResult[gate.PromotionOutcome]:
    """Move the `champion` alias to the new version only if both heads pass the gate; record why either way.
    The heads are compared on the validation rows of the training sample (every row, with one machine group)."""
    config = settings.get()
    if evaluation.get("model_version") != model.version:  # judged on another version's figures: refuse
        raise dg.Failure(f"the evaluation is of model version {evaluation.get('model_version')}, the model is "
                         f"version {model.version}: materialize the evaluation first (the automation does it next)")
    table = combined(training_sample)
    validated_failures = combined(validated_failures)
    version = model.version
    champion = mlflow.load_alias()
    before = champion.version if champion is not None else None
    trained = model.trained
    criteria = [gate.beats_baselines(evaluation["event_curve"], evaluation["baselines"])]
    criteria.append(_against_champion(
        champion, version, lambda: split_parts(table, model.split)["validation"],
        validated_failures, config, challenger=(trained.pipeline, trained.feature_columns, trained.threshold),
        champion_metadata=None if champion is None else champion.metadata, head=None,
        horizon_hours=model.horizon_hours, grid_hours=model.grid_hours,
    ))
    criteria += _early_warning_criteria(model, champion, evaluation, feature_part(table), validated_failures, config)
    decision = gate.decide(criteria)
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


def _early_warning_criteria(
    model: RegisteredModel, champion: LoadedModel | None, evaluation: dict[str, Any], features: pd.DataFrame,
    failures: pd.DataFrame, config: Settings,
) -> list[gate.Criterion]:
    """Both criteria for the early-warning head, or why a version without one may (not) be promoted."""
    head = model.early_warning
    champion_head = None if champion is None else champion.metadata.get(EARLY_WARNING)
    if head is None:
        return [gate.missing_head(EARLY_WARNING, champion_has_it=champion_head is not None
                                  and champion is not None and champion.version != model.version,
                                  why="the data could not fit one: see the model run's warning")]
    horizon = evaluation["horizons"][str(head.horizon_hours)]
    baselines = {name: horizon["warning"][name] for name in gate.EARLY_WARNING_BASELINES}
    earlier = gate.for_head(gate.warns_earlier(horizon["warning_curve"], baselines), EARLY_WARNING, head.horizon_hours)

    def validation_rows() -> pd.DataFrame:
        table = early_warning_table(features, failures, horizon_hours=head.horizon_hours,
                                    baseline_hours=head.baseline_lookback_hours)
        return split_parts(table, head.plan)["validation"]

    if champion is not None and champion.version != model.version and champion_head is None:
        against = gate.Criterion("not_worse_than_champion", True,
                                 f"champion version {champion.version} has no early-warning head to compare with")
    else:
        trained = head.trained
        against = _against_champion(
            champion, model.version, validation_rows, failures, config,
            challenger=(trained.pipeline, trained.feature_columns, trained.threshold),
            champion_metadata=None if champion_head is None else {
                **champion_head, "grid_hours": champion.metadata.get("grid_hours") if champion else None},
            head=EARLY_WARNING, horizon_hours=head.horizon_hours, grid_hours=model.grid_hours,
            must_match={"baseline_lookback_hours": head.baseline_lookback_hours},
        )
    return [earlier, gate.for_head(against, EARLY_WARNING, head.horizon_hours)]


def _against_champion(
    champion: LoadedModel | None, version: str, validation_rows: Any, failures: pd.DataFrame, config: Settings, *,
    challenger: tuple[Any, list[str], float], champion_metadata: dict[str, Any] | None, head: str | None,
    horizon_hours: int, grid_hours: int, must_match: dict[str, Any] | None = None,
) -> gate.Criterion:
    """Criterion 2 for one head: no champion, the same version, incomparable, or the cost comparison."""
    if champion is None:
        return gate.no_champion()
    if champion.version == version:
        return gate.already_champion(version)
    assert champion_metadata is not None
    validation = validation_rows()
    incomparable = gate.incomparable_champion(
        champion_metadata, horizon_hours=horizon_hours, grid_hours=grid_hours,
        available_columns=list(validation.columns), must_match=must_match,
    )
    if incomparable is not None:
        return incomparable
    pipeline = champion.pipeline if head is None else champion.head(head)
    if pipeline is None:
        return gate.Criterion("not_worse_than_champion", False, f"the champion's {head} pipeline cannot be loaded")
    model, columns, threshold = challenger
    return gate.not_worse_than_champion(
        validation, failures,
        challenger=(_scores(model, validation, columns), threshold),
        champion=(_scores(pipeline, validation, champion_metadata["feature_columns"]),
                  float(champion_metadata["threshold"])),
        horizon_hours=horizon_hours, grid_hours=grid_hours,
        cost_missed=config.cost_missed_failure, cost_false_alarm=config.cost_false_alarm, seed=config.random_seed,
    )


def _scores(pipeline: Any, rows: pd.DataFrame, columns: list[str]) -> Any:
    return score_failure(pipeline, rows[list(columns)])

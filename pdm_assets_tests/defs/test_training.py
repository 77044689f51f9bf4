"""The training group on a small synthetic fleet: register, evaluate, and move `champion` only through the gate."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
from mlflow import MlflowClient

from pdm_assets.defs.resources import MLflowResource
from pdm_assets.lib.evaluation.promotion import PromotionOutcome, not_worse_than_champion
from pdm_assets.lib.modelling.dataset import modelling_table, split_parts
from pdm_assets.lib.modelling.estimators import score_failure
from pdm_assets.lib.modelling.registered import RegisteredModel
from pdm_assets.lib.tracking import alias_version
from pdm_assets.settings import get_settings
from pdm_assets_tests.support.project import load_defs

GROUPS = ("ingest", "features", "training")
REPORT_KEYS = {
    "row_pr_auc", "row_roc_auc", "row_f1", "row_precision", "row_recall", "threshold", "event_recall",
    "lead_time_median_h", "false_alarms_per_100_machine_days", "ci", "baselines", "confusion_matrix", "split",
    "horizon_hours", "data_source", "positive_rate", "test_start",
}


def metadata(result: dg.ExecuteInProcessResult, key: str) -> dict:
    events = [e for e in result.get_asset_materialization_events() if e.asset_key == dg.AssetKey(key)]
    return {k: v.value for k, v in events[-1].materialization.metadata.items()}


@pytest.mark.slow
def test_training_group_registers_evaluates_and_gates(isolated_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDM_DATA_SOURCE", "synthetic")
    monkeypatch.setenv("PDM_SYNTHETIC_MACHINES", "12")
    monkeypatch.setenv("PDM_SYNTHETIC_DAYS", "100")
    defs = load_defs()
    instance = dg.DagsterInstance.ephemeral()
    assets = [a for a in defs.assets or [] if isinstance(a, (dg.AssetsDefinition, dg.AssetSpec, dg.SourceAsset))]
    first = dg.materialize(assets, selection=dg.AssetSelection.groups(*GROUPS), resources=defs.resources,
                           instance=instance)
    assert first.success

    settings = get_settings()
    report = json.loads((isolated_project / "reports" / "evaluation.json").read_text())
    assert set(report) >= REPORT_KEYS
    assert report["data_source"] == "synthetic" and report["model_version"] == "1"
    assert (isolated_project / "reports" / "model_card.md").read_text().startswith("# Model card")
    for name in ("pr_curve", "calibration", "confusion_matrix", "lead_time", "feature_importance"):
        assert (isolated_project / "reports" / "plots" / f"{name}.png").stat().st_size > 1000
    shown = metadata(first, "evaluation")
    assert shown["plot_pr_curve"].startswith("![pr_curve](data:image/png;base64,")

    # The model asset registers; only the gate moves the alias. Version 1 has no champion to beat, and on
    # this fleet (12 machines, 100 days) it beats every baseline on the test period.
    outcome: PromotionOutcome = first.output_for_node("promotion")
    assert outcome.promote, outcome.reason
    gate_1 = metadata(first, "promotion")
    assert gate_1["candidate_version"] == "1" and gate_1["outcome"] == "promoted"
    assert outcome.decision.criteria[1].reason.startswith("no champion yet")
    assert alias_version(settings.mlflow_tracking_uri, settings.registered_model_name) == "1"
    client = MlflowClient(settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)
    tags = client.get_model_version(settings.registered_model_name, "1").tags
    assert tags["promotion"] == "promoted" and tags["promotion_reason"].startswith("PASS beats_baselines")

    # The champion, loaded back from the registry, scores the same validation rows as the candidate did.
    champion = MLflowResource(
        tracking_uri=settings.mlflow_tracking_uri, experiment=settings.mlflow_experiment,
        registered_model_name=settings.registered_model_name,
    ).load_alias()
    assert champion is not None and champion.version == "1"
    model: RegisteredModel = first.output_for_node("model")
    table = modelling_table(first.output_for_node("features"), first.output_for_node("labels"))
    validation = split_parts(table, model.split)["validation"]
    failures = first.output_for_node("validated_tables", "validated_failures")
    scores = score_failure(champion.pipeline, validation[champion.metadata["feature_columns"]])
    assert scores == pytest.approx(score_failure(model.trained.pipeline, validation[model.trained.feature_columns]))
    against = not_worse_than_champion(
        validation, failures, challenger=(scores, model.trained.threshold),
        champion=(scores, float(champion.metadata["threshold"])), horizon_hours=24, grid_hours=3,
        cost_missed=settings.cost_missed_failure, cost_false_alarm=settings.cost_false_alarm,
    )
    assert against.passed and against.details["difference"] == 0.0
    assert against.details["champion_cost"] == pytest.approx(model.trained.validation["cost"])

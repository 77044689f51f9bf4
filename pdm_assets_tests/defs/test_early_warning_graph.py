"""The training group with both heads on a small synthetic fleet: one registered version carries the early-warning
head, the evaluation scores it at 48 h, the rolling origin reports, and the gate judges both heads."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from pdm_assets.defs.resources import MLflowResource
from pdm_assets.lib.modelling.dataset import split_parts
from pdm_assets.lib.modelling.early_warning import EARLY_WARNING, early_warning_table
from pdm_assets.lib.modelling.estimators import score_failure
from pdm_assets.lib.modelling.registered import RegisteredModel
from pdm_assets.settings import get_settings
from pdm_assets_tests.support.project import load_defs

GROUPS = ("ingest", "features", "training", "backtest")
FLEET = {"PDM_DATA_SOURCE": "synthetic", "PDM_SYNTHETIC_MACHINES": "12", "PDM_SYNTHETIC_DAYS": "100"}



def materialize(defs: dg.Definitions, selection: dg.AssetSelection, instance: dg.DagsterInstance
                ) -> dg.ExecuteInProcessResult:
    return dg.materialize(list(defs.assets or []), selection=selection, resources=defs.resources, instance=instance)


def criteria(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    outcome = result.output_for_node("promotion")
    return {c.name: {"passed": c.passed, "reason": c.reason, "details": c.details} for c in outcome.decision.criteria}


@pytest.mark.slow
def test_both_heads_are_registered_evaluated_and_gated(isolated_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FLEET.items():
        monkeypatch.setenv(name, value)
    defs, instance = load_defs(), dg.DagsterInstance.ephemeral()
    first = materialize(defs, dg.AssetSelection.groups(*GROUPS), instance)
    assert first.success

    model: RegisteredModel = first.output_for_node("model")
    head = model.early_warning
    assert head is not None and head.horizon_hours == 48 and head.plan.test_start == model.split.test_start
    settings = get_settings()
    champion = MLflowResource.of(settings).load_alias()
    assert champion is not None and champion.version == model.version == "1"
    assert champion.metadata[EARLY_WARNING]["threshold"] == head.trained.threshold
    loaded = champion.head(EARLY_WARNING)
    assert loaded is not None
    features, failures = first.output_for_node("features"), first.output_for_node("validated_tables",
                                                                                   "validated_failures")
    table = early_warning_table(features, failures, horizon_hours=48, baseline_hours=settings.baseline_lookback_hours)
    validation = split_parts(table, head.plan)["validation"][head.trained.feature_columns]
    np.testing.assert_allclose(score_failure(loaded, validation), score_failure(head.trained.pipeline, validation),
                               rtol=0, atol=1e-12)

    report = json.loads((isolated_project / "reports" / "evaluation.json").read_text())
    warning = report["horizons"]["48"]["warning"]
    assert set(warning) == {"ours", "error_rule", "day_ahead"}
    assert warning["ours"]["threshold"] == head.trained.threshold
    assert "early-warning head" in (isolated_project / "reports" / "model_card.md").read_text()

    rolling = json.loads((isolated_project / "reports" / "rolling_origin.json").read_text())
    assert rolling["model_version"] == "1" and rolling["models"]["early_warning"]["events"] > 0
    assert (isolated_project / "reports" / "plots" / "lead_time_vs_false_alarms.png").stat().st_size > 5000

    gate_1 = criteria(first)
    assert set(gate_1) == {"beats_baselines", "not_worse_than_champion", "early_warning_warns_earlier",
                           "early_warning_not_worse_than_champion"}
    earlier = gate_1["early_warning_warns_earlier"]["details"]["error_rule"]
    assert earlier["baseline_share"] == warning["error_rule"]["share_first_alerted_36h_ahead"]
    assert gate_1["early_warning_not_worse_than_champion"]["reason"].startswith("48 h early_warning head: no champion")

    # A second version is compared with the champion's early-warning head on the same validation rows.
    retrain = dg.AssetSelection.assets("model", "baselines", "scored_rows", "evaluation", "promotion")
    second = materialize(defs, retrain, instance)
    gate_2 = criteria(second)
    against = gate_2["early_warning_not_worse_than_champion"]
    assert {"challenger_cost", "champion_cost", "difference_ci"} <= set(against["details"]), against
    assert against["details"]["challenger_cost"] == against["details"]["champion_cost"]  # same data, same seed
    assert second.output_for_node("promotion").promote == all(c["passed"] for c in gate_2.values())

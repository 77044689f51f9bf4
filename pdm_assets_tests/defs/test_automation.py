"""Declarative automation, evaluated in process with evaluate_automation_conditions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from pdm_assets_tests.support.project import load_defs

INGEST_AND_FEATURES = dg.AssetSelection.groups("ingest", "features")


@pytest.fixture
def small_fleet(isolated_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.Definitions]:
    monkeypatch.setenv("PDM_DATA_SOURCE", "synthetic")
    monkeypatch.setenv("PDM_SYNTHETIC_MACHINES", "3")
    monkeypatch.setenv("PDM_SYNTHETIC_DAYS", "30")
    yield load_defs()


def requested(result: dg.EvaluateAutomationConditionsResult) -> set[str]:
    return {r.key.to_user_string() for r in result.results if r.true_subset.size}


def run(defs: dg.Definitions, instance: dg.DagsterInstance, selection: dg.AssetSelection) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        list(defs.assets or []), selection=selection, resources=defs.resources, instance=instance, raise_on_error=False
    )


def report_check(instance: dg.DagsterInstance, asset: str, check: str, *, passed: bool) -> None:
    """Record a check result as if a run had produced it."""
    evaluation = dg.AssetCheckEvaluation(
        asset_key=dg.AssetKey(asset), check_name=check, passed=passed, severity=dg.AssetCheckSeverity.ERROR
    )
    instance.report_runless_asset_event(evaluation)


def test_new_raw_data_refreshes_downstream(small_fleet: dg.Definitions) -> None:
    with dg.instance_for_test() as instance:
        assert run(small_fleet, instance, INGEST_AND_FEATURES).success
        first = dg.evaluate_automation_conditions(small_fleet, instance)
        assert not {"validated_telemetry", "features"} & requested(first)

        assert run(small_fleet, instance, dg.AssetSelection.assets("raw_telemetry").required_multi_asset_neighbors())
        second = dg.evaluate_automation_conditions(small_fleet, instance, cursor=first.cursor)
        # the whole chain is requested at once; blocking checks still stop it inside the run
        assert {"validated_telemetry", "quarantine", "features", "labels"} <= requested(second)
        assert "raw_telemetry" not in requested(second)

        third = dg.evaluate_automation_conditions(small_fleet, instance, cursor=second.cursor)
        assert not requested(third) & {"validated_telemetry", "features"}  # requested once, not every tick


def test_a_failed_blocking_check_stops_the_refresh(small_fleet: dg.Definitions) -> None:
    with dg.instance_for_test() as instance:
        assert run(small_fleet, instance, INGEST_AND_FEATURES).success
        first = dg.evaluate_automation_conditions(small_fleet, instance)

        report_check(instance, "validated_telemetry", "structure", passed=False)
        instance.report_runless_asset_event(dg.AssetMaterialization("validated_telemetry"))
        second = dg.evaluate_automation_conditions(small_fleet, instance, cursor=first.cursor)
        assert "features" not in requested(second)

        report_check(instance, "validated_telemetry", "structure", passed=True)
        third = dg.evaluate_automation_conditions(small_fleet, instance, cursor=second.cursor)
        assert "features" in requested(third)


def materialized(instance: dg.DagsterInstance, *assets: str) -> None:
    for asset in assets:
        instance.report_runless_asset_event(dg.AssetMaterialization(asset))


def test_a_new_model_version_reaches_the_gate_one_step_at_a_time(small_fleet: dg.Definitions) -> None:
    """Baselines, then every group's scores, then the evaluation, then the gate: none starts beside the model on
    its predecessor's output of the previous version (scored_rows and promotion refuse such a mix)."""
    chain = ("baselines", "scored_rows", "evaluation", "promotion")
    with dg.instance_for_test() as instance:
        upstream = [key.to_user_string() for key in small_fleet.resolve_all_asset_keys()
                    if key.to_user_string() not in (*chain, "model")]
        materialized(instance, *upstream, "model", *chain)
        for table in ("telemetry", "errors", "maint", "failures", "machines"):
            report_check(instance, f"validated_{table}", "structure", passed=True)
        cursor = dg.evaluate_automation_conditions(small_fleet, instance).cursor
        for updated, expected in (("model", "baselines"), ("baselines", "scored_rows"),
                                  ("scored_rows", "evaluation"), ("evaluation", "promotion")):
            materialized(instance, updated)
            result = dg.evaluate_automation_conditions(small_fleet, instance, cursor=cursor)
            cursor = result.cursor
            assert requested(result) & set(chain) == {expected}, (updated, requested(result))

        materialized(instance, "training_sample")  # new data in a group: the model stays, so do its baselines
        result = dg.evaluate_automation_conditions(small_fleet, instance, cursor=cursor)
        cursor = result.cursor
        assert "baselines" not in requested(result)

        # A retrain lands while a group's refreshed scores wait for their evaluation: the evaluation waits for the
        # new version's baselines and scores instead of running beside the baselines on the old scores.
        materialized(instance, "scored_rows", "model")
        result = dg.evaluate_automation_conditions(small_fleet, instance, cursor=cursor)
        assert requested(result) & set(chain) == {"baselines"}, requested(result)

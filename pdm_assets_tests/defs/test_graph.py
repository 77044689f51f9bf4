"""The asset graph end to end: materialize on a small synthetic fleet, on real data, and on a corrupt table."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from pdm_assets.lib.data.tables import FILE_NAMES, TABLE_NAMES
from pdm_assets.lib.evaluation.promotion import PromotionOutcome
from pdm_assets.lib.modelling.registered import RegisteredModel
from pdm_assets.lib.synthetic.simulate import generate_fleet
from pdm_assets.lib.tracking import alias_version
from pdm_assets.settings import get_settings
from pdm_assets_tests.support.paths import ROOT
from pdm_assets_tests.support.project import load_defs

PIPELINE_GROUPS = ("ingest", "features", "training")


def materialize_pipeline(defs: dg.Definitions) -> dg.ExecuteInProcessResult:
    selection = dg.AssetSelection.groups(*PIPELINE_GROUPS)
    return dg.materialize(
        list(defs.assets or []),
        selection=selection,
        resources=defs.resources,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def write_csv_fleet(folder: Path, machines: int, days: int) -> None:
    """A synthetic fleet written as the dataset's CSV files."""
    folder.mkdir(parents=True)
    fleet = generate_fleet(machines=machines, days=days, seed=3)
    for name in TABLE_NAMES:
        fleet.table(name).to_csv(folder / FILE_NAMES[name], index=False)


@pytest.mark.slow
def test_whole_graph_on_a_small_synthetic_fleet(isolated_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDM_DATA_SOURCE", "synthetic")
    monkeypatch.setenv("PDM_SYNTHETIC_MACHINES", "5")
    monkeypatch.setenv("PDM_SYNTHETIC_DAYS", "60")
    result = materialize_pipeline(load_defs())
    assert result.success
    assets = {"raw_telemetry", "validated_telemetry", "quarantine", "features", "labels", "model", "evaluation"}
    assert assets | {"promotion"} <= materialized(result)

    report = json.loads((isolated_project / "reports" / "evaluation.json").read_text())
    assert report["data_source"] == "synthetic"
    assert {"horizon_hours", "test_start", "row_pr_auc", "row_f1", "threshold"} <= set(report)
    model: RegisteredModel = result.output_for_node("model")
    assert model.version == "1"  # registered in MLflow
    # Two months of five machines rarely hold enough failures to beat every baseline: the gate decides,
    # and the alias follows its decision either way.
    promotion: PromotionOutcome = result.output_for_node("promotion")
    settings = get_settings()
    champion = alias_version(settings.mlflow_tracking_uri, settings.registered_model_name)
    assert champion == ("1" if promotion.promote else None)
    assert promotion.reason

    validated = result.output_for_node("validated_tables", "validated_telemetry")
    quarantine = result.output_for_node("validated_tables", "quarantine")
    raw = result.output_for_node("raw_tables", "raw_telemetry")
    assert len(validated) + int((quarantine["table"] == "telemetry").sum()) == len(raw)


@pytest.mark.slow
def test_a_corrupt_table_stops_everything_downstream(isolated_project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = isolated_project / "input"
    write_csv_fleet(data, machines=3, days=20)
    telemetry = pd.read_csv(data / FILE_NAMES["telemetry"]).drop(columns=["pressure"])
    telemetry.to_csv(data / FILE_NAMES["telemetry"], index=False)
    monkeypatch.setenv("PDM_DATA_SOURCE", "local")
    monkeypatch.setenv("PDM_DATA_DIR", str(data))

    result = materialize_pipeline(load_defs())

    assert not result.success
    checks = {(c.asset_key.to_user_string(), c.check_name): c for c in result.get_asset_check_evaluations()}
    structure = checks[("validated_telemetry", "structure")]
    assert not structure.passed
    assert structure.metadata["failure_count"].value == 1
    assert "missing column 'pressure'" in str(structure.metadata["problems"].value)
    assert checks[("validated_errors", "structure")].passed
    assert not {"features", "labels", "model", "evaluation"} & materialized(result)


@pytest.mark.real_data
@pytest.mark.slow
def test_whole_graph_on_the_real_data(
    isolated_project: Path, real_data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PDM_DATA_SOURCE", "local")
    monkeypatch.setenv("PDM_DATA_DIR", str(real_data_dir))
    result = materialize_pipeline(load_defs())
    assert result.success
    report = json.loads((isolated_project / "reports" / "evaluation.json").read_text())
    assert report["data_source"] == "local"
    assert report["split"]["kind"] == "proportional"  # Q1 telemetry does not reach the guide's October test start
    assert report["row_pr_auc"] > 0.5


def test_dagster_definitions_validate_passes(tmp_path: Path) -> None:
    dagster = shutil.which("dagster", path=str(Path(sys.executable).parent))
    assert dagster is not None
    home = tmp_path / "home"
    home.mkdir()
    done = subprocess.run(
        [dagster, "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**_clean_env(), "DAGSTER_HOME": str(home)},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def _clean_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("PDM_")}

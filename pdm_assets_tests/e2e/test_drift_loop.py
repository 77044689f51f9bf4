"""The closed loop, in process: land drifted data, tick the sensors, retrain, gate, and move the alias or not.

Two runs on a small synthetic fleet:
- recoverable: new days with a sensor offset (the drift check fails) and failures as before; the challenger
  is trained, passes the gate, and becomes champion; the serving assets are requested;
- rejected: new days with a sensor offset and no failure at all, so the test period has no failure event;
  the gate cannot show the challenger is better, the champion stays.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest

from pdm_assets.defs.ingest.sensors import landing_sensor
from pdm_assets.lib.evaluation.promotion import PromotionOutcome
from pdm_assets.lib.synthetic.parameters import REAL_CALIBRATION
from pdm_assets.lib.synthetic.simulate import generate_fleet
from pdm_assets.lib.tracking import alias_history, alias_version
from pdm_assets.settings import get_settings
from pdm_assets_tests.support.project import load_defs

MACHINES, DAYS, LANDED_DAYS = 12, 100, 30  # 12 x 100 is enough for the first version to pass the gate
MAX_TICKS = 8
PIPELINE = dg.AssetSelection.groups("ingest", "features", "training")
SERVING = {"bento", "bento_container"}
OFFSETS = {"volt": 30.0, "pressure": 20.0}


def land_new_days(landing: Path, start: pd.Timestamp, *, with_failures: bool) -> dict[str, int]:
    """Write the next days of the same machines as landing files; returns rows per table."""
    calibration = REAL_CALIBRATION
    if not with_failures:
        never = {comp: dict.fromkeys(by_model, 0.0) for comp, by_model in calibration.failure_probability.items()}
        calibration = dataclasses.replace(calibration, failure_probability=never, log_start_failures_per_machine=0.0)
    fleet = generate_fleet(
        machines=MACHINES,
        days=LANDED_DAYS,
        seed=11,
        start=start.to_pydatetime(),
        calibration=calibration,
        sensor_offsets=OFFSETS,
    )
    landing.mkdir(parents=True, exist_ok=True)
    stamp = start.strftime("%Y%m%dT%H%M")
    rows = {}
    for name in ("telemetry", "errors", "maint", "failures"):
        table = fleet.table(name)
        table = table[table["datetime"] >= start]  # the generator also invents earlier replacement history
        table.to_csv(landing / f"{name}_{stamp}.csv", index=False)
        rows[name] = len(table)
    return rows


def tick_until_quiet(defs: dg.Definitions, instance: dg.DagsterInstance, cursor: Any) -> list[set[str]]:
    """Evaluate automation and run what it requests (serving excluded), until nothing more is requested."""
    requested_per_tick: list[set[str]] = []
    for _ in range(MAX_TICKS):
        result = dg.evaluate_automation_conditions(defs, instance, cursor=cursor)
        cursor = result.cursor
        keys = {r.key for r in result.results if r.true_subset.size}
        names = {k.to_user_string() for k in keys}
        if not keys:
            return requested_per_tick
        requested_per_tick.append(names)
        assets = [k for k in keys if isinstance(k, dg.AssetKey) and k.to_user_string() not in SERVING]
        checks = [k for k in keys if isinstance(k, dg.AssetCheckKey)]
        if not assets and not checks:
            return requested_per_tick
        selection = dg.AssetSelection.assets(*assets) | dg.AssetSelection.checks(*checks)
        dg.materialize(
            [*(defs.assets or []), *(defs.asset_checks or [])],
            selection=selection,
            resources=defs.resources,
            instance=instance,
            raise_on_error=False,
        )
    raise AssertionError(f"automation still requesting after {MAX_TICKS} ticks: {requested_per_tick}")


def run_loop(isolated_project: Path, monkeypatch: pytest.MonkeyPatch, *, with_failures: bool) -> dict[str, Any]:
    monkeypatch.setenv("PDM_DATA_SOURCE", "synthetic")
    monkeypatch.setenv("PDM_SYNTHETIC_MACHINES", str(MACHINES))
    monkeypatch.setenv("PDM_SYNTHETIC_DAYS", str(DAYS))
    monkeypatch.setenv("PDM_LANDING_DIR", str(isolated_project / "landing"))
    monkeypatch.setenv("PDM_LANDING_SETTLE_SECONDS", "0")
    settings = get_settings()
    defs = load_defs()
    with dg.DagsterInstance.get() as instance:
        first = dg.materialize(list(defs.assets or []), selection=PIPELINE, resources=defs.resources, instance=instance)
        assert first.success
        assert first.output_for_node("promotion").promote, "the first version should become champion"
        # the automation sensor was already running before the new data landed
        cursor = dg.evaluate_automation_conditions(defs, instance).cursor
        champion_before = alias_version(settings.mlflow_tracking_uri, settings.registered_model_name)
        raw_before = {t: len(defs.load_asset_value(f"raw_{t}", instance=instance)) for t in ("telemetry", "errors")}

        start = pd.Timestamp(settings.synthetic_start) + timedelta(days=DAYS)
        landed = land_new_days(Path(settings.landing_dir), start, with_failures=with_failures)
        tick = landing_sensor(dg.build_sensor_context(instance=instance, resources=defs.resources))
        assert isinstance(tick, dg.SensorResult) and len(tick.run_requests) == 1
        request = tick.run_requests[0]
        ingest = defs.resolve_job_def("ingest_landed_files").execute_in_process(
            run_config=request.run_config, instance=instance, tags=request.tags
        )
        assert ingest.success
        second_tick = landing_sensor(
            dg.build_sensor_context(instance=instance, cursor=tick.cursor, resources=defs.resources)
        )
        assert isinstance(second_tick, dg.SkipReason)

        ticks = tick_until_quiet(defs, instance, cursor)
        raw_after = {t: len(defs.load_asset_value(f"raw_{t}", instance=instance)) for t in ("telemetry", "errors")}
        drift_key = dg.AssetCheckKey(dg.AssetKey("features"), "drift")
        drift = instance.event_log_storage.get_latest_asset_check_execution_by_key([drift_key]).get(drift_key)
        assert drift is not None, f"the drift check never ran; automation requested {ticks}"
        promotion: PromotionOutcome = defs.load_asset_value("promotion", instance=instance)
    return {
        "landed": landed,
        "raw_before": raw_before,
        "raw_after": raw_after,
        "ticks": ticks,
        "drift": drift,
        "promotion": promotion,
        "champion_before": champion_before,
        "champion_after": alias_version(settings.mlflow_tracking_uri, settings.registered_model_name),
        "history": alias_history(settings.mlflow_tracking_uri, settings.registered_model_name),
    }


def save_summary(artifacts: Path, name: str, outcome: dict[str, Any]) -> None:
    """What the run did, for the operator reading the test artifacts (e2e/conftest.py)."""
    folder = artifacts / "e2e"
    folder.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in outcome.items() if k != "drift"}
    summary["promotion"] = dataclasses.asdict(outcome["promotion"])
    summary["drift_check_passed"] = outcome["drift"].evaluation.passed
    summary["drift_metadata"] = {k: str(v.value) for k, v in outcome["drift"].evaluation.metadata.items()}
    summary["ticks"] = [sorted(t) for t in outcome["ticks"]]
    (folder / f"{name}.json").write_text(json.dumps(summary, indent=2, default=str))


def assert_common(outcome: dict[str, Any]) -> None:
    for table in ("telemetry", "errors"):
        assert outcome["raw_after"][table] - outcome["raw_before"][table] == outcome["landed"][table]
    evaluation = outcome["drift"].evaluation
    assert evaluation is not None and not evaluation.passed, "the drift check should have failed"
    requested = set().union(*outcome["ticks"])
    assert {"validated_telemetry", "features", "features:drift", "model", "evaluation", "promotion"} <= requested
    assert outcome["promotion"].candidate_version != outcome["champion_before"]  # a challenger was trained


def test_recoverable_drift_promotes_the_challenger(
    isolated_project: Path, monkeypatch: pytest.MonkeyPatch, artifacts: Path
) -> None:
    outcome = run_loop(isolated_project, monkeypatch, with_failures=True)
    save_summary(artifacts, "recoverable_drift", outcome)
    assert_common(outcome)
    assert outcome["promotion"].decision.outcome == "promoted", outcome["promotion"].reason
    assert outcome["champion_after"] == outcome["promotion"].candidate_version
    assert [h["version"] for h in outcome["history"]][-1] == outcome["champion_after"]
    assert SERVING & set().union(*outcome["ticks"]), "the serving assets should rebuild after a promotion"


def test_a_challenger_without_evidence_is_rejected(
    isolated_project: Path, monkeypatch: pytest.MonkeyPatch, artifacts: Path
) -> None:
    outcome = run_loop(isolated_project, monkeypatch, with_failures=False)
    save_summary(artifacts, "rejected_challenger", outcome)
    assert_common(outcome)
    assert outcome["promotion"].decision.outcome == "rejected"
    assert "FAIL beats_baselines" in outcome["promotion"].reason  # no failure to announce in the test period
    assert outcome["champion_after"] == outcome["champion_before"]
    assert not SERVING & set().union(*outcome["ticks"]), "nothing to rebuild when the champion stays"

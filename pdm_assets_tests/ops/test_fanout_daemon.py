"""The machine-group fan-out on Dagster's own engine: the real daemon, a Postgres instance, S3 (moto) only.

One stack for the module (support/fanout.py): a backfill of every group through the daemon, then a file landing
for one group, then two trainings submitted together. Every run is its own process in a fresh empty directory.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pdm_assets.lib.data.groups import group_index, group_keys
from pdm_assets_tests.support.fanout import FanoutStack, Fleet, bucket_keys, fanout_stack
from pdm_assets_tests.support.fanout_launcher import CWD_TAG
from pdm_assets_tests.support.postgres import PostgresCluster

pytestmark = pytest.mark.timeout(900)

FLEET = Fleet(machines=12, days=120, groups=3, max_concurrent_runs=2)
GROUPS = group_keys(FLEET.groups)
STAGES = ("ingest", "features", "training")
FAN_IN = {"baselines", "model", "evaluation", "promotion"}
BACKFILL_TIMEOUT_S = 420.0
LANDING_TIMEOUT_S = 300.0  # the landing sensor and the automation sensor each tick every 30 s
TRAINING_TIMEOUT_S = 300.0
LANDED_GROUP = GROUPS[1]


@dataclass
class Backfilled:
    stack: FanoutStack
    assets: list[str]
    partitioned: list[str]
    run_ids: list[str]
    started: float


@pytest.fixture(scope="module")
def backfilled(postgres_cluster: PostgresCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backfilled]:
    work = tmp_path_factory.mktemp("fanout")
    with fanout_stack(postgres_cluster, work, FLEET) as stack:
        assets = stack.assets_of(*STAGES)
        started = time.time()
        backfill = stack.launch_backfill(assets, title="every machine group")
        run_ids = stack.wait_for_backfill(backfill, BACKFILL_TIMEOUT_S)
        yield Backfilled(stack, assets, stack.partitioned_assets(assets), run_ids, started)


def test_a_backfill_materializes_every_group_then_the_fan_in_once(backfilled: Backfilled) -> None:
    stack = backfilled.stack
    assert set(backfilled.assets) - set(backfilled.partitioned) == FAN_IN
    assert {"raw_telemetry", "validated_telemetry", "quarantine", "features", "labels", "training_sample",
            "scored_rows"} <= set(backfilled.partitioned)
    for asset in backfilled.partitioned:
        partitions = sorted(m.partition for m in stack.materializations(asset) if m.run_id in backfilled.run_ids)
        assert partitions == GROUPS, asset
    for asset in FAN_IN:
        found = [m for m in stack.materializations(asset) if m.run_id in backfilled.run_ids]
        assert [m.partition for m in found] == [None], asset
    # one run per group for each partitioned stretch, and the fan-in runs: never one run for everything
    partitions = [stack.run_windows(backfilled.run_ids)[r].tags.get("dagster/partition") for r in backfilled.run_ids]
    assert sorted(p for p in partitions if p) == sorted(GROUPS * partitions.count(GROUPS[0])), partitions
    assert partitions.count(None) >= 1
    # the values are in the bucket, partition by partition
    stored = bucket_keys(stack.endpoint, "assets/")
    for group in GROUPS:
        assert any(key.startswith(f"assets/features/{group}") for key in stored), sorted(stored)[:20]
    assert any(key.startswith("mlflow/") for key in bucket_keys(stack.endpoint)), "the model's artifacts in S3"


def test_the_model_trained_on_every_groups_sample(backfilled: Backfilled) -> None:
    stack = backfilled.stack
    (model,) = [m for m in stack.materializations("model") if m.run_id in backfilled.run_ids]
    samples = {m.partition: m.metadata for m in stack.materializations("training_sample")
               if m.run_id in backfilled.run_ids}
    by_group = model.metadata["sample_rows_by_group"]
    assert sorted(by_group) == GROUPS
    assert all(rows > 0 for rows in by_group.values()), by_group
    assert {group: samples[group]["dagster/row_count"] for group in GROUPS} == by_group
    assert model.metadata["train_rows"] + model.metadata["validation_rows"] <= sum(by_group.values())


def landed_rows(group: str, machines: int, start: str) -> tuple[str, str, list[int]]:
    """Telemetry and errors CSV for the machines of one group, a day after the synthetic fleet ends."""
    import pandas as pd

    index, groups = group_index(group)
    ids = [m for m in range(1, machines + 1) if m % groups == index][:2]
    hours = pd.date_range(start, periods=24, freq="h")
    telemetry = "datetime,machineID,volt,rotate,pressure,vibration\n" + "".join(
        f"{t:%Y-%m-%d %H:%M:%S},{m},170.0,450.0,100.0,40.0\n" for m in ids for t in hours)
    errors = "datetime,machineID,errorID\n" + "".join(f"{hours[5]:%Y-%m-%d %H:%M:%S},{m},error1\n" for m in ids)
    return telemetry, errors, ids


def test_a_landing_for_one_group_refreshes_only_that_group_then_the_evaluation(backfilled: Backfilled) -> None:
    stack = backfilled.stack
    evaluations_before = len(stack.materializations("evaluation"))
    landed_at = time.time()
    telemetry, errors, _ = landed_rows(LANDED_GROUP, FLEET.machines, "2015-05-03")
    stack.land("telemetry_20150503T0000.csv", telemetry)
    stack.land("errors_20150503T0000.csv", errors)

    def evaluated_after_landing() -> bool:
        return len(stack.materializations("evaluation")) > evaluations_before

    stack.wait_for("the evaluation after the landing", evaluated_after_landing, LANDING_TIMEOUT_S)
    later = {r: w for r, w in stack.run_windows().items() if w.enqueued >= landed_at}
    stack.wait_for_runs(list(later), TRAINING_TIMEOUT_S)
    sensors = {w.tags.get("dagster/sensor_name") for w in later.values()}
    assert sensors == {"landing_sensor", "automation_sensor"}, sensors  # the daemon's sensors alone
    landing_runs = [w for w in later.values() if w.tags.get("dagster/sensor_name") == "landing_sensor"]
    assert [w.tags.get("dagster/partition") for w in landing_runs] == [LANDED_GROUP]
    for asset in ("raw_telemetry", "validated_telemetry", "features", "labels", "training_sample"):
        refreshed = [m.partition for m in stack.materializations(asset) if m.run_id in later]
        assert refreshed == [LANDED_GROUP], (asset, refreshed)
    scored = [m.partition for m in stack.materializations("scored_rows") if m.run_id in later]
    # The landed rows may drift enough for the group's drift check to request a new version, which every group's
    # scores then follow; without one, only the landed group is scored again.
    retrained = [m for m in stack.materializations("model") if m.run_id in later]
    assert scored.count(LANDED_GROUP) >= 1 and set(scored) <= set(GROUPS if retrained else [LANDED_GROUP]), scored
    other_groups = {w.tags.get("dagster/partition") for w in later.values()} - {LANDED_GROUP, None}
    assert not other_groups or retrained, other_groups
    assert [m for m in stack.materializations("evaluation") if m.run_id in later]


def test_two_trainings_submitted_together_never_run_at_once(backfilled: Backfilled) -> None:
    stack = backfilled.stack
    first, second = (stack.launch_run(["model"], tags={"pdm/test": f"training-{n}"}) for n in (1, 2))
    stack.wait_for_runs([first, second], TRAINING_TIMEOUT_S)
    windows = stack.run_windows([first, second])
    one, other = sorted(windows.values(), key=lambda w: w.start or 0)
    assert not one.overlaps(other), (one, other)
    # max_concurrent_runs (2) had room for both: the `training` pool held the later one in the queue
    assert other.enqueued < one.end  # type: ignore[operator]
    assert stack.dequeued_at(other.run_id) >= one.end  # type: ignore[operator]
    versions = {m.metadata["registered_version"] for m in stack.materializations("model") if m.run_id in windows}
    assert len(versions) == 2, versions


def test_every_run_had_its_own_directory_and_the_instance_holds_no_file(backfilled: Backfilled) -> None:
    stack = backfilled.stack
    stack.wait_for_runs(list(stack.run_windows()), TRAINING_TIMEOUT_S)  # the automation's refreshes too
    runs = stack.run_windows()
    stats = stack.run_stats()
    cwds = [w.tags[CWD_TAG] for w in runs.values()]
    assert len(set(cwds)) == len(cwds) == len(runs)
    finished = {r for r, w in runs.items() if w.status in {"SUCCESS", "FAILURE"}}
    assert finished <= set(stats), "every finished run's process recorded its stats"
    for run_id in finished:
        assert stats[run_id]["cwd"] == runs[run_id].tags[CWD_TAG]
        assert stats[run_id]["peak_rss_mb"] > 50 and stats[run_id]["wall_seconds"] > 0
    home = Path(stack.env["DAGSTER_HOME"])
    files = sorted(str(p.relative_to(home)) for p in home.rglob("*") if p.is_file())
    assert files == ["dagster.yaml"], "instance state went to files beside dagster.yaml, not to Postgres"

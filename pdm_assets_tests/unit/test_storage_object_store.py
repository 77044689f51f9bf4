"""PDM_STORAGE_URI: asset values in a shared store, frames as Parquet and everything else pickled, partitions each
in their own file; unset, Dagster's default IO manager stays."""

import pickle
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from upath import UPath

from pdm_assets.defs.resources import ObjectStoreIOManager, build_resources
from pdm_assets.lib import storage
from pdm_assets.settings import Settings

PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class Fitted:
    """Stands in for a fitted object: a dataclass holding a frame."""

    name: str
    coefficients: pd.DataFrame


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "datetime": pd.date_range("2015-01-01 06:00", periods=4, freq="h"),
            "machineID": [1, 1, 2, 2],
            "volt": [170.5, 171.0, None, 169.25],
            "model": pd.Categorical(["model3", "model3", "model4", "model4"]),
        }
    )


def test_a_frame_is_stored_as_parquet_and_reads_back_equal(tmp_path: Path) -> None:
    root = storage.storage_root(str(tmp_path / "store"))
    written = storage.write_value(frame(), root / "features")
    assert written.name == "features.parquet"
    assert Path(written.path).read_bytes()[:4] == PARQUET_MAGIC
    assert pq.read_table(Path(written.path)).num_rows == 4
    pd.testing.assert_frame_equal(storage.read_value(root / "features"), frame())


def test_an_object_is_pickled_and_reads_back_equal(tmp_path: Path) -> None:
    root = storage.storage_root(str(tmp_path / "store"))
    fitted = Fitted("model", frame())
    written = storage.write_value(fitted, root / "model")
    assert written.name == "model.pkl"
    with Path(written.path).open("rb") as handle:
        assert isinstance(pickle.load(handle), Fitted)
    loaded = storage.read_value(root / "model")
    assert isinstance(loaded, Fitted) and loaded.name == "model"
    pd.testing.assert_frame_equal(loaded.coefficients, frame())


def test_a_frame_arrow_cannot_hold_is_pickled_instead(tmp_path: Path) -> None:
    mixed = pd.DataFrame({"volt": [170.5, "not a number"]}, dtype=object)  # a raw column as read from a bad file
    written = storage.write_value(mixed, storage.storage_root(str(tmp_path)) / "raw_telemetry")
    assert written.name == "raw_telemetry.pkl"
    pd.testing.assert_frame_equal(storage.read_value(UPath(tmp_path) / "raw_telemetry"), mixed)


def test_a_value_that_changes_type_leaves_no_stale_copy(tmp_path: Path) -> None:
    path = storage.storage_root(str(tmp_path)) / "labels"
    storage.write_value(frame(), path)
    storage.write_value({"not": "a frame"}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.pkl"]
    assert storage.read_value(path) == {"not": "a frame"}


def test_a_missing_value_names_where_it_was_looked_for(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no stored value at .*features"):
        storage.read_value(UPath(tmp_path) / "features")


def test_a_relative_folder_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Path(storage.storage_root("store").path) == tmp_path / "store"
    assert str(storage.storage_root("s3://pdm-store/prefix")) == "s3://pdm-store/prefix"


def test_the_io_manager_is_there_only_when_the_setting_is() -> None:
    assert "io_manager" not in build_resources(Settings())
    chosen = build_resources(Settings(storage_uri="s3://pdm-store/pdm"))["io_manager"]
    assert isinstance(chosen, ObjectStoreIOManager) and chosen.uri == "s3://pdm-store/pdm"


DAYS = dg.DailyPartitionsDefinition(start_date="2015-01-01", end_date="2015-01-04")


@dg.asset
def table() -> pd.DataFrame:
    return frame()


@dg.asset
def fitted(table: pd.DataFrame) -> Fitted:
    return Fitted("fitted", table)


@dg.asset(partitions_def=DAYS)
def daily(context: dg.AssetExecutionContext, table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(day=context.partition_key)


@dg.asset(ins={"daily": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())})
def days_seen(daily: dict[str, pd.DataFrame]) -> list[str]:
    return sorted(daily)


def test_assets_stored_by_one_run_are_loaded_by_another(tmp_path: Path) -> None:
    """Each run on its own ephemeral instance: the store is all they share."""
    resources = {"io_manager": ObjectStoreIOManager.of(str(tmp_path / "store"))}
    assets = [table, fitted, daily, days_seen]
    first = dg.materialize(assets, selection=[table], resources=resources)
    assert first.success
    for day in DAYS.get_partition_keys():
        assert dg.materialize(assets, selection=[daily], partition_key=day, resources=resources).success
    later = dg.materialize(assets, selection=[fitted, days_seen], resources=resources)
    assert later.success
    pd.testing.assert_frame_equal(later.output_for_node("fitted").coefficients, frame())
    assert later.output_for_node("days_seen") == DAYS.get_partition_keys()
    store = tmp_path / "store"
    assert sorted(p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()) == [
        "daily/2015-01-01.parquet", "daily/2015-01-02.parquet", "daily/2015-01-03.parquet",
        "days_seen.pkl", "fitted.pkl", "table.parquet",
    ]
    stored_file = first.get_asset_materialization_events()[0].materialization.metadata["stored_file"]
    assert stored_file.value == str(store / "table.parquet")

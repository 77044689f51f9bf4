"""Machine groups: every row has exactly one group, a new machine needs no change, and the fan-in helpers put
the groups back together as one unpartitioned step would have read them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pdm_assets.lib.data.groups import (
    UNREADABLE_GROUP,
    affected_groups,
    by_group,
    combined,
    group_index,
    group_key,
    group_keys,
    groups_of,
    rows_of_group,
    tables_of_group,
)
from pdm_assets.lib.data.sources import load_local
from pdm_assets.lib.data.tables import TABLE_NAMES
from pdm_assets.lib.synthetic.simulate import generate_fleet


def test_keys_name_the_group_count_and_read_back() -> None:
    assert group_keys(3) == ["g0-of-3", "g1-of-3", "g2-of-3"]
    assert group_keys(12)[0] == "g00-of-12"
    assert all(group_index(key) == (i, 12) for i, key in enumerate(group_keys(12)))
    with pytest.raises(ValueError, match="not a machine-group key"):
        group_index("2015-01-01")
    with pytest.raises(ValueError, match="outside"):
        group_key(3, 3)


def test_every_machine_id_has_one_group_and_unreadable_ids_go_to_the_first() -> None:
    ids = pd.Series([1, 2, 3, 4, 1001, "7", "x", None, 2.5])
    assert groups_of(ids, 3).tolist() == [1, 2, 0, 1, 2, 1, UNREADABLE_GROUP, UNREADABLE_GROUP, UNREADABLE_GROUP]
    # A machine never seen before has its group from its id alone.
    # A machine never seen before has its group from its id alone.
    assert affected_groups([100_003, 5, 9], 4) == ["g1-of-4", "g3-of-4"]


def test_the_groups_of_a_fleet_are_disjoint_and_complete() -> None:
    fleet = generate_fleet(machines=7, days=3, seed=1)
    for name in TABLE_NAMES:
        frame = fleet.table(name)
        parts = [rows_of_group(frame, i, 3) for i in range(3)]
        assert sum(len(p) for p in parts) == len(frame)
        machines = [set(p["machineID"]) for p in parts]
        assert all(not (a & b) for i, a in enumerate(machines) for b in machines[i + 1:])
    assert tables_of_group(fleet, 0, 1) is fleet


def test_a_table_without_machine_ids_goes_whole_to_the_first_group() -> None:
    frame = pd.DataFrame({"datetime": ["2015-01-01"], "volt": [1.0]})
    assert len(rows_of_group(frame, UNREADABLE_GROUP, 2)) == 1
    assert len(rows_of_group(frame, 1, 2)) == 0


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_group_reads_only_its_machines_rows_from_files(tmp_path: Path, suffix: str) -> None:
    fleet = generate_fleet(machines=5, days=2, seed=3)
    for name in TABLE_NAMES:
        stem = {"telemetry": "PdM_telemetry", "errors": "PdM_errors", "maint": "PdM_maint",
                "failures": "PdM_failures", "machines": "PdM_machines"}[name]
        frame = fleet.table(name)
        path = tmp_path / f"{stem}{suffix}"
        frame.to_parquet(path) if suffix == ".parquet" else frame.to_csv(path, index=False)
    whole = load_local(tmp_path)
    for index in range(2):
        group = load_local(tmp_path, group=(index, 2))
        for name in TABLE_NAMES:
            expected = rows_of_group(whole.table(name), index, 2)
            pd.testing.assert_frame_equal(group.table(name), expected, check_dtype=False)


def test_combined_puts_groups_back_in_key_order_and_frees_them() -> None:
    frame = pd.DataFrame({"machineID": [1, 1, 2, 3, 4], "datetime": pd.to_datetime(
        ["2015-01-01", "2015-01-02", "2015-01-01", "2015-01-01", "2015-01-03"]), "x": np.arange(5)})
    parts = {group_key(i, 3): rows_of_group(frame, i, 3) for i in range(3)}
    assert by_group(parts).keys() == parts.keys()
    pd.testing.assert_frame_equal(combined(parts), frame)
    assert parts == {}  # emptied as read
    assert combined(frame) is frame
    assert by_group(frame) == {"": frame}
    with pytest.raises(ValueError, match="backfill"):
        combined({})

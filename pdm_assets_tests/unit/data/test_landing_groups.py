"""Which group runs a landed file needs, and one state for a request's several runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from pdm_assets.lib.data.landing import LandedFile
from pdm_assets.lib.data.landing_groups import check_landed_file, files_by_group, landed_groups
from pdm_assets.lib.data.landing_ticks import request_state

HEADER = "datetime,machineID,errorID\n"


def landed(folder: Path, name: str, machines: list[object]) -> LandedFile:
    path = folder / name
    path.write_text(HEADER + "".join(f"2016-01-01 06:00:00,{m},error1\n" for m in machines))
    return LandedFile(path, 0, 0)


def test_a_table_touches_the_groups_of_its_machines() -> None:
    assert landed_groups(pd.DataFrame({"machineID": [1, 4, 2]}), 3) == ["g1-of-3", "g2-of-3"]
    assert landed_groups(pd.DataFrame({"machineID": ["x", 3]}), 3) == ["g0-of-3"]  # unreadable: the first group
    assert landed_groups(pd.DataFrame({"volt": [1.0]}), 3) == ["g0-of-3"]
    assert landed_groups(None, 3) == ["g0-of-3"]


def test_each_group_run_gets_the_files_that_touch_it(tmp_path: Path) -> None:
    first = check_landed_file(landed(tmp_path, "errors_20160101T0600.csv", [1, 2]), 3)
    second = check_landed_file(landed(tmp_path, "errors_20160102T0600.csv", [4, "?"]), 3)
    assert first is not None and second is not None
    assert (first.groups, second.groups) == (["g1-of-3", "g2-of-3"], ["g0-of-3", "g1-of-3"])
    runs = files_by_group([first, second], 3)
    assert {key: [f.path.name for f in files] for key, files in runs.items()} == {
        "g0-of-3": ["errors_20160102T0600.csv"],
        "g1-of-3": ["errors_20160101T0600.csv", "errors_20160102T0600.csv"],
        "g2-of-3": ["errors_20160101T0600.csv"],
    }


def test_one_group_is_one_unpartitioned_run(tmp_path: Path) -> None:
    checked = check_landed_file(landed(tmp_path, "errors_20160101T0600.csv", [1, 2]), 1)
    assert checked is not None and checked.groups == [] and list(files_by_group([checked], 1)) == [None]
    assert files_by_group([], 1) == {} and files_by_group([], 3) == {}


def test_a_bad_file_has_problems_and_no_groups_and_a_gone_one_is_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "errors_20160101T0600.csv"
    bad.write_text("datetime,machineID\n2016-01-01 06:00:00,1\n")
    checked = check_landed_file(LandedFile(bad, 0, 0), 3)
    assert checked is not None and checked.problems == ["missing column 'errorID'"] and checked.groups == []
    assert check_landed_file(LandedFile(tmp_path / "errors_20160102T0600.csv", 0, 0), 3) is None


def test_a_request_is_done_when_every_group_run_succeeded() -> None:
    assert request_state(["succeeded", "in_flight"], 2) == "in_flight"
    assert request_state(["succeeded", "failed"], 2) == "failed"
    assert request_state(["succeeded"], 2) == "missing"  # one run not launched yet
    assert request_state([], 1) == "missing"
    assert request_state(["succeeded", "succeeded"], 2) == "succeeded"

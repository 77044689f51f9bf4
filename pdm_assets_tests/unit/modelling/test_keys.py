"""Machine-time keys: one int64 per (machine, time) that sorts by machine, then time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pdm_assets.lib.modelling.keys import frame_keys, key_machines, machine_time_keys

JAN_1_2015 = 1_420_070_400  # seconds since 1970 at 2015-01-01 00:00


def test_a_key_is_the_machine_times_the_stride_plus_epoch_seconds() -> None:
    frame = pd.DataFrame({
        "machineID": [2, 1, 1],
        "datetime": pd.to_datetime(["2015-01-01 00:00", "2015-01-02 00:00", "1970-01-01 01:00"]),
    })
    keys = frame_keys(frame)
    assert keys.tolist() == [2 * 10**10 + JAN_1_2015, 10**10 + JAN_1_2015 + 86_400, 10**10 + 3_600]
    assert np.argsort(keys).tolist() == [2, 1, 0]  # machine 1 before machine 2, then by time
    assert key_machines(keys).tolist() == [2, 1, 1]


def test_keys_do_not_depend_on_the_integer_width_of_machine_ids() -> None:
    seconds = np.array([JAN_1_2015, JAN_1_2015], dtype=np.int64)
    narrow = machine_time_keys(np.array([100, 200], dtype=np.int32), seconds)
    assert narrow.dtype == np.int64
    assert narrow.tolist() == [100 * 10**10 + JAN_1_2015, 200 * 10**10 + JAN_1_2015]

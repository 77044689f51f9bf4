"""The request a client would send, built from the raw tables: for tests, load tests and benchmarks."""

from __future__ import annotations

import pandas as pd

from pdm_assets.lib.data.tables import SENSORS
from pdm_assets.lib.modelling.features import ERROR_LOOKBACK_HOURS, TELEMETRY_LOOKBACK_HOURS
from pdm_assets.lib.serving.schema import MachineHistory


def histories_from_tables(
    telemetry: pd.DataFrame,
    errors: pd.DataFrame,
    maint: pd.DataFrame,
    machines: pd.DataFrame,
    points: pd.DataFrame,
) -> list[MachineHistory]:
    """The request a client would send for each (machineID, datetime) point of the raw tables.

    Telemetry of the 24 h window, errors of the 168 h lookback and every replacement up to the point.
    """
    names = ("telemetry", "errors", "maint")
    by_machine = {
        name: dict(list(table.groupby("machineID", sort=False)))  # numpy int keys match int lookups
        for name, table in zip(names, (telemetry, errors, maint), strict=True)
    }
    empty = {name: table.iloc[:0] for name, table in zip(names, (telemetry, errors, maint), strict=True)}
    machine_rows = machines[["machineID", "model", "age"]].itertuples(index=False)
    info = {int(m): (str(model), int(age)) for m, model, age in machine_rows}
    out = []
    for machine, t in zip(points["machineID"].astype(int), pd.to_datetime(points["datetime"]), strict=True):
        tele, errs, reps = (by_machine[name].get(machine, empty[name]) for name in names)
        window_start = t.floor("h") - pd.Timedelta(hours=TELEMETRY_LOOKBACK_HOURS)
        tele = tele[(tele["datetime"] > window_start) & (tele["datetime"] <= t)].sort_values("datetime")
        errs = errs[(errs["datetime"] > t - pd.Timedelta(hours=ERROR_LOOKBACK_HOURS)) & (errs["datetime"] <= t)]
        errs = errs.sort_values(["datetime", "errorID"])[["datetime", "errorID"]]
        reps = reps[reps["datetime"] <= t].sort_values(["datetime", "comp"])[["datetime", "comp"]]
        model, age = info[machine]
        out.append(MachineHistory.model_validate({
            "machine_id": machine, "model": model, "age": age, "as_of": t.to_pydatetime(),
            "telemetry": [
                {"datetime": d.to_pydatetime(), "volt": v, "rotate": r, "pressure": p, "vibration": x}
                for d, v, r, p, x in tele[["datetime", *SENSORS]].itertuples(index=False)
            ],
            "errors": [{"datetime": d.to_pydatetime(), "error_id": e} for d, e in errs.itertuples(index=False)],
            "maintenance": [{"datetime": d.to_pydatetime(), "comp": c} for d, c in reps.itertuples(index=False)],
        }))
    return out

"""Request bodies for POST /predict: one machine's last 24 h, as a client would send them.

Plain Python (no locust import), shared by the locustfile and the fault tests.
"""

from __future__ import annotations

import json
import random


def build_payloads(count: int = 200, seed: int = 7, per_request: int = 1) -> list[tuple[list[int], bytes]]:
    """(machine ids, JSON body) pairs; each history is a synthetic machine's 24 h up to a random hour."""
    import pandas as pd

    from pdm_assets.lib.serving.requests_from_tables import histories_from_tables
    from pdm_assets.lib.synthetic.simulate import generate_fleet

    fleet = generate_fleet(machines=10, days=20, seed=seed)
    telemetry = fleet.table("telemetry")
    rng = random.Random(seed)
    start, end = telemetry["datetime"].min() + pd.Timedelta(days=8), telemetry["datetime"].max()
    hours = int((end - start) / pd.Timedelta(hours=1))
    n = count * per_request
    points = pd.DataFrame({
        "machineID": [rng.randint(1, 10) for _ in range(n)],
        "datetime": [start + pd.Timedelta(hours=rng.randrange(hours)) for _ in range(n)],
    })
    histories = histories_from_tables(telemetry, fleet.table("errors"), fleet.table("maint"),
                                      fleet.table("machines"), points)
    out = []
    for i in range(0, n, per_request):
        batch = histories[i:i + per_request]
        body = json.dumps({"histories": [h.model_dump(mode="json") for h in batch]}).encode()
        out.append(([h.machine_id for h in batch], body))
    return out

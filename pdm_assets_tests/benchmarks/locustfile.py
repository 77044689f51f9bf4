"""Locust user for the serving benchmark: POST prepared JSON bodies, keep every latency.

Driven by pdm_assets_tests.benchmarks.serving through the environment:
    BENCH_BODIES  a JSON file holding a list of request bodies (each sent as is, chosen round robin)
    BENCH_PATH    the route (/predict or /invocations)
    BENCH_RATE    requests per second per user; 0 means as fast as the server answers (closed loop)
    BENCH_OUT     where to write {"latencies_ms": [...], "done_at": [...], "failures": n, "errors": [...]}
Locust's own percentiles are rounded to whole milliseconds and above; these are the raw values.
Paced users (pacing.py) send at an even fixed rate, not in bursts.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

from locust import events, task
from locust.contrib.fasthttp import FastHttpUser

from pdm_assets_tests.benchmarks.pacing import PacedUser

ROUTE = os.environ.get("BENCH_PATH", "/predict")
RATE = float(os.environ.get("BENCH_RATE", "0"))
BODIES = [json.dumps(body) for body in json.loads(Path(os.environ["BENCH_BODIES"]).read_text())]
_NEXT = itertools.cycle(range(len(BODIES)))
_LATENCIES: list[float] = []
_DONE_AT: list[float] = []
_ERRORS: list[str] = []
_FAILURES = [0]
MAX_ERRORS_KEPT = 5


@events.request.add_listener
def _record(response_time: float, exception: Exception | None, **_: Any) -> None:
    if exception is None:
        _LATENCIES.append(response_time)
        _DONE_AT.append(time.time())
    else:
        _FAILURES[0] += 1
        if len(_ERRORS) < MAX_ERRORS_KEPT:
            _ERRORS.append(repr(exception)[:300])


@events.quitting.add_listener
def _write(**_: Any) -> None:
    failures = _FAILURES[0]
    Path(os.environ["BENCH_OUT"]).write_text(
        json.dumps({"latencies_ms": _LATENCIES, "done_at": _DONE_AT, "failures": failures, "errors": _ERRORS})
    )


class PostUser(PacedUser, FastHttpUser):
    rate_per_user = RATE

    @task
    def post(self) -> None:
        body = BODIES[next(_NEXT)]
        with self.client.post(ROUTE, data=body, headers={"content-type": "application/json"},
                              name=ROUTE, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")

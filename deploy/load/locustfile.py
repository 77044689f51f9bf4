"""Locust load for POST /predict: one 24 h machine history per request, a fixed total rate.

    uv run locust -f deploy/load/locustfile.py --headless --host http://127.0.0.1:3000 \
        --users 50 --spawn-rate 50 --run-time 60s --csv reports/load/predict

Each user sends PDM_LOAD_RPS_PER_USER requests per second on its own schedule (default 1: 50 users make
50 evenly spread rps, and keep making it as long as an answer takes less than a second, so a slow service
meets the load it is asked to carry).
Histories come from a synthetic fleet, the request a client would send (payloads.py); an
answer counts as a failure unless it is a 200 with one prediction for the machine asked about.
Send it only to a service you run yourself, on this machine.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import gevent
from locust import FastHttpUser, events, task

sys.path.insert(0, str(Path(__file__).resolve().parent))
from payloads import build_payloads  # noqa: E402

from pdm_assets_tests.benchmarks.pacing import PacedUser  # noqa: E402

RATE_PER_USER = float(os.environ.get("PDM_LOAD_RPS_PER_USER", "1"))
PAYLOADS: list[tuple[list[int], bytes]] = []


@events.init.add_listener
def _prepare(environment, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    PAYLOADS.extend(build_payloads())
    # Building took seconds in which gevent's loop did not run: without this, the --run-time timer counts
    # from the loop's stale clock and the run ends that many seconds early.
    gevent.get_hub().loop.update_now()


class PredictUser(PacedUser, FastHttpUser):
    """Paced (pdm_assets_tests/benchmarks/pacing.py): the users' requests arrive evenly, not all 50 in the same instant."""

    rate_per_user = RATE_PER_USER

    @task
    def predict(self) -> None:
        machine_ids, body = random.choice(PAYLOADS)
        with self.client.post("/predict", data=body, headers={"content-type": "application/json"},
                              name="/predict", catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
                return
            answer = response.json()
            if [p["machine_id"] for p in answer] != machine_ids:
                response.failure(f"wrong answer for machines {machine_ids}: {response.text[:200]}")
            elif not all(0.0 <= p["failure_probability"] <= 1.0 for p in answer):
                response.failure(f"probability out of [0, 1]: {response.text[:200]}")

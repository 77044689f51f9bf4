"""A fixed request rate from locust users without bursts.

locust's constant_throughput makes every user wait out the rest of its period after each request, so users
started together keep sending together: 50 users at 1 rps send 50 requests in the same instant each second.
A paced user keeps its own schedule instead, offset from the others' by an even share of one period, so the
requests of all users arrive evenly. A user whose answer comes late sends the next request at once.
"""

from __future__ import annotations

import itertools
import time
from typing import Any

import gevent

_STARTED = itertools.count()


class PacedUser:
    """Mix into a locust User before it (`class U(PacedUser, FastHttpUser)`); set `rate_per_user` (requests per
    second; 0 means back to back, a closed loop)."""

    rate_per_user: float = 0.0
    environment: Any
    _next_at: float = 0.0

    def on_start(self) -> None:
        if self.rate_per_user > 0:
            users = max(1, int(getattr(self.environment.parsed_options, "num_users", 1) or 1))
            self._next_at = time.time() + (next(_STARTED) % users) / (users * self.rate_per_user)
            gevent.sleep(max(0.0, self._next_at - time.time()))

    def wait_time(self) -> float:
        if self.rate_per_user <= 0:
            return 0.0
        self._next_at += 1.0 / self.rate_per_user
        return max(0.0, self._next_at - time.time())

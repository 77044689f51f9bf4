"""Graceful drain of a worker: on SIGTERM, /readyz turns false while requests are still served, then the
server stops accepting, finishes the requests it has and exits.

Load balancers that route by readiness see the worker leave before it closes (Kubernetes also removes a
terminating pod from its endpoints; its preStop sleep covers the time that takes to reach every node).
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

logger = logging.getLogger("bentoml.service.pdm")


class Drain:
    """SIGTERM marks the worker as draining; `seconds` later the server's own SIGTERM handler runs."""

    def __init__(self) -> None:
        self._started = threading.Event()

    @property
    def draining(self) -> bool:
        return self._started.is_set()

    def install(self, seconds: float) -> bool:
        """Put the drain in front of the server's SIGTERM handler (main thread only); False when there is none
        to hand over to (not under a server), and nothing changes."""
        server_handler = signal.getsignal(signal.SIGTERM)
        if not callable(server_handler):
            return False

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            if self._started.is_set():
                return  # the arbiter forwards the signal its process group already got: one drain
            self._started.set()
            logger.info("SIGTERM: /readyz is false; serving for %.1f s more, then finishing requests in flight",
                        seconds)
            timer = threading.Timer(seconds, server_handler, args=(signum, None))
            timer.daemon = True
            timer.start()

        signal.signal(signal.SIGTERM, on_sigterm)
        return True

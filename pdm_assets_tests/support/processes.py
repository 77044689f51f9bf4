"""Subprocesses of the tests: a free loopback port, polling until something is up, stopping a process group."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import requests

from pdm_assets_tests.benchmarks.serving import free_port, stop_process_group

__all__ = ["free_port", "start_until_ready", "stop_process_group", "wait_for"]


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.25) -> Any:
    """Poll until predicate() is truthy (returning it) or fail after timeout seconds.

    A connection error or a half-formed answer (requests/httpx/OS errors, ValueError, KeyError, IndexError)
    counts as "not yet"; anything else, an AssertionError from the predicate included, fails at once."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
        except (requests.RequestException, httpx.HTTPError, OSError, ValueError, KeyError, IndexError) as error:
            last = error
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


def start_until_ready(args: Sequence[str], ready_url: str, log: Path, timeout: float,
                      env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `args` in its own process group (output to `log`) and wait until `ready_url` answers 200.

    Fails with the log's tail if the process exits or is not ready in time (and stops it then)."""
    with log.open("ab") as out:
        process = subprocess.Popen(list(args), stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"{args[0]} exited with {process.returncode}:\n"
                                 f"{log.read_text(errors='replace')[-3000:]}")
        return httpx.get(ready_url, timeout=2).status_code == 200

    try:
        wait_for(f"{ready_url} (log {log})", ready, timeout)
    except BaseException:
        stop_process_group(process)
        raise
    return process

"""What the landing sensor does on a tick, without Dagster: which files are ready, which request is still running,
and which files a failed run leaves to be requested again. Its memory is a small JSON cursor."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from pdm_assets.lib.data.landing import LandedFile

RunState = Literal["in_flight", "succeeded", "failed", "missing"]
MAX_FAILED_RUNS = 3  # then a file waits until it changes (touch it to try again), instead of failing every tick
LOST_REQUEST_SECONDS = 900.0  # a request with no run after this long was never launched: request it again


@dataclass
class Request:
    """The files (fingerprints) of the ingest runs requested together and not yet finished: one run, or one per
    machine group the files touch."""

    key: str
    files: list[str]
    requested_at: float
    runs: int = 1  # a cursor written before machine groups has no count: one run


def request_state(states: Sequence[RunState], expected: int) -> RunState:
    """One state for a request's runs (the latest run of each group): busy while any runs, failed when any
    failed, missing while fewer than expected were launched, succeeded when all did."""
    if "in_flight" in states:
        return "in_flight"
    if "failed" in states:
        return "failed"
    if len(states) < expected or not states:
        return "missing"
    return "succeeded"


@dataclass
class LandingCursor:
    """Size and mtime of each file at the last tick, the request in flight, and failed runs per file."""

    seen: dict[str, list[int]] = field(default_factory=dict)
    request: Request | None = None
    failed_runs: dict[str, int] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> LandingCursor:
        """The cursor as stored; the older list of fingerprints is dropped, so files it marked are looked at again."""
        data = json.loads(text) if text else {}
        if not isinstance(data, dict):
            return cls()
        request = data.get("request")
        return cls(
            seen={name: list(pair) for name, pair in data.get("seen", {}).items()},
            request=Request(**request) if request else None,
            failed_runs=dict(data.get("failed_runs", {})),
        )

    def dump(self) -> str:
        request = None if self.request is None else self.request.__dict__
        return json.dumps({"seen": self.seen, "request": request, "failed_runs": self.failed_runs}, sort_keys=True)

    def start_request(self, files: list[LandedFile], now: float, runs: int = 1) -> str:
        """Remember a new request of `runs` runs for these files; its key differs from any earlier attempt for the
        same files."""
        fingerprints = [f.fingerprint for f in files]
        attempt = 1 + max(self.failed_runs.get(f, 0) for f in fingerprints)
        digest = hashlib.sha256("|".join(fingerprints).encode()).hexdigest()[:16]
        key = f"landing-{digest}-{attempt}"
        self.request = Request(key, fingerprints, now, runs)
        return key


@dataclass
class TickPlan:
    """Files to check and request now, or why nothing is requested."""

    ready: list[LandedFile]
    waiting: list[str]
    busy: bool
    cursor: LandingCursor


def plan_tick(
    cursor: LandingCursor, files: list[LandedFile], run_state: RunState | None, now: float, settle_seconds: float
) -> TickPlan:
    """Settle the request in flight with its run's state, then pick the files that are complete.

    A file is complete when a `<name>.done` marker is beside it, or when its size and mtime are the same as at the
    previous tick and it is at least `settle_seconds` old; `settle_seconds` 0 trusts every writer to rename."""
    present = {f.fingerprint: f for f in files}
    after = LandingCursor(
        seen={f.path.name: [f.size, f.mtime_ns] for f in files},
        request=cursor.request,
        failed_runs={k: n for k, n in cursor.failed_runs.items() if k in present},
    )
    waiting: list[str] = []
    request = cursor.request
    if request is not None:
        left = [f for f in request.files if f in present]
        lost = run_state == "missing" and now - request.requested_at >= LOST_REQUEST_SECONDS
        if left and (run_state == "in_flight" or (run_state == "missing" and not lost)):
            waiting.append(f"{len(left)} file(s) wait for the ingest run of request {request.key}")
            return TickPlan([], waiting, True, after)
        if left and (run_state == "failed" or lost):
            for fingerprint in left:
                after.failed_runs[fingerprint] = after.failed_runs.get(fingerprint, 0) + 1
        after.request = None

    ready = []
    for landed in files:
        name = landed.path.name
        if after.failed_runs.get(landed.fingerprint, 0) >= MAX_FAILED_RUNS:
            waiting.append(f"{name}: {MAX_FAILED_RUNS} ingest runs failed; change or touch it to try again")
        elif landed.done_marker or settle_seconds == 0:
            ready.append(landed)
        elif cursor.seen.get(name) != [landed.size, landed.mtime_ns]:
            waiting.append(f"{name}: new or still changing")
        elif now - landed.mtime_ns / 1e9 < settle_seconds:
            waiting.append(f"{name}: younger than {settle_seconds:g} s")
        else:
            ready.append(landed)
    return TickPlan(ready, waiting, False, after)

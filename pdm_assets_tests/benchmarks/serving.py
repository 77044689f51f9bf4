"""Serving speed side by side: `bentoml serve` of our bento against `mlflow models serve` of the same champion.

One load generator (locust, headless, in its own process) on 127.0.0.1 for both, one server after the
other: latency at a fixed rate, the most requests per second a closed loop gets at 1 and 2 workers, and
a batch of 100 histories. Every loop is bounded by its duration; servers are stopped by process group.
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LOCUSTFILE = Path(__file__).with_name("locustfile.py")
READY_TIMEOUT_S = 240.0
WARMUP_REQUESTS = 20
MAX_RPS_USERS = 8  # closed-loop users for the throughput runs: enough to keep two workers busy
THROUGHPUT_WARMUP_S = 2.0  # completions in the first seconds of a throughput run are not counted


@dataclass(frozen=True)
class LoadPlan:
    """How long and how hard each measurement runs."""

    rate_rps: float = 50.0
    rate_seconds: float = 30.0
    max_seconds: float = 10.0
    batch_seconds: float = 8.0

    @property
    def warmup_seconds(self) -> float:
        """Completions this early in a throughput run are not counted (connections, first requests)."""
        return min(THROUGHPUT_WARMUP_S, self.max_seconds / 4)


@dataclass
class ServerFigures:
    """One server's figures under the same load."""

    p50_ms: float = math.nan
    p95_ms: float = math.nan
    p99_ms: float = math.nan
    max_rps_1_worker: float = math.nan
    max_rps_2_workers: float = math.nan
    batch100_ms_per_history: float = math.nan
    achieved_rps_at_fixed_rate: float = math.nan
    requests: int = 0
    failures: int = 0
    startup_seconds: dict[str, float] = field(default_factory=dict)
    max_abs_diff_to_in_process: float = math.nan  # the same model must give the same answer


@dataclass(frozen=True)
class Load:
    """What one locust run saw: latencies and completion times of the successful requests."""

    latencies_ms: np.ndarray
    done_at: np.ndarray
    failures: int
    errors: list[str]

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if len(self.latencies_ms) else math.nan

    def throughput(self, warmup_s: float) -> float:
        """Completions per second after the warm-up, up to the last completion."""
        if len(self.done_at) < 2:
            return math.nan
        done = np.sort(self.done_at)
        start = done[0] + warmup_s
        counted = done[done >= start]
        span = done[-1] - start
        return float(len(counted) / span) if span > 0 and len(counted) else math.nan


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except (urllib.error.URLError, OSError):
        return 0


def post(url: str, body: bytes) -> tuple[int, str]:
    """POST a JSON body: the status and the start of the answer."""
    request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), response.read(500).decode(errors="replace")
    except urllib.error.HTTPError as error:
        return int(error.code), error.read(2000).decode(errors="replace")


@dataclass
class RunningServer:
    """A server subprocess in its own process group."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    startup_seconds: float = 0.0

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@contextmanager
def running(name: str, command: list[str], env: dict[str, str], port: int, ready_path: str, log: Path,
            cwd: Path) -> Iterator[RunningServer]:
    """Start `command`, wait until GET ready_path answers 200, stop the whole process group after the block."""
    started = time.monotonic()
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                   start_new_session=True)
    server = RunningServer(name, process, f"http://127.0.0.1:{port}", log)
    try:
        deadline = started + READY_TIMEOUT_S
        while _status(server.url + ready_path) != 200:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {READY_TIMEOUT_S:.0f} s:\n{server.log_tail()}")
            time.sleep(0.25)
        server.startup_seconds = round(time.monotonic() - started, 2)
        yield server
    finally:
        stop_process_group(process)


def stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's own process group, SIGKILL if it lingers."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def bento_server(prepared: dict[str, Any], workers: int, work: Path, env: dict[str, str]) -> Any:
    """`bentoml serve TAG --workers` set through a BentoML config file."""
    config = work / f"bentoml_workers_{workers}.yaml"
    config.write_text(f"services:\n  pdm_service:\n    workers: {workers}\n")
    port = free_port()
    server_env = {**env, "BENTOML_HOME": prepared["bentoml_home"], "BENTOML_CONFIG": str(config),
                  "BENTOML_DO_NOT_TRACK": "True"}
    command = [sys.executable, "-m", "bentoml", "serve", prepared["bento_tag"], "--host", "127.0.0.1",
               "--port", str(port)]
    return running(f"bentoml serve ({workers} worker(s))", command, server_env, port, "/readyz",
                   work / f"bentoml_{workers}.log", work)


def mlflow_server(prepared: dict[str, Any], workers: int, work: Path, env: dict[str, str]) -> Any:
    """`mlflow models serve --env-manager local -m models:/NAME@champion --workers`."""
    port = free_port()
    # mlflow starts `uvicorn` by name: the environment's bin directory must be on PATH.
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
    server_env = {**env, "MLFLOW_TRACKING_URI": prepared["tracking_uri"], "PATH": path}
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", prepared["model_uri"], "--env-manager",
               "local", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    return running(f"mlflow models serve ({workers} worker(s))", command, server_env, port, "/ping",
                   work / f"mlflow_{workers}.log", work)


def run_locust(url: str, route: str, bodies: Path, *, users: int, rate_per_user: float, seconds: float,
               out: Path, env: dict[str, str]) -> Load:
    """One headless locust run against url+route; raw latencies from the bench locustfile."""
    command = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--only-summary",
               "--host", url, "--users", str(users), "--spawn-rate", str(users),
               "--run-time", f"{max(1, round(seconds))}s", "--stop-timeout", "10", "--loglevel", "WARNING"]
    load_env = {**env, "BENCH_BODIES": str(bodies), "BENCH_PATH": route, "BENCH_RATE": str(rate_per_user),
                "BENCH_OUT": str(out)}
    done = subprocess.run(command, env=load_env, capture_output=True, text=True, timeout=seconds + 120,
                          check=False)
    if not out.exists():
        raise RuntimeError(f"locust wrote no result (exit {done.returncode}):\n{done.stderr[-3000:]}")
    raw = json.loads(out.read_text())
    return Load(np.asarray(raw["latencies_ms"], dtype=float), np.asarray(raw["done_at"], dtype=float),
                int(raw["failures"]), list(raw["errors"]))


def warm_up(server: RunningServer, route: str, bodies: Path) -> None:
    """A few sequential requests so that lazy imports and first-call costs are out of the figures."""
    content = json.loads(bodies.read_text())
    for i in range(WARMUP_REQUESTS):
        status, answer = post(server.url + route, json.dumps(content[i % len(content)]).encode())
        if status != 200:
            raise RuntimeError(f"{server.name} answered {status} to a warm-up request: {answer}\n{server.log_tail()}")


def measure(kind: str, prepared: dict[str, Any], bodies_dir: Path, work: Path, plan: LoadPlan,
            env: dict[str, str]) -> ServerFigures:
    """Fixed-rate latency, batch latency and throughput at 1 worker, then throughput at 2 workers."""
    start_server = bento_server if kind == "ours" else mlflow_server
    route = "/predict" if kind == "ours" else "/invocations"
    single, batch = bodies_dir / f"{kind}_single.json", bodies_dir / f"{kind}_batch.json"
    figures = ServerFigures()
    users_at_rate = max(1, round(plan.rate_rps / 5))  # each user paces itself to 5 requests per second
    with start_server(prepared, 1, work, env) as server:
        figures.startup_seconds["1_worker"] = server.startup_seconds
        warm_up(server, route, single)
        warm_up(server, route, batch)
        expected = np.asarray(prepared["expected_failure_probability"], dtype=float)
        figures.max_abs_diff_to_in_process = max_abs_diff(kind, server, route, batch, expected)
        fixed = run_locust(server.url, route, single, users=users_at_rate, rate_per_user=plan.rate_rps / users_at_rate,
                           seconds=plan.rate_seconds, out=work / f"load_{kind}_rate.json", env=env)
        figures.p50_ms, figures.p95_ms, figures.p99_ms = (fixed.percentile(q) for q in (50, 95, 99))
        figures.requests, figures.failures = len(fixed.latencies_ms), fixed.failures
        figures.achieved_rps_at_fixed_rate = len(fixed.latencies_ms) / plan.rate_seconds
        batched = run_locust(server.url, route, batch, users=1, rate_per_user=0, seconds=plan.batch_seconds,
                             out=work / f"load_{kind}_batch.json", env=env)
        figures.batch100_ms_per_history = batched.percentile(50) / 100.0
        figures.failures += batched.failures
        most = run_locust(server.url, route, single, users=MAX_RPS_USERS, rate_per_user=0, seconds=plan.max_seconds,
                          out=work / f"load_{kind}_max1.json", env=env)
        figures.max_rps_1_worker = most.throughput(plan.warmup_seconds)
        figures.failures += most.failures
    with start_server(prepared, 2, work, env) as server:
        figures.startup_seconds["2_workers"] = server.startup_seconds
        warm_up(server, route, single)
        most = run_locust(server.url, route, single, users=MAX_RPS_USERS, rate_per_user=0, seconds=plan.max_seconds,
                          out=work / f"load_{kind}_max2.json", env=env)
        figures.max_rps_2_workers = most.throughput(plan.warmup_seconds)
        figures.failures += most.failures
    return figures


def max_abs_diff(kind: str, server: RunningServer, route: str, batch: Path, expected: np.ndarray) -> float:
    """Score the batch once: max |P(failure)| difference to the pipeline scored in-process."""
    body = json.dumps(json.loads(batch.read_text())[0]).encode()
    request = urllib.request.Request(server.url + route, data=body, headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    if kind == "ours":
        got = np.array([p["failure_probability"] for p in answer], dtype=float)
    else:
        got = 1.0 - np.asarray(answer["predictions"], dtype=float)[:, 0]
    return float(np.max(np.abs(got - expected)))


def measure_both(prepared: dict[str, Any], bodies_dir: Path, work: Path, plan: LoadPlan,
                 env: dict[str, str]) -> dict[str, Any]:
    """Ours, then the peer, under the same plan; ratios ours / peer."""
    ours = measure("ours", prepared, bodies_dir, work, plan, env)
    peer = measure("peer", prepared, bodies_dir, work, plan, env)
    return {
        "ours": asdict(ours),
        "peer": asdict(peer),
        "throughput_ratio": _ratio(ours.max_rps_1_worker, peer.max_rps_1_worker),
        "throughput_ratio_2_workers": _ratio(ours.max_rps_2_workers, peer.max_rps_2_workers),
        "p99_ratio": _ratio(ours.p99_ms, peer.p99_ms),
        "batch100_ratio": _ratio(ours.batch100_ms_per_history, peer.batch100_ms_per_history),
    }


def _ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan

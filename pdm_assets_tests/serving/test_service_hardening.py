"""The bento served by `bentoml serve`, under what a hostile or careless world sends it: a huge body, no API
key, a scrape of the public port, and a SIGTERM with requests in flight. Loopback only; bounded loops."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from pdm_assets_tests.support.processes import free_port
from pdm_assets_tests.support.serving import Server, TrainedProject, histories_at, request_body, serve_bento

pytestmark = pytest.mark.slow  # trains the session's small project (about a minute)

BODY_BYTES = 100 * 1024 * 1024
RSS_GROWTH_LIMIT = 50 * 1024 * 1024



@pytest.fixture(scope="module")
def history(project: TrainedProject) -> dict[str, Any]:
    point = project.features.sample(1, random_state=5)[["machineID", "datetime"]]
    return request_body(histories_at(project, point))["histories"][0]


def tree_rss(server: Server) -> int:
    """Resident memory of `bentoml serve`: the arbiter and its workers."""
    root = psutil.Process(server.process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)])


@dataclass
class PeakRss:
    """The largest tree_rss seen while the block runs (sampled every 20 ms)."""

    server: Server
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> PeakRss:
        self.peak = tree_rss(self.server)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, tree_rss(self.server))

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, tree_rss(self.server))


@pytest.fixture(scope="module")
def default_server(project: TrainedProject, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The bento with the default limits (PDM_MAX_REQUEST_BYTES follows PDM_MAX_BATCH=1000: 8.2 MB)."""
    with serve_bento(project.bento["tag"], project.bentoml_home,
                     tmp_path_factory.mktemp("limits") / "serve.log") as server:
        yield server


def padded_body(history: dict[str, Any], size: int) -> bytes:
    """A JSON request of about `size` bytes, within every count limit: one history, padded with whitespace
    (the cheapest way to be big; a parser still has to read every byte)."""
    body = json.dumps({"histories": [history]}).encode()
    return body[:-1] + b" " * (size - len(body)) + b"}"


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_100_mb_body_gets_413_without_being_read(
    default_server: Server, history: dict[str, Any], framing: str
) -> None:
    body = padded_body(history, BODY_BYTES)
    content: Any = body if framing == "content-length" else (body[i:i + 2**20] for i in range(0, len(body), 2**20))
    with default_server.client() as client:
        assert client.post("/predict", json={"histories": [history]}).status_code == 200  # warm
        before = tree_rss(default_server)
        with PeakRss(default_server) as rss:
            response = client.post("/predict", content=content, headers={"content-type": "application/json"},
                                   timeout=120)
        growth = rss.peak - before
        print(f"{framing}: {len(body) / 2**20:.0f} MiB body -> HTTP {response.status_code}; server RSS "
              f"{before / 2**20:.0f} MiB before, peak growth {growth / 2**20:.1f} MiB")
        assert response.status_code == 413, response.text
        assert response.json()["reason"] == "request_too_large"
        assert "(PDM_MAX_REQUEST_BYTES)" in response.json()["error"]
        assert growth < RSS_GROWTH_LIMIT
        # the connection and the worker are fine afterwards
        assert client.post("/predict", json={"histories": [history]}).status_code == 200


@pytest.fixture(scope="module")
def keyed_server(project: TrainedProject, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """API keys on, and /metrics on a port of its own."""
    env = {"PDM_API_KEYS": "first-key, second-key", "PDM_METRICS_PORT": str(free_port()),
           "PDM_METRICS_HOST": "127.0.0.1"}
    with serve_bento(project.bento["tag"], project.bentoml_home, tmp_path_factory.mktemp("keys") / "serve.log",
                     extra_env=env) as server:
        server.metrics_port = int(env["PDM_METRICS_PORT"])  # type: ignore[attr-defined]
        yield server


def test_without_a_valid_key_only_the_probes_answer(keyed_server: Server, history: dict[str, Any]) -> None:
    body = {"histories": [history]}
    with keyed_server.client() as client:
        for probe in ("/livez", "/readyz", "/healthz"):
            assert client.get(probe).status_code == 200, probe
        for headers in ({}, {"authorization": "Bearer wrong-key"}, {"authorization": "first-key"},
                        {"authorization": "Basic Zmlyc3Qta2V5"}):
            refused = client.post("/predict", json=body, headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["reason"] == "unauthorized"
        assert client.get("/model").status_code == 401
        assert client.get("/docs.json").status_code == 401
        for key in ("first-key", "second-key"):
            assert client.post("/predict", json=body, headers={"authorization": f"Bearer {key}"}).status_code == 200
        assert client.get("/model", headers={"authorization": "Bearer second-key"}).json()["run_id"]


def test_metrics_are_served_on_their_own_port_only(keyed_server: Server) -> None:
    with keyed_server.client() as client:
        assert client.get("/metrics", headers={"authorization": "Bearer first-key"}).status_code == 404
    text = httpx.get(f"http://127.0.0.1:{keyed_server.metrics_port}/metrics", timeout=10).text  # type: ignore[attr-defined]
    families = {f.name for f in text_string_to_metric_families(text)}
    # the service's own and BentoML's, from every worker (multiprocess files)
    assert {"pdm_predictions", "pdm_validation_rejections", "pdm_model_info", "bentoml_service_request"} <= families


@dataclass
class Traffic:
    """What clients saw around a SIGTERM."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ok: int = 0
    errors: list[str] = field(default_factory=list)
    in_flight: int = 0
    ok_while_not_ready: int = 0
    not_ready_at: float | None = None
    stop_sending: threading.Event = field(default_factory=threading.Event)


def test_sigterm_turns_readyz_false_first_and_finishes_every_accepted_request(
    project: TrainedProject, tmp_path_factory: pytest.TempPathFactory
) -> None:
    points = project.features.sample(60, random_state=9)[["machineID", "datetime"]]
    body = json.dumps(request_body(histories_at(project, points))).encode()  # 60 histories: a slower request
    env = {"PDM_DRAIN_SECONDS": "3", "BENTOML_CONFIG_OPTIONS": "services.pdm_service.workers=2"}
    log = tmp_path_factory.mktemp("drain") / "serve.log"
    traffic = Traffic()
    with serve_bento(project.bento["tag"], project.bentoml_home, log, extra_env=env) as server:

        def client() -> None:
            with httpx.Client(base_url=server.url, timeout=60) as c:
                for _ in range(2000):  # bounded; ends when the load balancer stops sending
                    if traffic.stop_sending.is_set():
                        return
                    with traffic.lock:
                        traffic.in_flight += 1
                    try:
                        answer = c.post("/predict", content=body, headers={"content-type": "application/json"})
                    except httpx.HTTPError as error:
                        answer = None
                        failure = f"{type(error).__name__}: {error}"
                    with traffic.lock:
                        traffic.in_flight -= 1
                        if answer is not None and answer.status_code == 200:
                            traffic.ok += 1
                            traffic.ok_while_not_ready += traffic.not_ready_at is not None
                        else:
                            traffic.errors.append(failure if answer is None else f"HTTP {answer.status_code}")

        def load_balancer() -> None:
            """Polls /readyz; sends no new request 1 s after it turns false (the time endpoints take to update)."""
            with httpx.Client(base_url=server.url, timeout=5) as c:
                for _ in range(1200):
                    if c.get("/readyz").status_code == 503:
                        traffic.not_ready_at = time.monotonic()
                        time.sleep(1.0)
                        traffic.stop_sending.set()
                        return
                    time.sleep(0.05)

        clients = [threading.Thread(target=client, daemon=True) for _ in range(6)]
        for thread in clients:
            thread.start()
        deadline = time.monotonic() + 60
        while traffic.ok < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        watcher = threading.Thread(target=load_balancer, daemon=True)
        watcher.start()
        with traffic.lock:
            in_flight_at_sigterm = traffic.in_flight
        sigterm_at = time.monotonic()
        server.process.send_signal(signal.SIGTERM)  # to the arbiter only, as Kubernetes signals PID 1
        watcher.join(timeout=30)
        for thread in clients:
            thread.join(timeout=60)
        server.process.wait(timeout=60)
        stopped_at = time.monotonic()
    assert traffic.not_ready_at is not None, "/readyz never answered 503 after SIGTERM"
    print(f"drain: {in_flight_at_sigterm} requests in flight at SIGTERM, {traffic.ok} answered, "
          f"{len(traffic.errors)} errors, {traffic.ok_while_not_ready} answered after /readyz turned 503 "
          f"({traffic.not_ready_at - sigterm_at:.2f} s after SIGTERM); server exited "
          f"{stopped_at - sigterm_at:.1f} s after SIGTERM")
    assert in_flight_at_sigterm > 0
    assert traffic.errors == []
    assert traffic.ok_while_not_ready > 0  # still serving while the load balancer takes it out
    assert "SIGTERM: /readyz is false" in log.read_text()

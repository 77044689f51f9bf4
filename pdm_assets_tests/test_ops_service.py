"""The bento service run like production, on loopback: a real Prometheus scraping it, Schemathesis
against its OpenAPI, faults (MLflow unreachable, a restart under load, a corrupt model) and a 60 s load.

One small model trained on a synthetic fleet and packed into a bento serves every test (the serving
tests' session project, pdm_assets_tests/serving_support.py); each server is `bentoml serve` of that bento. All traffic
goes to 127.0.0.1, in loops bounded in count and time.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from serving_support import wait_for

from pdm_assets_tests.benchmarks.serving import free_port, stop_process_group

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PYTHON = sys.executable
BIN = Path(sys.executable).parent
START_TIMEOUT = 120.0

pytestmark = pytest.mark.slow


# --- helpers ---------------------------------------------------------------------------------------


def status(url: str) -> int:
    try:
        return requests.get(url, timeout=5).status_code
    except requests.RequestException:
        return 0


@dataclass
class Server:
    """`bentoml serve TAG` on 127.0.0.1:port in its own process group, logging to a file."""

    tag: str
    home: Path
    log: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """/metrics: on PDM_METRICS_PORT when the environment sets one (as the pod's does), else the API port."""
        port = self.env.get("PDM_METRICS_PORT", self.port)
        return f"http://127.0.0.1:{port}/metrics"

    def start(self) -> Server:
        env = {**os.environ, "BENTOML_HOME": str(self.home), "BENTOML_DO_NOT_TRACK": "true", **self.env}
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(BIN / "bentoml"), "serve", self.tag, "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=self.home.parent, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def wait_live(self) -> None:
        wait_for("/livez", lambda: self._alive() and status(f"{self.url}/livez") == 200, START_TIMEOUT)

    def wait_ready(self) -> None:
        wait_for(f"/readyz (log: {self.log})", lambda: self._alive() and status(f"{self.url}/readyz") == 200,
                 START_TIMEOUT)

    def _alive(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"bentoml serve exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
        return True

    def stop(self) -> None:
        """SIGTERM to the server's own process group (the arbiter and its workers), then wait."""
        if self.process is not None:
            stop_process_group(self.process)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def predict(url: str, body: bytes, timeout: float = 10) -> requests.Response:
    return requests.post(f"{url}/predict", data=body, headers={"content-type": "application/json"},
                         timeout=timeout)


def metric_samples(text: str) -> dict[str, float]:
    """name{labels} -> value for every sample of a Prometheus text exposition."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def metric_names(text: str) -> set[str]:
    return {re.split(r"[{ ]", line, maxsplit=1)[0] for line in text.splitlines() if line and not line.startswith("#")}


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_bento(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The serving tests' session bento: a model trained on 5 synthetic machines over 60 days.

    PDM_OPS_BENTO=TAG@BENTOML_HOME serves an already built bento instead (e.g. `make load` on your own).
    """
    given = os.environ.get("PDM_OPS_BENTO")
    if given:
        tag, _, home = given.partition("@")
        info = yaml.safe_load((Path(home) / "bentos" / Path(*tag.split(":")) / "bento.yaml").read_text())
        model_tag = info["services"][0]["models"][0]["tag"]
        return {"tag": tag, "model_tag": model_tag, "bentoml_home": Path(home)}
    from serving_support import trained_project

    project = trained_project(tmp_path_factory)
    return {"tag": project.bento["tag"], "model_tag": project.bento["model_tag"],
            "bentoml_home": project.bentoml_home.resolve()}


@pytest.fixture(scope="module")
def payloads() -> list[tuple[list[int], bytes]]:
    sys.path.insert(0, str(DEPLOY / "load"))
    try:
        from payloads import build_payloads
    finally:
        sys.path.remove(str(DEPLOY / "load"))
    return build_payloads(count=20, seed=11, per_request=3)


def pod_settings() -> dict[str, str]:
    """The environment the Kubernetes pod gets (deploy/k8s/base/service.env): PDM_ limits, BentoML workers,
    the metrics port; here on loopback and a free port."""
    lines = (DEPLOY / "k8s" / "base" / "service.env").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert "PDM_METRICS_PORT" in settings
    return {**settings, "PDM_METRICS_HOST": "127.0.0.1", "PDM_METRICS_PORT": str(free_port())}


@pytest.fixture(scope="module")
def service(demo_bento: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The bento served as in the pod: same settings, same number of workers."""
    log = tmp_path_factory.mktemp("service") / "serve.log"
    server = Server(demo_bento["tag"], demo_bento["bentoml_home"], log, env=pod_settings()).start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


# --- routes ----------------------------------------------------------------------------------------


def test_probe_and_scrape_paths_of_the_manifests_answer(service: Server) -> None:
    deployment = yaml.safe_load((DEPLOY / "k8s" / "base" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]
    c = pod["spec"]["containers"][0]
    paths = {c[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe", "startupProbe")}
    documented = set(requests.get(f"{service.url}/docs.json", timeout=10).json()["paths"])
    for path in sorted(paths):
        assert path in documented, f"{path} is not in the service's OpenAPI"
        assert status(f"{service.url}{path}") == 200, path
    # the scrape path answers on the metrics port, and not on the public one
    assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
    # worker 1 opens the metrics port once its model is loaded; /readyz may have come from worker 2
    wait_for("the metrics port", lambda: status(service.metrics_url) == 200, 60)
    assert status(f"{service.url}/metrics") == 404


# --- Prometheus ------------------------------------------------------------------------------------


def prometheus_config(target: str, workdir: Path) -> Path:
    """deploy/prometheus/prometheus.yml with the service target on loopback and 1 s scrapes."""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(p) for p in sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))]
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "pdm-service")
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"][0]["targets"] = [target]
    config["scrape_configs"] = [job]
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def prometheus(service: Server, tmp_path: Path) -> Iterator[str]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus is not installed (Debian package `prometheus`)")
    port = free_port()
    config = prometheus_config(f"127.0.0.1:{service.env['PDM_METRICS_PORT']}", tmp_path)
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("Prometheus ready", lambda: process.poll() is None and status(f"{url}/-/ready") == 200, 60)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10).json()
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def scalar(prometheus: str, expr: str) -> float | None:
    result = query(prometheus, expr)
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_requests_and_predictions(
    service: Server, prometheus: str, payloads: list[tuple[list[int], bytes]]
) -> None:
    wait_for("a successful scrape", lambda: scalar(prometheus, 'up{job="pdm-service"}') == 1, 30)
    ok_requests = 'sum(bentoml_service_request_total{job="pdm-service", endpoint="/predict", http_response_code="200"})'
    scored = 'sum(pdm_failure_probability_count{job="pdm-service"})'
    by_alert = 'sum(pdm_predictions_total{job="pdm-service"})'
    before = {e: scalar(prometheus, e) or 0.0 for e in (ok_requests, scored, by_alert)}

    sent = 0
    for _, body in payloads:
        assert predict(service.url, body).status_code == 200
        sent += 1
    histories = 3 * sent

    def moved() -> bool:
        now = {e: scalar(prometheus, e) or 0.0 for e in before}
        return (now[ok_requests] - before[ok_requests] >= sent and now[scored] - before[scored] >= histories
                and now[by_alert] - before[by_alert] >= histories)

    wait_for(f"the counters to move by {sent} requests / {histories} histories", moved, 30)
    after = {e: scalar(prometheus, e) or 0.0 for e in before}
    # exactly what was sent: nothing else talks to this service during the test
    assert after[ok_requests] - before[ok_requests] == sent
    assert after[scored] - before[scored] == histories
    # the histogram's buckets hold every probability, all within [0, 1]
    assert scalar(prometheus, 'sum(pdm_failure_probability_bucket{job="pdm-service", le="1.0"})') == after[scored]
    # the recording rules evaluate against the real series
    wait_for("request rate", lambda: (scalar(prometheus, "job:pdm_predict_requests:rate5m") or 0) > 0, 30)
    wait_for("p99", lambda: scalar(prometheus, "job:pdm_predict_latency_seconds:p99_5m") is not None, 30)
    assert scalar(prometheus, 'count(pdm_model_info{job="pdm-service"} == 1)') == 1
    # a ready service with a model does not trip the not-ready alert
    assert query(prometheus, 'ALERTS{alertname="PdmServiceNotReady"}') == []


def test_every_metric_the_rules_and_dashboard_query_is_exported(
    service: Server, payloads: list[tuple[list[int], bytes]]
) -> None:
    """Names in PromQL that are neither recording rules nor exported would leave panels and alerts blank."""
    from pdm_assets.lib.monitoring import drift
    from pdm_assets.lib.planning.outcomes import outcome_prometheus_text

    predict(service.url, payloads[0][1])
    predict(service.url, b'{"histories": []}')  # a rejection: labelled counters appear with their first child
    exported = metric_names(requests.get(service.metrics_url, timeout=10).text)
    exported |= {"pdm_feature_drift_psi"} & metric_names(drift.prometheus_text(_tiny_drift_report()))
    exported |= metric_names(outcome_prometheus_text(_tiny_outcome_registry()))  # pushed by prediction_outcomes
    exprs = [r["expr"] for p in (DEPLOY / "prometheus" / "rules").glob("*.yml")
             for g in yaml.safe_load(p.read_text())["groups"] for r in g["rules"]]
    exprs += [t["expr"] for p in (DEPLOY / "grafana" / "dashboards").glob("*.json")
              for panel in json.loads(p.read_text())["panels"] for t in panel.get("targets", [])]
    used = {m for expr in exprs for m in re.findall(r"(?<![\w:])((?:pdm|bentoml)_[a-z0-9_]+)", expr)}
    assert used, "no metric names found"
    missing = sorted(used - exported)
    assert not missing, f"queried but not exported: {missing}"


def _tiny_drift_report() -> Any:
    """The drift check's report on a three-row frame, to read the metric names it exports."""
    import numpy as np
    import pandas as pd

    from pdm_assets.lib.monitoring import drift

    frame = pd.DataFrame({"volt_mean_24h": [1.0, 2.0, 3.0]})
    scores = np.array([0.1, 0.2, 0.3])
    return drift.drift_report(frame, frame, ["volt_mean_24h"], scores, scores, 0.5)


def _tiny_outcome_registry() -> Any:
    """The outcome gauges of one resolved week of one source, every figure finite, to read their names."""
    import pandas as pd

    from pdm_assets.lib.planning.outcomes import outcome_registry, realized_recall

    weekly = pd.DataFrame({"source": ["fleet_risk"], "week": ["2015-03-02"], "events": [4], "detected": [3],
                           "event_recall": [0.75], "false_alarms_per_100_machine_days": [1.0],
                           "lead_time_median_h": [20.0], "top_n_precision": [0.5]})
    verdict = realized_recall(weekly, 0.95, (0.9, 1.0), weeks=4, min_events=3)
    return outcome_registry(weekly, verdict, 0.95)


# --- fuzzing ---------------------------------------------------------------------------------------


def test_schemathesis_finds_no_server_error_and_every_4xx_says_why(service: Server, tmp_path: Path) -> None:
    examples = os.environ.get("PDM_FUZZ_EXAMPLES", "100")
    done = subprocess.run(
        [str(BIN / "schemathesis"), "run", f"{service.url}/docs.json",
         "--checks", "not_a_server_error,client_error_has_message", "--max-examples", examples,
         "--seed", os.environ.get("PDM_FUZZ_SEED", "20261128"), "--workers", "1",
         "--request-timeout", "30", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)],
        env={**os.environ, "PYTHONPATH": str(DEPLOY / "fuzz"), "SCHEMATHESIS_HOOKS": "pdm_checks"},
        capture_output=True, text=True, timeout=600, check=False,
    )
    output = done.stdout + done.stderr
    cases = re.search(r"(\d+) generated", output)
    print(f"schemathesis: {cases.group(0) if cases else '?'}")
    assert done.returncode == 0, output[-6000:]
    assert cases and int(cases.group(1)) >= 50, output[-2000:]
    assert "/predict" in output


def test_the_4xx_check_rejects_an_answer_without_a_message() -> None:
    sys.path.insert(0, str(DEPLOY / "fuzz"))
    try:
        from pdm_checks import client_error_has_message
    finally:
        sys.path.remove(str(DEPLOY / "fuzz"))

    @dataclass
    class Answer:
        status_code: int
        content: bytes

    @dataclass
    class Case:
        path: str

    client_error_has_message(None, Answer(422, b'{"error": "histories: field required"}'), Case("/predict"))
    client_error_has_message(None, Answer(405, b"Method Not Allowed"), Case("/livez"))
    client_error_has_message(None, Answer(500, b""), Case("/predict"))  # not a 4xx: another check's job
    for bad in (Answer(422, b'{"detail": []}'), Answer(400, b"bad"), Answer(404, b"")):
        with pytest.raises(AssertionError):
            client_error_has_message(None, bad, Case("/predict"))


# --- faults ----------------------------------------------------------------------------------------


def test_service_starts_and_serves_with_mlflow_unreachable(
    demo_bento: dict[str, Any], tmp_path: Path, payloads: list[tuple[list[int], bytes]]
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    server = Server(demo_bento["tag"], demo_bento["bentoml_home"], tmp_path / "serve.log",
                    env={**pod_settings(), "PDM_MLFLOW_TRACKING_URI": closed, "MLFLOW_TRACKING_URI": closed}).start()
    try:
        server.wait_ready()
        machine_ids, body = payloads[0]
        answer = predict(server.url, body)
        assert answer.status_code == 200, answer.text
        assert [p["machine_id"] for p in answer.json()] == machine_ids
        card = requests.get(f"{server.url}/model", timeout=10).json()
        assert card["bento_tag"] == demo_bento["tag"]
    finally:
        server.stop()


@dataclass
class Outcomes:
    ok: int = 0
    connection_errors: int = 0
    wrong: list[str] = field(default_factory=list)
    ok_after_errors: int = 0


def test_restart_under_traffic_gives_only_connection_errors(
    demo_bento: dict[str, Any], tmp_path: Path, payloads: list[tuple[list[int], bytes]]
) -> None:
    server = Server(demo_bento["tag"], demo_bento["bentoml_home"], tmp_path / "serve.log", env=pod_settings()).start()
    server.wait_ready()
    # reference answers from the running service, before any fault
    reference = {body: predict(server.url, body).json() for _, body in payloads[:5]}
    outcomes = Outcomes()
    stop = threading.Event()
    lock = threading.Lock()

    def client(offset: int) -> None:
        deadline = time.monotonic() + 150
        bodies = list(reference)
        for i in range(5_000):  # bounded in count and time
            if stop.is_set() or time.monotonic() > deadline:
                return
            body = bodies[(i + offset) % len(bodies)]
            try:
                answer = predict(server.url, body, timeout=30)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                # refused, reset, or cut off mid-answer: the connection failed, no answer was given
                with lock:
                    outcomes.connection_errors += 1
                time.sleep(0.05)
                continue
            with lock:
                if answer.status_code != 200:
                    outcomes.wrong.append(f"HTTP {answer.status_code}: {answer.text[:200]}")
                elif answer.json() != reference[body]:
                    outcomes.wrong.append(f"different answer: {answer.text[:200]}")
                else:
                    outcomes.ok += 1
                    if outcomes.connection_errors:
                        outcomes.ok_after_errors += 1

    clients = [threading.Thread(target=client, args=(k,), daemon=True) for k in range(4)]
    try:
        for thread in clients:
            thread.start()
        wait_for("traffic before the restart", lambda: outcomes.ok >= 10, 30)
        started = time.monotonic()
        server.stop()
        stopped = time.monotonic()
        server.start()
        server.wait_ready()
        print(f"restart: stopped in {stopped - started:.1f} s, ready again {time.monotonic() - stopped:.1f} s later")
        wait_for("traffic after the restart", lambda: outcomes.ok_after_errors >= 10, 60)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=60)
        server.stop()
    print(f"restart under load (4 clients): {outcomes.ok} correct answers, "
          f"{outcomes.connection_errors} connection errors, {len(outcomes.wrong)} wrong")
    assert outcomes.wrong == []
    assert outcomes.connection_errors > 0, "the restart was not seen by the client"
    assert outcomes.ok_after_errors >= 10


def test_corrupt_model_keeps_readyz_false_and_logs_why(
    demo_bento: dict[str, Any], tmp_path: Path, payloads: list[tuple[list[int], bytes]]
) -> None:
    home = tmp_path / "bentoml_home"
    shutil.copytree(demo_bento["bentoml_home"], home, symlinks=True)
    name, version = demo_bento["model_tag"].split(":")
    model_files = [p for p in (home / "models" / name / version).iterdir() if p.name != "model.yaml"]
    assert model_files, "no model file to corrupt"
    for path in model_files:
        path.write_bytes(b"this is not a pickle\n" * 10)
    server = Server(demo_bento["tag"], home, tmp_path / "serve.log", env=pod_settings()).start()
    try:
        server.wait_live()
        codes: Counter[int] = Counter()
        for _ in range(20):  # 10 s of readiness probes
            codes[status(f"{server.url}/readyz")] += 1
            time.sleep(0.5)
        assert set(codes) == {503}, codes
        # a request is refused, never answered with a guess
        assert predict(server.url, payloads[0][1]).status_code == 503
        log = server.log_text()
        assert "not ready" in log and "could not be loaded" in log and name in log, log[-3000:]
        print("corrupt model:", next(line for line in log.splitlines() if "not ready:" in line)[:300])
        # without a model there is no pdm_model_info: PdmServiceNotReady's second condition
        assert "pdm_model_info" not in metric_names(requests.get(server.metrics_url, timeout=10).text)
    finally:
        server.stop()


# --- load ------------------------------------------------------------------------------------------


def test_locust_50_rps_for_60_s_without_errors(service: Server, tmp_path: Path) -> None:
    import psutil

    seconds = int(os.environ.get("PDM_LOAD_SECONDS", "60"))
    prefix = tmp_path / "predict"
    assert service.process is not None
    server = psutil.Process(service.process.pid)

    def server_cpu_seconds() -> float:
        return sum(sum(p.cpu_times()[:2]) for p in [server, *server.children(recursive=True)])

    cpu_before = server_cpu_seconds()
    done = subprocess.run(
        [str(BIN / "locust"), "-f", str(DEPLOY / "load" / "locustfile.py"), "--headless", "--only-summary",
         "--host", service.url, "--users", "50", "--spawn-rate", "50", "--run-time", f"{seconds}s",
         "--csv", str(prefix), "--stop-timeout", "10"],
        env={**os.environ, "PDM_LOAD_RPS_PER_USER": "1"}, capture_output=True, text=True,
        timeout=seconds + 180, check=False,
    )
    cpu = server_cpu_seconds() - cpu_before
    rows = {r["Name"]: r for r in csv.DictReader((tmp_path / "predict_stats.csv").open())}
    stats = rows["/predict"]
    count, failures = int(stats["Request Count"]), int(stats["Failure Count"])
    p50, p99 = float(stats["50%"]), float(stats["99%"])
    report = {"requests": count, "failures": failures, "rps": float(stats["Requests/s"]), "p50_ms": p50,
              "p99_ms": p99, "max_ms": float(stats["Max Response Time"]),
              # capacity, whatever else the machine runs: server CPU per request (arbiter and workers)
              "server_cpu_ms_per_request": round(1000 * cpu / max(count, 1), 1)}
    print(f"load: {json.dumps(report)}")
    failures_csv = tmp_path / "predict_failures.csv"
    assert failures == 0, failures_csv.read_text()[-3000:] if failures_csv.exists() else done.stderr[-3000:]
    assert done.returncode == 0, done.stderr[-3000:]
    # 50 rps held: within 10% of rate x duration (locust starts all 50 users in the first second)
    assert count >= 0.9 * 50 * seconds, report
    assert 0 < p50 <= p99

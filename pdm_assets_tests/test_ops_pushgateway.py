"""Drift gauges through a real Prometheus Pushgateway (Debian's `prometheus-pushgateway`), and a check that
still reports when the gateway cannot be reached."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from pdm_assets.defs.monitoring.checks import features_drift
from pdm_assets.defs.resources import MLflowResource, ProjectSettings
from pdm_assets.lib.modelling.labels import CLASSES
from pdm_assets.lib.monitoring.drift import PUSHGATEWAY_JOB, DriftReport, drift_report, push_drift_metrics
from pdm_assets.lib.tracking import LoadedModel
from pdm_assets.settings import get_settings
from pdm_assets_tests.benchmarks.serving import free_port, stop_process_group

FEATURES = ["volt_mean", "rotate_mean", "pressure_mean"]
START_TIMEOUT_S = 30.0


def pushgateway_binary() -> str:
    found = shutil.which("prometheus-pushgateway")
    if found is None:
        pytest.skip("prometheus-pushgateway is not installed (Debian package `prometheus-pushgateway`)")
    return found


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    """A pushgateway on a free loopback port, in its own process group, stopped after the test."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "pushgateway.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: every gateway started
            # on the machine would then load what an earlier one held. In memory only, each test's starts empty.
            [pushgateway_binary(), f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"pushgateway exited with {process.returncode}:\n{log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"pushgateway not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop_process_group(process)


def closed_port_url() -> str:
    """Nothing listens there once the probe socket is closed, so a connection is refused at once."""
    return f"http://127.0.0.1:{free_port()}"


def shifted_report(features: list[str]) -> DriftReport:
    """A report whose first feature is shifted by two standard deviations and whose alert rate doubles."""
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({f: rng.normal(100, 10, 2000) for f in features})
    current = pd.DataFrame({f: rng.normal(100, 10, 400) for f in features})
    current[features[0]] += 20
    reference_scores = np.r_[np.ones(20), np.zeros(1980)]
    current_scores = np.r_[np.ones(8), np.zeros(392)]
    return drift_report(reference, current, features, reference_scores, current_scores, threshold=0.5)


def gateway_samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every pdm_ sample the gateway exposes on /metrics, keyed by name and sorted labels."""
    text = httpx.get(f"{url}/metrics", timeout=5).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("pdm_")
    }


def psi_of(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, float]:
    return {dict(labels)["feature"]: value for (name, labels), value in samples.items()
            if name == "pdm_feature_drift_psi"}


def test_pushed_drift_gauges_read_back_from_the_gateway(gateway: str) -> None:
    report = shifted_report(FEATURES)
    assert push_drift_metrics(report, gateway) is None

    samples = gateway_samples(gateway)
    expected = dict(zip(report.features["feature"], report.features["psi"], strict=True))
    assert psi_of(samples) == pytest.approx(expected, rel=1e-12)
    assert psi_of(samples)["volt_mean"] > 0.25 > psi_of(samples)["rotate_mean"]
    ratio = {labels: v for (name, labels), v in samples.items() if name == "pdm_alert_rate_ratio"}
    assert list(ratio.values()) == pytest.approx([report.alert_rate_ratio], rel=1e-12)
    for name, labels in samples:
        assert dict(labels)["job"] == PUSHGATEWAY_JOB, (name, labels)

    # a second push replaces the job's group: a feature no longer reported is gone, not left stale
    assert push_drift_metrics(shifted_report(FEATURES[:2]), gateway) is None
    assert set(psi_of(gateway_samples(gateway))) == set(FEATURES[:2])


def test_an_unreachable_gateway_gives_the_reason_instead_of_raising() -> None:
    url = closed_port_url()
    failure = push_drift_metrics(shifted_report(FEATURES), url, timeout=5)
    assert failure is not None
    assert url in failure and "refused" in failure.lower(), failure


class _ChampionResource(MLflowResource):
    """The MLflow resource with a champion held in memory: the check's own code runs, no registry needed."""

    def load_alias(self, alias: str = "champion") -> LoadedModel | None:
        return _champion()


def _champion() -> LoadedModel:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({f: rng.normal(100, 10, 200) for f in FEATURES})
    labels = rng.choice(list(CLASSES), size=len(frame), p=[0.9, 0.025, 0.025, 0.025, 0.025])
    pipeline = Pipeline([("classifier", DummyClassifier(strategy="prior"))]).fit(frame, labels)
    metadata = {
        "training_start": "2015-01-01", "training_end": "2015-02-01", "threshold": 0.05,
        "feature_columns": FEATURES,
    }
    return LoadedModel(pipeline=pipeline, version="1", metadata=metadata)


def test_the_drift_check_reports_when_the_gateway_is_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = closed_port_url()
    monkeypatch.setenv("PDM_METRICS_DIR", str(tmp_path / "metrics"))
    monkeypatch.setenv("PDM_PUSHGATEWAY_URL", url)
    rng = np.random.default_rng(5)
    times = pd.date_range("2015-01-01", "2015-03-01", freq="3h")
    features = pd.DataFrame({"datetime": times, **{f: rng.normal(100, 10, len(times)) for f in FEATURES}})
    features.loc[features["datetime"] > "2015-02-20", "volt_mean"] += 30  # the last days drift

    resource = _ChampionResource(tracking_uri="sqlite:///unused.db", experiment="unused", registered_model_name="m")
    result = features_drift(settings=ProjectSettings.of(get_settings()), features=features, mlflow=resource)

    assert result.passed is False, "the shifted feature must still fail the check"
    metadata = {key: value.value for key, value in result.metadata.items()}
    assert metadata["max_psi"] > 0.25
    assert metadata["pushgateway"].startswith(f"push to {url} failed: URLError")
    assert "refused" in metadata["pushgateway"].lower()
    assert any(url in record.getMessage() and record.levelname == "WARNING" for record in caplog.records)
    assert "pdm_feature_drift_psi" in (tmp_path / "metrics" / "pdm_drift.prom").read_text()

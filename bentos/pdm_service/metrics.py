"""The service's Prometheus metrics, and the optional port that serves them apart from the API.

prometheus_client directly (bentoml.metrics only re-exports it, and is deprecated in 1.4). BentoML runs each
worker with PROMETHEUS_MULTIPROC_DIR set, so every worker writes its values to files that one exposition
(BentoML's /metrics, or serve_metrics_port) adds up.
"""

from __future__ import annotations

import functools
import logging
from types import SimpleNamespace

import prometheus_client as prom

logger = logging.getLogger("bentoml.service.pdm")

BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


@functools.cache
def service_metrics() -> SimpleNamespace:
    """The metrics, registered once per process (the service module may be imported again; this one is not)."""
    return SimpleNamespace(
        predictions=prom.Counter("pdm_predictions", "Histories scored, by alert", labelnames=["alert"]),
        probability=prom.Histogram(
            "pdm_failure_probability", "P(any component fails within the horizon) per history",
            buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0),
        ),
        feature_seconds=prom.Histogram(
            "pdm_feature_seconds", "Seconds to validate a request and compute its features",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
        ),
        batch_size=prom.Histogram("pdm_batch_size", "Histories per accepted /predict request",
                                  buckets=BATCH_BUCKETS),
        scored_together=prom.Histogram("pdm_scored_together",
                                       "Histories scored in one model call (overlapping requests)",
                                       buckets=BATCH_BUCKETS),
        rejections=prom.Counter("pdm_validation_rejections", "Requests rejected as bad input, by reason",
                                labelnames=["reason"]),
        model_info=prom.Gauge("pdm_model_info", "The served model (always 1)", labelnames=["version", "bento_tag"],
                              multiprocess_mode="max"),
        trained=prom.Gauge("pdm_model_trained_timestamp_seconds",
                           "When the served model's training run started (unix time)", multiprocess_mode="max"),
    )


def serve_metrics_port(host: str, port: int) -> None:
    """Serve every worker's metrics on host:port from this process (one worker does it; see the caller).

    A port of its own lets the Kubernetes Service and NetworkPolicy expose the API without the metrics."""
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = prom.CollectorRegistry()
    try:
        MultiProcessCollector(registry)
    except ValueError:  # no PROMETHEUS_MULTIPROC_DIR: not under `bentoml serve`, this process's own metrics
        registry = prom.REGISTRY
    try:
        prom.start_http_server(port, addr=host, registry=registry)
    except OSError as error:  # the API keeps serving; the scrape target goes down and PdmServiceNotReady says so
        logger.error("metrics not served on %s:%d: %s", host, port, error)
        return
    logger.info("metrics served on %s:%d/metrics", host, port)

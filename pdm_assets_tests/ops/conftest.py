"""The ops tier: real servers on loopback (PostgreSQL, MLflow, Prometheus, Pushgateway, bentoml serve)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pdm_assets_tests.support.processes import free_port, start_until_ready, stop_process_group
from pdm_assets_tests.support.tiers import mark_tier

PUSHGATEWAY_START_TIMEOUT_S = 30.0


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, Path(__file__).parent, pytest.mark.ops, pytest.mark.slow)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[str]:
    """A pushgateway on a free loopback port, in its own process group, stopped after the test."""
    binary = shutil.which("prometheus-pushgateway")
    if binary is None:
        pytest.skip("prometheus-pushgateway is not installed (Debian package `prometheus-pushgateway`)")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: every gateway on the machine
    # would start with the groups earlier tests pushed
    process = start_until_ready([binary, f"--web.listen-address=127.0.0.1:{port}",
                                 f"--persistence.file={tmp_path / 'pushgateway.data'}"], f"{url}/-/ready",
                                tmp_path / "pushgateway.log", PUSHGATEWAY_START_TIMEOUT_S)
    try:
        yield url
    finally:
        stop_process_group(process)

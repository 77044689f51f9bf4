"""Shared fixtures: the real data folder, an isolated working directory, a PostgreSQL, the session's trained
project; the PDM_CI_REQUIRE capability report."""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from pdm_assets_tests.support import capabilities
from pdm_assets_tests.support.object_store import AWS_ENV, create_bucket, running_s3
from pdm_assets_tests.support.paths import CHROMIUM, REAL_DATA_DIR
from pdm_assets_tests.support.postgres import PostgresCluster, running_cluster

if TYPE_CHECKING:  # imported in the fixture: dagster and BentoML are not the unit tier's to load
    from pdm_assets_tests.support.serving import TrainedProject


def pytest_configure(config: pytest.Config) -> None:
    capabilities.required()  # a misspelt PDM_CI_REQUIRE stops the run before any test


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the capabilities this run skipped for; on GitHub Actions, also in the job's summary."""
    skipped = capabilities.skipped_capabilities(terminalreporter.stats.get("skipped", []))
    lines = [f"- {name}: {count} tests skipped" for name, count in sorted(skipped.items())]
    text = "\n".join(["### Capabilities this run skipped", *(lines or ["- none"])]) + "\n"
    terminalreporter.write_sep("-", "capabilities skipped: " + (", ".join(sorted(skipped)) or "none"))
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(text)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """A `browser` test needs Debian's Chromium and playwright: skipped without them, failed if CI requires."""
    if item.get_closest_marker("browser") is not None:
        capabilities.require("browser", CHROMIUM.exists() and importlib.util.find_spec("playwright") is not None,
                             f"Chromium ({CHROMIUM}) or playwright is not installed")


@pytest.fixture
def real_data_dir() -> Path:
    """../shared/data/azure-pdm, or a skip (a failure under PDM_CI_REQUIRE) when it is not there."""
    capabilities.require("real_data", (REAL_DATA_DIR / "PdM_machines.csv").exists(),
                         f"real data folder {REAL_DATA_DIR} is absent")
    return REAL_DATA_DIR


@pytest.fixture
def isolated_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working directory holding its own Dagster home, MLflow store, reports and BentoML store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / ".dagster_home"))
    (tmp_path / ".dagster_home").mkdir()
    monkeypatch.setenv("PDM_MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    monkeypatch.setenv("PDM_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("PDM_BENTOML_HOME", str(tmp_path / "bentoml_home"))
    monkeypatch.setenv("PDM_RAW_CACHE_DIR", str(tmp_path / "data" / "raw"))
    for name in ("PDM_DATA_DIR", "PDM_DATA_SOURCE"):
        monkeypatch.delenv(name, raising=False)
    yield tmp_path


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One throwaway PostgreSQL per session (skipped without Debian's server binaries); tests make databases."""
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """One S3 API (moto's server on loopback) per session; its endpoint URL."""
    with running_s3() as endpoint:
        yield endpoint


_buckets = itertools.count()


@pytest.fixture
def s3_bucket(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A new empty bucket on the session's S3 API, reached through the AWS_ environment as a pod would."""
    import s3fs

    for name, value in {**AWS_ENV, "AWS_ENDPOINT_URL": s3_server}.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # a cached client may point at another endpoint
    bucket = f"pdm-test-{next(_buckets)}"
    create_bucket(s3_server, bucket)
    return bucket


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> TrainedProject:
    """The small synthetic project, materialized through its bento once per session (about a minute)."""
    from pdm_assets_tests.support.serving import trained_project

    return trained_project(tmp_path_factory)

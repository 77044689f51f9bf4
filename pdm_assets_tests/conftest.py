"""Shared fixtures: the real data folder (skipped when absent), an isolated working directory, a PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from postgres_support import PostgresCluster, running_cluster

REAL_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "azure-pdm"


@pytest.fixture
def real_data_dir() -> Path:
    """../shared/data/azure-pdm, or a skip with the reason when it is not there."""
    if not (REAL_DATA_DIR / "PdM_machines.csv").exists():
        pytest.skip(f"real data folder {REAL_DATA_DIR} is absent")
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

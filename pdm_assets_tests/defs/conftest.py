"""The defs tier: the Dagster definitions materialized in-process on small synthetic fleets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pdm_assets_tests.support.tiers import mark_tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, Path(__file__).parent, pytest.mark.defs)


@pytest.fixture
def landing(isolated_project: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty landing folder beside a 3-machine, 10-day synthetic source; files count as complete at once."""
    monkeypatch.setenv("PDM_DATA_SOURCE", "synthetic")
    monkeypatch.setenv("PDM_SYNTHETIC_MACHINES", "3")
    monkeypatch.setenv("PDM_SYNTHETIC_DAYS", "10")
    monkeypatch.setenv("PDM_LANDING_SETTLE_SECONDS", "0")
    folder = isolated_project / "landing"
    folder.mkdir()
    monkeypatch.setenv("PDM_LANDING_DIR", str(folder))
    yield folder

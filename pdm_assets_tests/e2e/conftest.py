"""The e2e tier: whole loops, the tool's commands and the browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pdm_assets_tests.support.tiers import mark_tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, Path(__file__).parent, pytest.mark.e2e, pytest.mark.slow)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the e2e tests leave summaries, pages and screenshots for a reader: PDM_TEST_ARTIFACTS when set,
    else a temporary folder (never the repository's reports/)."""
    chosen = os.environ.get("PDM_TEST_ARTIFACTS")
    folder = Path(chosen) if chosen else tmp_path_factory.mktemp("artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder

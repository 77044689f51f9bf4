"""The unit tier: plain library code (pdm_assets/lib), no Dagster run, no server, no subprocess."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdm_assets_tests.support.fleet import StandardSplit
from pdm_assets_tests.support.fleet import standard_split as build_standard_split
from pdm_assets_tests.support.tiers import mark_tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, Path(__file__).parent, pytest.mark.unit)


@pytest.fixture(scope="session")
def standard_split() -> StandardSplit:
    """The fleet -> features -> labels -> split chain several modules train on, built once."""
    return build_standard_split()

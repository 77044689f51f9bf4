"""The serving tier: the BentoML service in-process, served over HTTP by `bentoml serve`, and in its container."""

from __future__ import annotations

from pathlib import Path

import pytest

from pdm_assets_tests.support.tiers import mark_tier


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_tier(items, Path(__file__).parent, pytest.mark.serving)

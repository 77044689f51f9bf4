"""Each tier folder's conftest.py marks the tests below it."""

from __future__ import annotations

from pathlib import Path

import pytest


def mark_tier(items: list[pytest.Item], folder: Path, *markers: pytest.MarkDecorator) -> None:
    """Add `markers` to the collected tests under `folder` (the hook sees the whole session's items)."""
    for item in items:
        if item.path.is_relative_to(folder):
            for marker in markers:
                item.add_marker(marker)

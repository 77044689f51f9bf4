"""Command-line tools some tests drive, found on PATH or skipped naming their Debian package."""

from __future__ import annotations

import shutil

import pytest


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (Debian package `prometheus`)")
    return found

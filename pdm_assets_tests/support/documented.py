"""Configuration the docs show, read back so the tests run exactly what a reader would copy."""

from __future__ import annotations

import re
from typing import Any

import yaml

from pdm_assets_tests.support.paths import ROOT


def documented_instance_config() -> dict[str, Any]:
    """The dagster.yaml block of docs/scaling.md's "Without Kubernetes" paragraph."""
    text = (ROOT / "docs" / "scaling.md").read_text()
    found = re.search(r"\*\*Without Kubernetes\*\*.*?```yaml\n(.*?)```", text, re.DOTALL)
    assert found, "docs/scaling.md no longer shows a dagster.yaml for the instance"
    config: dict[str, Any] = yaml.safe_load(found.group(1))
    return config

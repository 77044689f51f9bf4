"""Skips for a missing capability of the machine, which CI turns into failures.

PDM_CI_REQUIRE is a comma list of capabilities the machine must have (.ci/run sets all of them): a test that
would skip for lack of a listed one fails instead, so a broken CI machine cannot pass by skipping.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

CAPABILITIES = frozenset({"container", "real_data", "browser", "kubectl", "postgres"})
REQUIRE_ENV = "PDM_CI_REQUIRE"


def required() -> set[str]:
    """The capabilities PDM_CI_REQUIRE lists; an unknown name is an error, not a silent skip."""
    names = {name.strip() for name in os.environ.get(REQUIRE_ENV, "").split(",") if name.strip()}
    unknown = names - CAPABILITIES
    if unknown:
        raise ValueError(f"{REQUIRE_ENV} names unknown capabilities {sorted(unknown)}; known: {sorted(CAPABILITIES)}")
    return names


def missing(capability: str, reason: str) -> NoReturn:
    """Skip the test for lack of `capability`, or fail it when PDM_CI_REQUIRE lists that capability."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}; known: {sorted(CAPABILITIES)}")
    if capability in required():
        pytest.fail(f"{REQUIRE_ENV} requires {capability}: {reason}", pytrace=False)
    pytest.skip(f"{capability}: {reason}")


def require(capability: str, present: bool, reason: str) -> None:
    """`missing(capability, reason)` unless `present`."""
    if not present:
        missing(capability, reason)


def skipped_capabilities(reports: list[pytest.TestReport]) -> dict[str, int]:
    """How many skipped tests each capability accounts for, from the skip reasons `missing` writes."""
    counts: dict[str, int] = {}
    for report in reports:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        capability = reason.removeprefix("Skipped: ").split(":", 1)[0]
        if capability in CAPABILITIES:
            counts[capability] = counts.get(capability, 0) + 1
    return counts

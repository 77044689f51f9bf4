"""PDM_CI_REQUIRE turns a capability skip into a failure (support/capabilities.py, conftest.py)."""

from __future__ import annotations

import pytest

from pdm_assets_tests.support import capabilities

pytest_plugins = ["pytester"]


def test_a_missing_capability_skips_when_ci_does_not_require_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDM_CI_REQUIRE", "browser")
    with pytest.raises(pytest.skip.Exception, match="postgres: no initdb"):
        capabilities.require("postgres", False, "no initdb")


def test_a_missing_capability_fails_when_ci_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDM_CI_REQUIRE", "container, postgres")
    with pytest.raises(pytest.fail.Exception, match="PDM_CI_REQUIRE requires postgres: no initdb"):
        capabilities.require("postgres", False, "no initdb")


def test_a_present_capability_neither_skips_nor_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PDM_CI_REQUIRE", "postgres")
    capabilities.require("postgres", True, "no initdb")


@pytest.mark.parametrize("names", ["postgre", "container,chromium"])
def test_an_unknown_name_is_an_error_not_a_silent_skip(monkeypatch: pytest.MonkeyPatch, names: str) -> None:
    monkeypatch.setenv("PDM_CI_REQUIRE", names)
    with pytest.raises(ValueError, match="unknown capabilities"):
        capabilities.required()
    with pytest.raises(ValueError, match="unknown capability"):
        capabilities.missing("kubernetes", "not a capability")


def test_the_run_reports_each_skipped_capability_and_fails_the_required_ones(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A whole pytest run with the project's hook: skips counted per capability, the GitHub summary written."""
    pytester.makeconftest("from pdm_assets_tests.conftest import pytest_terminal_summary  # noqa: F401\n")
    pytester.makepyfile(test_needs="""
        from pdm_assets_tests.support.capabilities import require

        def test_kubectl():
            require("kubectl", False, "no kubectl")

        def test_browser():
            require("browser", False, "no chromium")

        def test_real_data():
            require("real_data", False, "no data")
    """)
    summary = tmp_path_factory.mktemp("github") / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("PDM_CI_REQUIRE", "real_data")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(skipped=2, failed=1)
    result.stdout.fnmatch_lines(["*PDM_CI_REQUIRE requires real_data: no data*",
                                 "*capabilities skipped: browser, kubectl*"])
    assert summary.read_text().splitlines()[1:] == ["- browser: 1 tests skipped", "- kubectl: 1 tests skipped"]

"""Every setting a user can change is in docs/configuration.md, under its environment variable."""
from pdm_assets.settings import Settings
from pdm_assets_tests.support.paths import ROOT

CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"


def test_every_setting_has_a_row_in_the_configuration_doc() -> None:
    documented = CONFIGURATION_DOC.read_text()
    missing = [f"PDM_{name.upper()}" for name in Settings.model_fields if f"`PDM_{name.upper()}`" not in documented]
    assert not missing, f"settings missing from {CONFIGURATION_DOC.name}: {missing}"

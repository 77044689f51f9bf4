"""The service image installs the versions uv.lock pins, the ones every test runs against."""
import tomllib

from pdm_assets_tests.support.paths import ROOT


def locked_versions() -> dict[str, str]:
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    return {package["name"]: package["version"] for package in lock["package"]}


def test_every_service_requirement_is_pinned_to_the_locked_version() -> None:
    locked = locked_versions()
    lines = [line.strip() for line in (ROOT / "bentos" / "requirements.txt").read_text().splitlines()]
    pins = dict(line.split("==", 1) for line in lines if line and not line.startswith("#"))
    assert pins, "bentos/requirements.txt pins nothing"
    differing = {name: (version, locked.get(name)) for name, version in pins.items() if locked.get(name) != version}
    assert not differing, f"(requirements.txt, uv.lock) differ: {differing}"

"""The container engine gets the admin folders its network helper needs, whatever PATH the user has."""
import os

from pdm_assets.lib.serving.bento import ENGINE_ADMIN_DIRS, engine_environment


def test_a_minimal_path_gains_the_admin_folders_after_its_own() -> None:
    environment = engine_environment({"PATH": "/opt/python/bin:/usr/bin:/bin", "HOME": "/root"})
    assert environment["PATH"].split(os.pathsep) == ["/opt/python/bin", "/usr/bin", "/bin", *ENGINE_ADMIN_DIRS]
    assert environment["HOME"] == "/root"


def test_folders_already_on_path_are_not_repeated() -> None:
    environment = engine_environment({"PATH": "/usr/sbin:/usr/bin"})
    assert environment["PATH"].split(os.pathsep) == ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/sbin"]


def test_no_path_at_all_gives_the_admin_folders() -> None:
    assert engine_environment({})["PATH"].split(os.pathsep) == list(ENGINE_ADMIN_DIRS)

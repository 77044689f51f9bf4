"""The bento ships exactly the project modules the service imports, plus the pickle shim for old models."""
import json
import subprocess
import sys
import tomllib
from pathlib import Path

from pdm_assets_tests.support.paths import ROOT

# Imported by unpickling, not by the service's code: models registered before lib/ was grouped by stage.
UNPICKLING_ONLY = {"pdm_assets/lib/train.py"}
PROBE = """
import json, sys
import bentos.pdm_service.service
print(json.dumps(sorted(m.__file__ for m in list(sys.modules.values())
                        if getattr(m, "__file__", None) and m.__name__.split(".")[0] in ("pdm_assets", "bentos"))))
"""


def project_modules_the_service_imports() -> set[str]:
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=True)
    return {str(Path(f).resolve().relative_to(ROOT)) for f in json.loads(done.stdout.splitlines()[-1])}


def included_files() -> set[str]:
    build = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["bentoml"]["build"]
    return {str(p.relative_to(ROOT)) for pattern in build["include"] for p in ROOT.glob(pattern)}


def test_the_bento_includes_the_service_import_closure_and_nothing_else() -> None:
    imported = project_modules_the_service_imports()
    included = included_files()
    assert imported - included == set(), "the service imports modules the bento would not ship"
    assert included - imported - UNPICKLING_ONLY == set(), "the bento ships modules the service never imports"
    assert included >= UNPICKLING_ONLY

"""Train a small model on a synthetic fleet and pack it into a bento, in a working directory of its own.

    uv run python deploy/scripts/demo_bento.py --workdir /tmp/pdm-demo

Materializes every asset but the container image (MLflow in <workdir>/mlruns, the BentoML store
in <workdir>/bentoml_home) and prints one JSON line: {"tag", "model_tag", "bentoml_home"}.
The load, fuzz and fault tests and `make up` start `bentoml serve` (or `bentoml containerize`) from it.
The fleet is 5 machines over 60 days unless PDM_SYNTHETIC_MACHINES / PDM_SYNTHETIC_DAYS say otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from pdm_assets_tests.benchmarks.pipeline import project_env


def configure(workdir: Path) -> None:
    """Point every store at the working directory; settings are read from the environment."""
    workdir.mkdir(parents=True, exist_ok=True)
    os.chdir(workdir)
    (workdir / ".dagster_home").mkdir(exist_ok=True)
    machines = int(os.environ.get("PDM_SYNTHETIC_MACHINES", "5"))
    days = int(os.environ.get("PDM_SYNTHETIC_DAYS", "60"))
    os.environ.update(project_env(workdir, machines, days))
    os.environ.pop("PDM_DATA_DIR", None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    args = parser.parse_args()
    configure(args.workdir.resolve())

    import dagster as dg

    from pdm_assets.definitions import defs
    from pdm_assets.settings import get_settings

    result = dg.materialize(
        list(defs.assets or []),
        selection=dg.AssetSelection.all() - dg.AssetSelection.assets("bento_container")
        - dg.AssetSelection.groups("planning"),
        resources=defs.resources, instance=dg.DagsterInstance.ephemeral(), raise_on_error=True,
    )
    bento = result.output_for_node("bento")
    home = get_settings().bentoml_home.resolve()
    print(json.dumps({"tag": bento["tag"], "model_tag": bento["model_tag"], "bentoml_home": str(home)}))


if __name__ == "__main__":
    main()

"""The code location: everything under pdm_assets/defs, found by Dagster (`dg dev`, `dg check defs`, `dagster dev`)."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)

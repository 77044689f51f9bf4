"""The project's definitions and materializations under the PDM_* settings of the moment."""

from __future__ import annotations

import sys

import dagster as dg


def load_defs() -> dg.Definitions:
    """Import the definitions fresh, so resources pick up this test's settings."""
    for name in [m for m in sys.modules if m.startswith("pdm_assets.definitions")]:
        del sys.modules[name]
    from pdm_assets.definitions import defs

    return defs.load_fn()  # `@dg.definitions` makes a loader: the code location's Definitions


def materialize(selection: dg.AssetSelection,
                instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
    """Materialize a selection of the project's assets in-process with resources from the environment,
    on `instance` (an ephemeral one by default)."""
    from pdm_assets.definitions import defs
    from pdm_assets.defs.resources import build_resources
    from pdm_assets.settings import get_settings

    definitions = defs.load_fn()
    return dg.materialize(
        list(definitions.assets or []),
        selection=selection,
        resources=build_resources(get_settings()),
        instance=instance or dg.DagsterInstance.ephemeral(),
    )


def materialize_definitions(defs: dg.Definitions, selection: dg.AssetSelection, instance: dg.DagsterInstance, *,
                            raise_on_error: bool = True) -> dg.ExecuteInProcessResult:
    """Materialize a selection of these definitions' assets, with the checks the selection brings, on `instance`."""
    return dg.materialize([*(defs.assets or []), *(defs.asset_checks or [])], selection=selection,
                          resources=defs.resources, instance=instance, raise_on_error=raise_on_error)

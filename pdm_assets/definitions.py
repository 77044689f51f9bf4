"""The one Definitions object: every stage under pdm_assets/defs plus resources from Settings."""

import dagster as dg

import pdm_assets.defs
from pdm_assets.defs.automation import automation_sensor
from pdm_assets.defs.ingest.sensors import ingest_landed_files, landing_sensor
from pdm_assets.defs.resources import build_resources
from pdm_assets.settings import get_settings

defs = dg.Definitions(
    assets=dg.load_assets_from_package_module(pdm_assets.defs),
    asset_checks=dg.load_asset_checks_from_package_module(pdm_assets.defs),
    sensors=[landing_sensor, automation_sensor],
    jobs=[ingest_landed_files],
    resources=build_resources(get_settings()),
)

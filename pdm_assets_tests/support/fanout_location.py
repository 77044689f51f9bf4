"""The project's code location without the stages the fan-out tests leave out: serving, planning, the backtest.

Served by `dagster api grpc -m pdm_assets_tests.support.fanout_location` in the fan-out harness. The daemon's
automation sensor targets every asset: with the full location it would also build the bento once a champion
exists and refit the rolling-origin folds after every model, which are other tests' subjects and minutes long.
"""

from __future__ import annotations

import dagster as dg

LEFT_OUT_GROUPS = frozenset({"serving", "planning", "backtest"})
LEFT_OUT_SENSORS = frozenset({"fleet_risk_sensor"})
LEFT_OUT_JOBS = frozenset({"score_fleet_days"})


def _kept(asset: object) -> bool:
    if isinstance(asset, dg.AssetsDefinition):
        return not set(asset.group_names_by_key.values()) <= LEFT_OUT_GROUPS
    return True


@dg.definitions
def defs() -> dg.Definitions:
    from pdm_assets.definitions import defs as project

    full = project.load_fn()
    assets = [a for a in full.assets or [] if _kept(a)]
    kept_keys = {key for a in assets if isinstance(a, dg.AssetsDefinition) for key in a.keys}
    checks = [c for c in full.asset_checks or [] if {k.asset_key for k in c.check_keys} <= kept_keys]
    sensors = [s for s in full.sensors or [] if s.name not in LEFT_OUT_SENSORS]
    jobs = [j for j in full.jobs or [] if getattr(j, "name", "") not in LEFT_OUT_JOBS]
    return dg.Definitions(assets=assets, asset_checks=checks, sensors=sensors, jobs=jobs,
                          schedules=full.schedules, resources=full.resources, executor=full.executor)

"""Where models registered before lib/ was grouped by stage look for their classes when unpickled.

Pickles name classes by module path; versions in the MLflow registry and bentos built before the move say
`pdm_assets.lib.train.FailureThenComponent`. New code imports `pdm_assets.lib.modelling.estimators`; the
bento ships this shim too.
"""

from pdm_assets.lib.modelling.estimators import FailureThenComponent, FeatureMatrix

__all__ = ["FailureThenComponent", "FeatureMatrix"]

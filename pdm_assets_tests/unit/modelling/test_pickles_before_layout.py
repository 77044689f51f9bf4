"""Models pickled before lib/ was grouped by stage (classes named `pdm_assets.lib.train.*`) still load and
score exactly as they did: registered versions and built bentos keep working after the move."""
import pickle

import numpy as np
import pandas as pd

from pdm_assets.lib.modelling.estimators import FailureThenComponent, predict_components
from pdm_assets_tests.support.paths import ROOT

FIXTURES = ROOT / "pdm_assets_tests" / "fixtures"


def test_a_pipeline_pickled_at_the_old_module_path_scores_as_it_did() -> None:
    raw = (FIXTURES / "pipeline_before_layout.pkl").read_bytes()
    assert b"pdm_assets.lib.train" in raw, "the fixture no longer names the old module path"
    pipeline = pickle.loads(raw)
    assert isinstance(pipeline.steps[-1][1], FailureThenComponent)
    rows = pd.read_csv(FIXTURES / "rows.csv")
    expected = np.loadtxt(FIXTURES / "expected.csv", delimiter=",")
    np.testing.assert_allclose(predict_components(pipeline, rows).to_numpy(), expected, rtol=0, atol=1e-12)

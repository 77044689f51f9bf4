"""Figures come out as small PNGs and as markdown images the Dagster UI renders."""

from __future__ import annotations

import base64

import numpy as np
import pandas as pd

from pdm_assets.lib.evaluation import plots
from pdm_assets.lib.evaluation.metrics import calibration_table, confusion_matrix

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_render_gives_every_figure_as_a_small_png() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(500) < 0.1
    score = np.clip(truth * 0.6 + rng.random(500) * 0.5, 0, 1)
    labels = np.where(truth, "comp1", "none")
    images = plots.render(
        truth, {"ours": score, "other": score**2}, {"rule": (0.5, 0.3)},
        {"ours": calibration_table(truth, score)}, confusion_matrix(labels, labels),
        np.array([21.0, 18.0, 21.0]),
        pd.DataFrame({"feature": ["a", "b"], "importance": [0.2, 0.1], "std": [0.0, 0.01]}),
        horizon_hours=24, grid_hours=3,
    )
    assert set(images) == set(plots.PLOT_NAMES)
    for data in images.values():
        assert data.startswith(PNG_MAGIC)
        assert len(data) < 150_000


def test_markdown_image_is_a_base64_data_uri() -> None:
    data = plots.lead_times(np.array([]), 24, 3)
    markdown = plots.markdown_image("lead", data)
    assert markdown.startswith("![lead](data:image/png;base64,")
    assert base64.b64decode(markdown.split(",", 1)[1].rstrip(")")) == data
    assert plots.gallery({"lead_time": data}).count("![lead_time]") == 1

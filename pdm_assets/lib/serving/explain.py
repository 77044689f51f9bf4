"""Reasons on request: `POST /predict?explain=true` (or `"explain": true` in the body) adds each prediction's
top contributing inputs; without it nothing is computed and the response is unchanged."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pandas as pd
from pydantic import BaseModel
from sklearn.pipeline import Pipeline

from pdm_assets.lib.modelling.reasons import DEFAULT_TOP, FailureExplainer

TRUE_WORDS = {"1", "true", "yes", "on"}


class ReasonItem(BaseModel):
    """One input behind a prediction: its value, its contribution to the log-odds of failure, a phrase."""

    feature: str
    value: float | str | None
    contribution: float
    text: str


def wants_explanation(query_value: str | None, body_flag: bool) -> bool:
    """`?explain=true` (also 1, yes, on) or the body's `explain: true`."""
    return body_flag or (query_value or "").strip().lower() in TRUE_WORDS


class OnDemandExplainer:
    """The pipeline's explainer, built on the first request that asks for reasons (about 0.2 s), then kept."""

    def __init__(self, pipeline: Pipeline, top: int = DEFAULT_TOP) -> None:
        self.pipeline = pipeline
        self.top = top
        self._built: FailureExplainer | None = None
        self._lock = threading.Lock()

    def reasons(self, features: pd.DataFrame, columns: Sequence[str]) -> list[list[ReasonItem]]:
        """The top reasons of each feature row, in row order."""
        with self._lock:
            if self._built is None:
                self._built = FailureExplainer(self.pipeline)
        found = self._built.reasons(features[list(columns)], top=self.top)
        return [[ReasonItem(**vars(reason)) for reason in row] for row in found]

"""Why a machine alerts: each input's exact contribution to the failure detector's log-odds, as phrases.

The contributions are the detector's SHAP values (`tree_shap`), per feature column, with the machine model's
one-hot columns summed into one input `model`. They are in log-odds of P(any failure within the horizon):

    logit(P(failure)) = base_value + sum of the contributions,

where base_value = E[detector output over its training counts] + log(negative_fraction). The second term is
the correction for having fitted on a sample of the normal rows (`corrected_probability`: odds times the
fraction); it moves every row's log-odds by the same constant, so it belongs to the base value, not to an input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from pdm_assets.lib.data.tables import MACHINE_MODELS
from pdm_assets.lib.modelling.estimators import FailureThenComponent, FeatureMatrix
from pdm_assets.lib.modelling.tree_shap import TreeExplainer

DEFAULT_TOP = 5


@dataclass(frozen=True)
class Contributions:
    """Per row and input, the contribution to the log-odds of failure; base_value + row sum = log_odds."""

    inputs: list[str]
    values: np.ndarray  # (rows, inputs)
    base_value: float
    log_odds: np.ndarray  # (rows,)


@dataclass(frozen=True)
class Reason:
    """One input behind a prediction: its value, its contribution in log-odds, and what it means."""

    feature: str
    value: float | str | None
    contribution: float
    text: str


class FailureExplainer:
    """Exact contributions for one fitted pipeline (FeatureMatrix then FailureThenComponent); build once, reuse."""

    def __init__(self, pipeline: Pipeline) -> None:
        classifier = pipeline[-1]
        prep = pipeline[0] if len(pipeline) > 1 else None
        if not isinstance(classifier, FailureThenComponent) or not isinstance(prep, FeatureMatrix):
            steps = [type(step).__name__ for step in pipeline]
            raise ValueError(f"reasons need a FeatureMatrix then FailureThenComponent pipeline, got {steps}")
        self.prep = prep
        self.trees = TreeExplainer.of(classifier.detector_)
        self.shift = math.log(classifier.negative_fraction)
        self.inputs = (["model"] if prep.encodes_model_ else []) + list(prep.numeric_)
        self.one_hot = len(MACHINE_MODELS) if prep.encodes_model_ else 0  # the matrix's first columns

    def contributions(self, features: pd.DataFrame) -> Contributions:
        """Each row's contribution per input, summing with base_value to the corrected log-odds."""
        matrix = self.prep.transform(features)
        columns = self.trees.shap_values(matrix)
        # the one-hot columns of the machine model add up to the input `model`
        one_hot = columns[:, : self.one_hot].sum(axis=1, keepdims=True)
        values = np.hstack([one_hot, columns[:, self.one_hot :]]) if self.one_hot else columns
        base = self.trees.base_value + self.shift
        return Contributions(self.inputs, values, base, base + values.sum(axis=1))

    def reasons(self, features: pd.DataFrame, top: int = DEFAULT_TOP) -> list[list[Reason]]:
        """The `top` inputs with the largest contributions (by size) of each row, largest first."""
        if not len(features):
            return []
        found = self.contributions(features)
        return [
            top_reasons(found.inputs, row, features.iloc[i], top)
            for i, row in enumerate(found.values)
        ]


def top_reasons(inputs: Sequence[str], contributions: np.ndarray, row: pd.Series, top: int) -> list[Reason]:
    """The `top` largest contributions (by size), each with its input's value and a phrase."""
    order = np.argsort(-np.abs(contributions), kind="stable")[:top]
    return [
        Reason(inputs[k], _plain(row[inputs[k]]), float(contributions[k]), describe(inputs[k], row[inputs[k]]))
        for k in order
    ]


def _plain(value: object) -> float | str | None:
    if isinstance(value, str):
        return value
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


# --- phrases -----------------------------------------------------------------------------------------------
# (pattern over the feature name, phrase from the match and the value); the first pattern that matches wins.
# A feature without a pattern still gets "<name with spaces> <value>", so a new feature is never unexplained.

Phrase = Callable[[re.Match[str], float], str]
SENSOR = r"(volt|rotate|pressure|vibration)"


def _hours(hours: float) -> str:
    return f"{hours:.0f} h" if hours < 72 else f"{hours / 24:.0f} days"


_RELATIVE_WORDS = {"baseline", "sigma", "z", "zscore", "vs", "rel", "relative"}


def _relative(match: re.Match[str], value: float) -> str:
    words = [re.sub(r"^(\d+)h$", r"\1 h", w) for w in match.group(2).split("_") if w not in _RELATIVE_WORDS]
    return f"{' '.join([match.group(1), *words])} {value:+.1f}σ over this machine's baseline"


PHRASES: tuple[tuple[str, Phrase], ...] = (
    (r"hours_since_replacement_(comp\d)",
     lambda m, v: f"{m[1]}: no replacement on record" if math.isnan(v) else f"{m[1]} not replaced for {_hours(v)}"),
    (r"hours_since_(error\d)",
     lambda m, v: f"no {m[1]} in the last 168 h" if math.isnan(v) else f"{m[1]} {v:.0f} h ago"),
    (r"(error\d)_count_(\d+)h",
     lambda m, v: f"no {m[1]} in the last {m[2]} h" if v == 0 else f"{m[1]} ×{v:.0f} in the last {m[2]} h"),
    (SENSOR + r"_(mean|std|min|max)_(\d+)h", lambda m, v: f"{m[1]} {m[3]} h {m[2]} {v:.1f}"),
    # features measured against the machine's own baseline, in standard deviations
    (SENSOR + r"_(.*(?:sigma|baseline|_z\b|zscore).*)", _relative),
    (r"age", lambda m, v: f"machine age {v:.0f} years"),
)


def describe(feature: str, value: object) -> str:
    """A short phrase for a feature's value, e.g. 'error4 21 h ago' or 'comp2 not replaced for 160 days'."""
    if feature == "model":
        return f"machine {value}"
    number = float("nan") if value is None else float(value)  # type: ignore[arg-type]
    for pattern, phrase in PHRASES:
        match = re.fullmatch(pattern, feature)
        if match:
            return phrase(match, number)
    shown = "missing" if math.isnan(number) else f"{number:.4g}"
    return f"{feature.replace('_', ' ')} {shown}"

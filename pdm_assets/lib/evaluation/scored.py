"""The evaluation protocol from per-group scores: each machine group scores its own validation and test rows with
every model and keeps keys, labels and scores but no feature column; the fleet's protocol is computed from the
concatenated scores, figure for figure what one process would compute on the whole feature table.

`protocol.run_protocol`, `early_warning_horizon` and `other_horizon` are compositions of these functions.
A row's score is P(failure) from `Scorer.scores` on validation rows and from the components on test rows (where
the likeliest component and class are kept too, as one byte each), as `assess` reads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from pdm_assets.lib.data.groups import combined
from pdm_assets.lib.evaluation import bootstrap
from pdm_assets.lib.evaluation.assessment import OURS, Assessment, Predicted, Scorer, assess, compare
from pdm_assets.lib.evaluation.baselines import GUIDE_FEATURES, always_none, error_rule, fit_guide_replica
from pdm_assets.lib.evaluation.importance import feature_importance
from pdm_assets.lib.evaluation.metrics import scored_frame
from pdm_assets.lib.evaluation.protocol import (
    DAY_AHEAD,
    METRIC_KEYS,
    RULE_THRESHOLD,
    ProtocolConfig,
    ProtocolResult,
    _ci,
    _num,
    _require_rows,
    event_curve,
    guide_comparison,
)
from pdm_assets.lib.evaluation.warning import warning_curve, warning_figures
from pdm_assets.lib.modelling.early_warning import EARLY_WARNING, EarlyWarningHead, early_warning_table
from pdm_assets.lib.modelling.features import BASELINE_READINGS_COLUMN, NON_TELEMETRY_FEATURES
from pdm_assets.lib.modelling.keys import KEY_COLUMNS, frame_keys
from pdm_assets.lib.modelling.labels import CLASSES
from pdm_assets.lib.modelling.split import SplitPlan
from pdm_assets.lib.modelling.train import TrainedModel, fit_fixed

# A row's part in one protocol's split.
OUTSIDE, VALIDATION, TEST = -1, 0, 1
# The two protocols, as column prefixes: the 24 h model's split and the early-warning head's.
DAY, EARLY = "day", "early"
RULE_SCORERS: Mapping[str, Scorer] = {"always_none": Scorer(always_none), "error_rule": Scorer(error_rule)}
# Rules are not tuned: they alert when they fire.
RULE_OPTIONS: Mapping[str, dict[str, Any]] = {name: {"fixed_threshold": RULE_THRESHOLD} for name in RULE_SCORERS}
NO_TELEMETRY, GUIDE_REPLICA = "ours_no_telemetry", "guide_replica"


@dataclass(frozen=True)
class FittedBaselines:
    """The baselines fitted on the training rows: the guide's model and ours without telemetry."""

    guide_replica: Pipeline
    ours_no_telemetry: Pipeline

    def scorers(self) -> dict[str, Scorer]:
        return {NO_TELEMETRY: Scorer.of(self.ours_no_telemetry, NON_TELEMETRY_FEATURES),
                GUIDE_REPLICA: Scorer.of(self.guide_replica, GUIDE_FEATURES)}


def fit_baselines(train: pd.DataFrame, trained: TrainedModel, config: ProtocolConfig) -> FittedBaselines:
    """The guide replica and ours without telemetry (our parameters, no new search) on the training rows."""
    # sklearn's GradientBoostingClassifier builds trees without the GIL: fit the replica beside the other.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(fit_guide_replica, train, negative_fraction=config.negative_fraction,
                              seed=config.seed, max_rows=config.replica_max_rows)
        no_telemetry = fit_fixed(train, feature_columns=NON_TELEMETRY_FEATURES, params=trained.params,
                                 negative_fraction=config.negative_fraction, seed=config.seed)
        return FittedBaselines(guide_replica=pending.result(), ours_no_telemetry=no_telemetry)


@dataclass(frozen=True)
class Role:
    """One protocol's view of a table's rows: the part of each (OUTSIDE, VALIDATION, TEST), failure and label."""

    part: np.ndarray
    failure: np.ndarray
    label: np.ndarray


@dataclass(frozen=True)
class FleetBaselines:
    """What the evaluation needs fitted once for the fleet, and the model version it was fitted beside."""

    fitted: FittedBaselines
    importance: pd.DataFrame  # our model's permutation importance on validation rows
    model_version: str


@dataclass(frozen=True)
class GroupScores:
    """One group's validation and test rows of both protocols: keys, `<protocol>_part/_failure/_label` and each
    model's score, `<model>_component` and `<model>_class` (NaN and -1 where the model does not score the row)."""

    rows: pd.DataFrame
    model_version: str = ""  # the version whose models scored them: the evaluation refuses a mix

    @property
    def nbytes(self) -> int:
        return int(self.rows.memory_usage(deep=True).sum())


def part_codes(times: pd.Series, plan: SplitPlan) -> np.ndarray:
    """Each row's part of `plan` as VALIDATION, TEST or OUTSIDE (train rows and gaps)."""
    codes = np.full(len(times), OUTSIDE, dtype=np.int8)
    codes[plan.part(times, "validation").to_numpy(bool)] = VALIDATION
    codes[plan.part(times, "test").to_numpy(bool)] = TEST
    return codes


def day_role(table: pd.DataFrame, plan: SplitPlan) -> Role:
    """The modelling table's rows in the split of the 24 h model (or of a model refitted at another horizon)."""
    return Role(part_codes(table["datetime"], plan), table["failure"].to_numpy(bool),
                table["label"].to_numpy(object))


def early_role(
    table: pd.DataFrame, features: pd.DataFrame, failures: pd.DataFrame, head: EarlyWarningHead
) -> Role:
    """The rows of `table` the early-warning head is evaluated on (a usable baseline), labelled at its horizon."""
    # Only the keys and the baseline count: early_warning_table copies the rows it is given.
    narrow = features[[c for c in (*KEY_COLUMNS, BASELINE_READINGS_COLUMN) if c in features]]
    early = early_warning_table(narrow, failures, horizon_hours=head.horizon_hours,
                                baseline_hours=head.baseline_lookback_hours)
    at = pd.Index(frame_keys(table)).get_indexer(frame_keys(early))
    if (at < 0).any():
        raise ValueError(f"{int((at < 0).sum())} early-warning rows are not in the modelling table: "
                         "build the table from the same feature rows")
    part = np.full(len(table), OUTSIDE, dtype=np.int8)
    part[at] = part_codes(early["datetime"], head.plan)
    failure = np.zeros(len(table), dtype=bool)
    failure[at] = early["failure"].to_numpy(bool)
    label = np.full(len(table), None, dtype=object)
    label[at] = early["label"].to_numpy(object)
    return Role(part, failure, label)


def scored_rows(
    table: pd.DataFrame, roles: Mapping[str, Role], models: Mapping[str, tuple[Scorer, Sequence[str]]]
) -> pd.DataFrame:
    """The rows of `table` some protocol validates or tests on, with each model's scores on the rows of the
    protocols it is listed for; keys, parts and labels, no feature column."""
    validation = np.logical_or.reduce([r.part == VALIDATION for r in roles.values()])
    test = np.logical_or.reduce([r.part == TEST for r in roles.values()])
    if (validation & test).any():
        raise ValueError("a row is in one protocol's validation period and in another's test period: "
                         "the early-warning head must be tested on the 24 h model's test period")
    index = np.flatnonzero(validation | test)
    columns: dict[str, Any] = {
        "machineID": table["machineID"].to_numpy(np.int64)[index].astype(np.int32),
        "datetime": table["datetime"].to_numpy()[index],
    }
    for name, role in roles.items():
        columns[f"{name}_part"] = role.part[index]
        columns[f"{name}_failure"] = role.failure[index]
        columns[f"{name}_label"] = pd.Categorical(role.label[index], categories=list(CLASSES))
    subsets: dict[tuple[tuple[str, ...], int], pd.DataFrame] = {}  # models on the same rows share one copy
    for model, (scorer, protocols) in models.items():
        on = np.logical_or.reduce([roles[p].part[index] != OUTSIDE for p in protocols])
        score = np.full(len(index), np.nan)
        component = np.full(len(index), -1, dtype=np.int8)
        top_class = np.full(len(index), -1, dtype=np.int8)
        for part, mask in ((VALIDATION, on & validation[index]), (TEST, on & test[index])):
            if not mask.any():
                continue
            key = (tuple(protocols), part)
            if key not in subsets:
                subsets[key] = table.iloc[index[mask]]
            if part == VALIDATION:
                score[mask] = scorer.scores(subsets[key])
            else:
                predicted = scorer.predicted(subsets[key])
                score[mask], component[mask], top_class[mask] = (predicted.failure, predicted.component,
                                                                  predicted.top_class)
        columns[model] = lossless(score)
        columns[f"{model}_component"] = component
        columns[f"{model}_class"] = top_class
    return pd.DataFrame(columns)


def lossless(values: np.ndarray) -> np.ndarray:
    """`values` in the narrowest of uint8, float32 and float64 that holds them exactly (the rules' 0 and 1 fit
    in a byte); concatenating groups of different widths widens exactly again."""
    for dtype in (np.uint8, np.float32):
        with np.errstate(invalid="ignore", over="ignore"):
            narrow = values.astype(dtype)
        if np.array_equal(narrow.astype(np.float64), values):
            return narrow
    return values


def score_group(
    table: pd.DataFrame,
    features: pd.DataFrame,
    failures: pd.DataFrame,
    plan: SplitPlan,
    trained: TrainedModel,
    baselines: FittedBaselines,
    head: EarlyWarningHead | None,
) -> GroupScores:
    """One group's scores: every model on the 24 h split's validation and test rows of `table` (its modelling
    table); with a head, the head, ours and the rules on the head's rows too (features: the group's features)."""
    models: dict[str, tuple[Scorer, Sequence[str]]] = {
        name: (scorer, (DAY,)) for name, scorer in
        {OURS: Scorer.of(trained.pipeline, trained.feature_columns), **RULE_SCORERS, **baselines.scorers()}.items()
    }
    roles = {DAY: day_role(table, plan)}
    if head is not None:
        roles[EARLY] = early_role(table, features, failures, head)
        for name in (OURS, *RULE_SCORERS):  # ours is the day-ahead model of the early-warning comparison
            models[name] = (models[name][0], (DAY, EARLY))
        models[EARLY_WARNING] = (Scorer.of(head.trained.pipeline, head.trained.feature_columns), (EARLY,))
    return GroupScores(scored_rows(table, roles, models))


def all_rows(groups: Sequence[GroupScores]) -> pd.DataFrame:
    """The groups' rows as one frame in (machineID, datetime) order (one group: as it is)."""
    if len(groups) == 1:
        return groups[0].rows
    return combined({f"{i:09d}": group.rows for i, group in enumerate(groups)})


def period(rows: pd.DataFrame, protocol: str, part: int) -> pd.DataFrame:
    """One protocol's validation or test rows with its labels as `failure` and `label`, as `assess` reads them."""
    picked = rows[rows[f"{protocol}_part"].to_numpy() == part]
    renamed = picked.rename(columns={f"{protocol}_failure": "failure", f"{protocol}_label": "label"})
    return renamed.reset_index(drop=True)


def assess_column(
    name: str, column: str, validation: pd.DataFrame, test: pd.DataFrame, failures: pd.DataFrame,
    config: ProtocolConfig, draws: bootstrap.Resamples, **options: Any,
) -> Assessment:
    """`assess` on the scores kept in `column` (a model's name in the scored rows)."""
    predicted = Predicted(test[column].to_numpy(np.float64), test[f"{column}_component"].to_numpy(np.int8),
                          test[f"{column}_class"].to_numpy(np.int8))
    return assess(name, validation, validation[column].to_numpy(np.float64), test, predicted, failures, config,
                  draws, **options)


def draws_for(test: pd.DataFrame, config: ProtocolConfig) -> bootstrap.Resamples:
    return bootstrap.draw_machines(test["machineID"].to_numpy(np.int64), config.resamples, config.seed)


def protocol_from_scores(
    groups: Sequence[GroupScores],
    failures: pd.DataFrame,
    plan: SplitPlan,
    trained: TrainedModel,
    head: EarlyWarningHead | None,
    config: ProtocolConfig,
    importance_rows: pd.DataFrame | None = None,
    *,
    early_warning_hours: int | None = None,
) -> ProtocolResult:
    """The protocol's result from every group's scores (failures: the whole fleet's); importance on
    `importance_rows` (validation rows with features) when given. With a head, its horizon in `horizons`;
    without one, that horizon (`early_warning_hours`, when given) reported as skipped."""
    rows = all_rows(groups)
    validation, test = period(rows, DAY, VALIDATION), period(rows, DAY, TEST)
    _require_rows({"validation": validation, "test": test})
    draws = draws_for(test, config)
    options = {OURS: {"chosen": (trained.threshold, trained.f1_threshold)}, **RULE_OPTIONS, NO_TELEMETRY: {},
               GUIDE_REPLICA: {}}
    assessments = {name: assess_column(name, name, validation, test, failures, config, draws, **kwargs)
                   for name, kwargs in options.items()}
    result = ProtocolResult(
        plan=plan,
        config=config,
        assessments=assessments,
        test_truth=test["failure"].to_numpy(bool),
        comparisons=compare(assessments),
        event_curve=event_curve(test, assessments[OURS].test_scores, failures, config),
        guide=guide_comparison(assessments),
        importance=pd.DataFrame(columns=["feature", "importance", "std"]) if importance_rows is None else
        feature_importance(trained.pipeline, importance_rows, trained.feature_columns, config.seed),
    )
    if head is not None:
        try:
            result.horizons[str(head.horizon_hours)] = early_warning_figures(rows, failures, trained, head, config)
        except ValueError as too_short:  # e.g. no early-warning row in a period: reported, as the asset did
            result.horizons[str(head.horizon_hours)] = {"horizon_hours": head.horizon_hours,
                                                         "skipped": str(too_short)}
    elif early_warning_hours is not None:
        result.horizons[str(early_warning_hours)] = {
            "horizon_hours": early_warning_hours,
            "skipped": "this model version has no early-warning head, and refitting the 24 h model at "
                       f"{early_warning_hours} h needs the whole feature table, which per-group evaluation "
                       "does not hold",
        }
    return result


def early_warning_figures(
    rows: pd.DataFrame, failures: pd.DataFrame, day_ahead: TrainedModel, head: EarlyWarningHead,
    config: ProtocolConfig,
) -> dict[str, Any]:
    """The early-warning head on its test period at its horizon, at the threshold it chose on validation,
    beside the rules and the 24 h head (at its own threshold); with the crew's figures (warning.py)."""
    trained = head.trained
    models = {OURS: (EARLY_WARNING, {"chosen": (trained.threshold, trained.f1_threshold)}),
              **{name: (name, kwargs) for name, kwargs in RULE_OPTIONS.items()},
              DAY_AHEAD: (OURS, {"fixed_threshold": day_ahead.threshold})}
    cfg = replace(config, horizon_hours=head.horizon_hours)
    out, assessments, test, draws = horizon_figures(rows, EARLY, failures, models, cfg)
    ours = scored_frame(test, assessments[OURS].test_scores)
    return {
        "horizon_hours": head.horizon_hours,
        "model": "the early-warning head (its own features, tuning and threshold)",
        "split": head.plan.to_dict(),
        **out,
        "event_curve": event_curve(test, assessments[OURS].test_scores, failures, cfg),
        "warning_curve": warning_curve(ours, failures, horizon_hours=head.horizon_hours,
                                       grid_hours=config.grid_hours),
        "warning": {
            name: warning_figures(scored_frame(test, a.test_scores), failures, a.metrics["threshold"],
                                  horizon_hours=head.horizon_hours, grid_hours=config.grid_hours, draws=draws,
                                  level=config.level)
            for name, a in assessments.items() if name != "always_none"
        },
    }


def horizon_figures(
    rows: pd.DataFrame, protocol: str, failures: pd.DataFrame, models: Mapping[str, tuple[str, dict[str, Any]]],
    config: ProtocolConfig,
) -> tuple[dict[str, Any], dict[str, Assessment], pd.DataFrame, bootstrap.Resamples]:
    """Each model's METRIC_KEYS with intervals on one protocol's test period; models name their score column
    and the keyword arguments passed to `assess`. Also the assessments, the test rows and the draws."""
    validation, test = period(rows, protocol, VALIDATION), period(rows, protocol, TEST)
    _require_rows({"validation": validation, "test": test})
    draws = draws_for(test, config)
    assessments = {name: assess_column(name, column, validation, test, failures, config, draws, **options)
                   for name, (column, options) in models.items()}
    figures = {name: {**{k: _num(a.metrics[k]) for k in METRIC_KEYS}, "ci": _ci(a.ci)}
               for name, a in assessments.items()}
    return figures, assessments, test, draws

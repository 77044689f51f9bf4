"""Machine bootstrap: deterministic under a seed, and each resample's figures equal the weighted ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, f1_score

from pdm_assets.lib.evaluation import bootstrap
from pdm_assets.lib.evaluation.events import event_metrics, event_view


def sample(n: int = 3000, machines: int = 30, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    machine = rng.integers(1, machines + 1, n)
    truth = rng.random(n) < 0.05
    score = np.round(np.clip(truth * 0.3 + rng.random(n), 0, 1), 2)  # rounded: ties included
    return machine, truth, score


def test_draws_are_deterministic_under_a_seed() -> None:
    machine, _, _ = sample()
    a, b = bootstrap.draw_machines(machine, 50, seed=7), bootstrap.draw_machines(machine, 50, seed=7)
    c = bootstrap.draw_machines(machine, 50, seed=8)
    assert np.array_equal(a.counts, b.counts)
    assert not np.array_equal(a.counts, c.counts)
    assert (a.counts.sum(axis=1) == len(a.machines)).all()  # each resample draws as many machines as there are


def test_average_precision_of_each_resample_equals_the_weighted_sklearn_figure() -> None:
    machine, truth, score = sample()
    draws = bootstrap.draw_machines(machine, 6, seed=0)
    ap = bootstrap.average_precision(draws, machine, truth, score)
    for b in range(6):
        weight = draws.counts[b][draws.index(machine)]
        assert ap[b] == pytest.approx(average_precision_score(truth, score, sample_weight=weight))


def test_f1_of_each_resample_equals_the_weighted_sklearn_figure() -> None:
    machine, truth, score = sample()
    draws = bootstrap.draw_machines(machine, 4, seed=0)
    f1 = bootstrap.f1_at_threshold(draws, machine, truth, score, 0.8)
    for b in range(4):
        weight = draws.counts[b][draws.index(machine)]
        assert f1[b] == pytest.approx(f1_score(truth, score >= 0.8, sample_weight=weight))


def test_event_figures_of_the_identity_resample_equal_the_plain_ones() -> None:
    times = pd.date_range("2015-01-01", periods=40, freq="3h")
    rows = pd.DataFrame({"machineID": np.repeat([1, 2, 3], 40), "datetime": np.tile(times, 3)})
    failures = pd.DataFrame({"machineID": [1, 2, 3], "datetime": [times[20]] * 3, "failure": ["comp1"] * 3})
    rows["failure"] = rows["datetime"].between(times[12], times[19])
    rows["score"] = np.where((rows["machineID"] != 3) & (rows["datetime"] == times[18]), 0.9, 0.1)
    rows.loc[rows.index[5], "score"] = 0.95  # one false alarm on machine 1
    view = event_view(rows, failures, 24, 3)
    identity = bootstrap.Resamples(np.array([1, 2, 3]), np.ones((1, 3)))
    figures = bootstrap.event_figures(identity, view, 0.5, rows["machineID"].to_numpy())
    plain = event_metrics(view, rows["score"].to_numpy(), 0.5)
    assert figures["event_recall"][0] == pytest.approx(plain.event_recall) == pytest.approx(2 / 3)
    assert figures["false_alarms_per_100_machine_days"][0] == pytest.approx(plain.false_alarms_per_100_machine_days)


def test_unknown_machines_are_refused() -> None:
    draws = bootstrap.draw_machines(np.array([1, 2]), 3, seed=0)
    with pytest.raises(ValueError, match="missing"):
        draws.index(np.array([3]))


def test_interval_and_separation() -> None:
    low, high = bootstrap.interval(np.arange(101.0), level=0.9)
    assert (low, high) == pytest.approx((5.0, 95.0))
    assert np.isnan(bootstrap.interval(np.array([np.nan]))[0])
    assert bootstrap.separated((0.8, 0.9), (0.5, 0.7)) == "better"
    assert bootstrap.separated((0.5, 0.7), (0.8, 0.9)) == "worse"
    assert bootstrap.separated((0.5, 0.85), (0.8, 0.9)) == "overlap"

"""Calibration, the "not sure" threshold, the novelty check (shared/core/serving/calibration.py)."""

from __future__ import annotations

import numpy as np
import pytest

from shared.core.serving.calibration import (
    AnswerPolicy,
    apply_temperature,
    choose_threshold,
    expected_calibration_error,
    fit_answer_policy,
    fit_novelty,
    fit_temperature,
    song_statistics,
)


def overconfident_songs(n: int = 600, n_genres: int = 5, seed: int = 0):
    """Songs whose stated top probability is about 0.95 but which are right 60 % of the time."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_genres, n)
    predicted = np.where(rng.random(n) < 0.6, labels, (labels + 1) % n_genres)
    probabilities = np.full((n, n_genres), 0.05 / (n_genres - 1))
    probabilities[np.arange(n), predicted] = 0.95
    return probabilities, labels


def test_temperature_keeps_the_ranking_and_one_is_the_identity():
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    assert apply_temperature(p, 1.0) == pytest.approx(p, abs=1e-6)
    for t in (0.5, 2.0, 5.0):
        scaled = apply_temperature(p, t)
        assert scaled.sum(axis=1) == pytest.approx([1.0, 1.0])
        assert (scaled.argmax(axis=1) == p.argmax(axis=1)).all()
    assert apply_temperature(p, 3.0).max() < p.max()  # hotter is softer


def test_fitted_temperature_softens_overconfident_answers_and_cuts_the_error():
    probabilities, labels = overconfident_songs()
    temperature = fit_temperature(probabilities, labels)
    assert temperature > 1.5
    before = expected_calibration_error(probabilities, labels)
    after = expected_calibration_error(apply_temperature(probabilities, temperature), labels)
    assert before > 0.3
    assert after < 0.05
    # calibrated, the top probability says how often such answers are right (0.6)
    assert apply_temperature(probabilities, temperature).max(axis=1).mean() == pytest.approx(
        0.6, abs=0.05
    )


def test_threshold_flags_unknown_genres_within_the_budget_for_known_ones():
    rng = np.random.default_rng(1)
    known = rng.uniform(0.55, 1.0, 500)  # songs of its genres: mostly sure
    unknown = rng.uniform(0.3, 0.6, 200)  # songs of other genres: unsure
    threshold = choose_threshold(known, unknown, max_flagged=0.2)
    assert np.mean(known < threshold) <= 0.2
    assert np.mean(unknown < threshold) > 0.9
    assert choose_threshold(known) == 0.5  # no unknown songs: "more likely wrong than right"


def test_novelty_check_tells_strange_statistics_from_familiar_ones():
    rng = np.random.default_rng(2)
    train = rng.normal(0.0, 1.0, (400, 26))
    held_out = rng.normal(0.0, 1.0, (100, 26))
    novelty = fit_novelty(train, held_out, quantile=0.99)
    assert np.mean([novelty.is_strange(row) for row in held_out]) <= 0.02
    assert novelty.is_strange(np.full(26, 6.0))


def test_song_statistics_leave_deltas_out():
    mfcc = np.zeros((2, 130, 39), np.float32)
    mfcc[..., :13] = 1.0
    mfcc[..., 13:] = 50.0  # deltas
    stats = song_statistics(mfcc, n_mfcc=13)
    assert stats.shape == (26,)
    assert stats[:13] == pytest.approx(np.ones(13))
    assert stats[13:] == pytest.approx(np.zeros(13))


def test_policy_round_trips_through_the_sidecar_and_defaults_when_absent():
    probabilities, labels = overconfident_songs()
    rng = np.random.default_rng(3)
    novelty = fit_novelty(rng.normal(size=(200, 4)))
    unknown = [np.array([0.4, 0.3, 0.1, 0.1, 0.1]) for _ in range(20)]
    policy = fit_answer_policy(
        probabilities,
        labels,
        rule="mean",
        fitted_on="synthetic",
        unknown_mean_probabilities=unknown,
        novelty=novelty,
    )
    assert policy.figures["ece_after"] < policy.figures["ece_before"]
    assert policy.figures["n_unknown_songs"] == 20
    assert any(row["threshold"] == policy.uncertain_below for row in policy.figures["curve"])
    again = AnswerPolicy.from_dict(policy.to_dict())
    assert again == policy
    default = AnswerPolicy.from_dict(None)
    assert (default.rule, default.temperature, default.novelty) == ("vote", 1.0, None)

"""Voting and the prediction's shape."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from shared.core.nets.model import load_genre_model
from shared.core.serving.predict import predict_file, vote_genre
from shared.errors import AudioTooShort, InvalidAudio


def test_vote_takes_the_majority():
    probabilities = np.array([[0.6, 0.4], [0.6, 0.4], [0.0, 1.0]])
    winner, votes, mean = vote_genre(probabilities, ["a", "b"])
    assert winner == 0
    assert votes.tolist() == [2, 1]
    assert mean[1] > mean[0]  # the mean alone would pick "b"


def test_a_tied_vote_goes_to_the_higher_mean():
    probabilities = np.array([[0.9, 0.1], [0.45, 0.55]])
    winner, votes, _ = vote_genre(probabilities, ["a", "b"])
    assert votes.tolist() == [1, 1]
    assert winner == 0


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return load_genre_model(tiny_model_path)


def test_prediction_has_probabilities_votes_and_timeline(model, make_audio):
    path = make_audio("disco", seconds=10.5, ext=".ogg")
    calls = []
    result = predict_file(path, model, progress=calls.append).to_dict()
    assert calls == [0.5, 1.0]
    assert result["n_segments"] == 3  # 10.5 s: three full segments, the rest dropped
    assert set(result["probabilities"]) == set(model.genres)
    assert sum(result["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    assert sum(result["votes"].values()) == 3
    assert result["confidence"] == result["probabilities"][result["genre"]]
    assert [(s["start"], s["end"]) for s in result["segments"]] == [(0, 3), (3, 6), (6, 9)]
    for segment in result["segments"]:
        assert segment["genre"] == max(segment["probabilities"], key=segment["probabilities"].get)
    assert result["model_version"] == model.version


def test_bad_inputs_raise_typed_errors(model, make_audio, tmp_path):
    with pytest.raises(AudioTooShort):
        predict_file(make_audio("metal", seconds=2.5), model)
    bogus = tmp_path / "bogus.flac"
    bogus.write_bytes(b"fLaC" + bytes(500))
    with pytest.raises(InvalidAudio):
        predict_file(bogus, model)


def test_scores_match_keras_predict(model):
    features = np.random.default_rng(0).standard_normal((4, 130, 13)).astype(np.float32)
    fast = model.predict_segments(features)
    reference = model.keras_model.predict(features, verbose=0)
    np.testing.assert_allclose(fast, reference, rtol=1e-4, atol=1e-5)


def test_streamed_prediction_equals_whole_signal_prediction(model, make_audio):
    from shared.core.audio.audio import decode_audio
    from shared.core.serving.predict import SEGMENTS_PER_BLOCK, predict_audio

    seconds = 3.0 * (SEGMENTS_PER_BLOCK + 2) + 1.0  # two blocks, the second one partial
    path = make_audio("classical", seconds=seconds, ext=".flac")
    streamed = predict_file(path, model).to_dict()
    whole = predict_audio(decode_audio(path), model).to_dict()
    assert streamed["n_segments"] == SEGMENTS_PER_BLOCK + 2
    assert streamed["duration_s"] == pytest.approx(seconds, abs=0.01)
    for a, b in zip(streamed["segments"], whole["segments"], strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-3)
    assert streamed["genre"] == whole["genre"]


def with_answer(model, **answer):
    """Return the same loaded model with another answer policy in its sidecar."""
    return dataclasses.replace(model, metadata={**model.metadata, "answer": answer})


def test_answers_under_the_threshold_are_flagged_not_sure(model, make_audio):
    path = make_audio("disco", seconds=9.0)
    result = predict_file(path, with_answer(model, uncertain_below=1.01)).to_dict()
    assert result["uncertain"] is True
    assert result["uncertain_reason"] == "low_confidence"
    assert result["genre"] in model.genres  # still the closest genre
    confident = predict_file(path, with_answer(model, uncertain_below=0.0)).to_dict()
    assert (confident["uncertain"], confident["uncertain_reason"]) == (False, None)


def test_sounds_unlike_the_training_songs_are_flagged_unfamiliar(model, make_audio):
    n_stats = 2 * model.feature_config.n_mfcc
    far_away = {
        "mean": [1e4] * n_stats,
        "precision": np.eye(n_stats).tolist(),
        "threshold": 1.0,
    }
    path = make_audio("disco", seconds=9.0)
    result = predict_file(path, with_answer(model, uncertain_below=0.0, novelty=far_away))
    assert (result.uncertain, result.uncertain_reason) == (True, "unfamiliar_sound")


def test_probabilities_are_calibrated_and_the_rule_picks_the_genre(model, make_audio):
    path = make_audio("disco", seconds=12.0)
    raw = predict_file(path, model)
    hot = predict_file(path, with_answer(model, rule="mean", temperature=4.0))
    raw_p = np.array([raw.probabilities[g] for g in model.genres])
    hot_p = np.array([hot.probabilities[g] for g in model.genres])
    assert hot_p.max() < raw_p.max()  # softened, the ranking kept
    assert hot.genre == model.genres[int(raw_p.argmax())]  # "mean" rule: highest mean
    assert hot.confidence == hot.probabilities[hot.genre]
    assert hot.votes == raw.votes  # the timeline and votes are the network's own
    assert [s.probabilities for s in hot.segments] == [s.probabilities for s in raw.segments]

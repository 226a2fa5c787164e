"""Voting and the prediction's shape."""

from __future__ import annotations

import numpy as np
import pytest

from shared.core.model import load_genre_model
from shared.core.predict import predict_file, vote_genre
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
    from shared.core.audio import decode_audio
    from shared.core.predict import SEGMENTS_PER_BLOCK, predict_audio

    seconds = 3.0 * (SEGMENTS_PER_BLOCK + 2) + 1.0  # two blocks, the second one partial
    path = make_audio("classical", seconds=seconds, ext=".flac")
    streamed = predict_file(path, model).to_dict()
    whole = predict_audio(decode_audio(path), model).to_dict()
    assert streamed["n_segments"] == SEGMENTS_PER_BLOCK + 2
    assert streamed["duration_s"] == pytest.approx(seconds, abs=0.01)
    for a, b in zip(streamed["segments"], whole["segments"], strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=1e-3)
    assert streamed["genre"] == whole["genre"]
